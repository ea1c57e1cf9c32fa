"""Embedded local stack: Postgres primary + streaming replica + Redis, from pip-installed binaries.

`devstack.config` is safe to import anywhere (settings do); the rest runs processes:
`devstack.stack` (the orchestrator, by group), `devstack.groups` (which components exist),
`devstack.components` (one class per kind of server), `devstack.process`,
`devstack.pgconf`, `devstack.accounts` (the plumbing they share).
Command line: ``python -m devstack up|down|status|logs|env``.
"""
