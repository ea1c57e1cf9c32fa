"""The stack's components: each one server with up / down / status / logs.

Generic bases: ``Component`` (the interface), ``Daemon`` (a long-running process with a pid
file and a log), ``PostgresServer`` (a Postgres server on a port with given settings).
The HA cluster: ``EtcdMember`` (Raft) and ``PatroniMember`` (a Postgres server managed by
Patroni, leader elected in etcd).
"""

from devstack.components.base import Component, Daemon, PythonDaemon
from devstack.components.etcd import EtcdMember
from devstack.components.linkproxy import LinkProxy
from devstack.components.patroni import PatroniMember
from devstack.components.postgres import PostgresPrimary, PostgresServer
from devstack.components.redis import Redis
from devstack.components.region import RegionLinks, RegionServer
from devstack.components.replica import StreamingReplica
from devstack.components.storage_node import StorageNode

__all__ = [
    "Component",
    "Daemon",
    "EtcdMember",
    "LinkProxy",
    "PatroniMember",
    "PostgresPrimary",
    "PostgresServer",
    "PythonDaemon",
    "Redis",
    "RegionLinks",
    "RegionServer",
    "StorageNode",
    "StreamingReplica",
]
