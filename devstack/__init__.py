"""Embedded local stack: Postgres primary + streaming replica + Redis, from pip-installed binaries.

`devstack.config` is safe to import anywhere (settings do); `devstack.stack` runs processes.
Command line: ``python -m devstack up|down|status|env``.
"""
