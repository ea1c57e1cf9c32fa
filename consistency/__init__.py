"""Per-request read consistency over streaming replicas (architecture section 4), an app.

Modules, by responsibility:

- ``levels``: the levels (``strong``, ``session``, ``eventual``) and reading one off a request.
- ``state``: ``SessionState``, what one session wrote (WAL positions) and saw (versions).
- ``models`` / ``store``: where a session's positions live (Postgres, next to its token or
  session), merged so that they only rise.
- ``context``: the per-request (per-task) ``ConsistencyContext``, ``pin_to_primary`` and the
  per-request response headers other apps contribute.
- ``replicas``: probes of the primary's and each replica's WAL position and timeline (a
  replica alias may reach a cluster member whose role changed), ``WalPosition``, the
  primary's timeline history, the replica delay (a hook lets a cluster manager set it).
- ``pool``: ``ReplicaPool``, the per-process view of which replicas are in rotation and
  which session positions they hold across a failover (``History``: switch points).
- ``routing``: where a routed read goes (``read_decision``) and ``ConsistencyRouter``.
- ``middleware``: opens the context per request, saves positions, writes the headers.
- ``api``: what a DRF view uses to honour ``X-Consistency``; ``authentication``: the token
  authentication that loads the token's positions in the same query.
- ``celery``: the positions travel with the tasks a request sends.
- ``faults``, ``metrics``, ``health``, ``checks``, ``tasks``: what the app registers in its
  ``AppConfig`` (fault switches, scrape collectors, readiness, system checks, the purge).

The app knows no other app: which apps' reads are routed is ``CONSISTENCY_ROUTED_APPS``; the
replicas are the aliases in ``REPLICA_ALIASES`` (``replicas.replica_aliases``), however they
are found.
"""
