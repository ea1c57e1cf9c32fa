"""The HA tests run on the stack's own cluster (etcd x3, Patroni x3), with real kills and
pauses; they skip where Postgres is given by DATABASE_URL (not this project's to kill).

Writes go to a scratch database of their own on the cluster, through libpq's multi-host
connection (the leader, wherever it is), never to the suite's test databases."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from psycopg import sql

from consistency.pool import replica_pool
from devstack import config as devstack_config
from ha.etcd import etcd_client, hashkv_compare
from ha.modes import ASYNC
from ha.services import ha_mode_set, leader_connection
from loadtest.ha_workload import writes_table_create
from tests import cluster


@pytest.fixture(scope="session", autouse=True)
def _embedded_cluster_only() -> None:
    if devstack_config.postgres_given() or not settings.PATRONI_URLS:
        pytest.skip("Postgres is given by DATABASE_URL: its cluster is not this project's to kill")


@pytest.fixture(scope="session")
def scratch_conninfo(_embedded_cluster_only) -> Iterator[dict[str, Any]]:
    """A database of this test run's own on the cluster, with the ``ha_writes`` table."""
    name = f"statelab_ha_tests_{os.getpid()}"
    cluster.cluster_settled()
    with leader_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = settings.DATABASES["default"]
    conninfo = {
        "host": database["HOST"],
        "port": database["PORT"],
        "user": database["USER"],
        "password": database["PASSWORD"],
        "dbname": name,
        "target_session_attrs": "read-write",
        "connect_timeout": 2,
    }
    writes_table_create(conninfo)
    yield conninfo
    cluster.cluster_settled()
    with leader_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def mode() -> Iterator[Callable[..., dict]]:
    """Sets the cluster's replication mode for one test; always back to async afterwards."""

    def set_mode(name: str, **options: Any) -> dict:
        return ha_mode_set(mode=name, **options)

    yield set_mode
    cluster.cluster_settled()
    ha_mode_set(mode=ASYNC)


@pytest.fixture
def settled() -> Iterator[cluster.Member]:
    """The cluster settled (one leader, two streaming standbys) before the test and after it;
    this process's connections and replica positions dropped after (a kill broke them)."""
    leader = cluster.cluster_settled()
    yield leader
    cluster.cluster_settled()
    connections.close_all()
    replica_pool.reset()


def etcd_hashes_equal() -> dict:
    """``hashkv`` of every etcd member at one revision (etcd issue 13766: a crash may leave
    3.5.0-3.5.2 members inconsistent; compared after every kill)."""
    return hashkv_compare(etcd_client())
