"""Embedded local stack from pip-installed binaries: the service's Postgres as a Patroni cluster on
three etcd members (group ha), Redis (group core), and the groups other patterns add.

`devstack.config` is safe to import anywhere (settings do); the rest runs processes:
`devstack.stack` (the orchestrator, by group), `devstack.groups` (which components exist),
`devstack.components` (one class per kind of server), `devstack.process`,
`devstack.pgconf`, `devstack.accounts` (the plumbing they share).
Command line: ``python -m devstack up|down|status|logs|env``.
"""
