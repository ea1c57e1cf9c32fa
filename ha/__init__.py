"""High availability (architecture section 8): the service's Postgres as a Patroni cluster on etcd,
and the seed's replicated state machine on etcd itself.

Modules, by responsibility:

- ``errors``: the app's problems (``ha_unavailable``, ``ha_mode_invalid``, ``smr_*``).
- ``transport``: JSON over HTTP to the members (Patroni's REST API, etcd's v3 gateway).
- ``patroni``: ``PatroniClient``, the cluster as Patroni reports it and its dynamic
  configuration; ``modes``: the replication modes as dynamic configuration.
- ``etcd``: ``EtcdClient``, etcd's v3 API through its JSON gateway (ranges, transactions,
  member status, ``hashkv``).
- ``selectors``: the cluster's status (mode, leader, members, timeline history, etcd).
- ``services``: mode changes, switchover, the leader's kill, the standbys' apply delay.
- ``smr``: the state machine's operations (set, delete, increment, cas) and reads.
- ``views``, ``serializers``, ``urls``: ``/api/ha/`` and ``/api/smr/``.
- ``health``: the cluster's part of ``/readyz``.

Where the cluster is: ``PATRONI_URLS`` (each member's REST API) and ``ETCD_URLS``; the
databases themselves are reached through the multi-host ``DATABASE_URL`` and friends, so no
service process needs to ask Patroni where the leader is.
"""
