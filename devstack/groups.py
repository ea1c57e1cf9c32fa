"""Which components the stack has, by group.

A group is a function that builds its components from the workspace and the StackConfig,
registered with ``@group("name")``; ``python -m devstack up --group name`` starts it (and what
its components depend on). Default groups start on a plain ``up``.

Adding a component: one class in devstack/components/, a subclass of
- ``Daemon`` for a program that stays in the foreground (etcd, Patroni, a TCP proxy): give
  ``binary`` and ``command()``, and ``ready()`` when "the port accepts connections" is not
  enough; pid file, log, account, port check, start timeout and SIGTERM-then-SIGKILL come with
  it;
- ``PostgresServer`` for a Postgres server on its own port: pass ``settings`` (e.g.
  ``{"wal_level": "logical"}``) and ``databases``; override ``create`` / ``configure`` /
  ``on_ready`` / ``status_details`` for more (as ``StreamingReplica`` does);
- ``Component`` for anything else (``pid``, ``_up``, ``_down``).
Set ``given_by`` (a URL variable meaning "provided elsewhere") and ``port_variable`` where they
apply, and ``depends_on`` (names) when it needs another component running first. Then build it
in a group function below (new ports: new StackConfig fields read from STATELAB_* variables).
"""

from collections.abc import Callable
from dataclasses import dataclass

from devstack import config as stack_config
from devstack.components import (
    Component,
    EtcdMember,
    PatroniMember,
    PostgresPrimary,
    Redis,
    StreamingReplica,
)
from devstack.config import StackConfig
from devstack.workspace import Workspace

GroupBuilder = Callable[[Workspace, StackConfig], list[Component]]


@dataclass(frozen=True)
class Group:
    name: str
    build: GroupBuilder
    default: bool


GROUPS: dict[str, Group] = {}


def group(name: str, *, default: bool = False) -> Callable[[GroupBuilder], GroupBuilder]:
    """Register a group builder under `name`; `default` groups start on a plain `up`."""

    def register(build: GroupBuilder) -> GroupBuilder:
        if name in GROUPS:
            raise ValueError(f"group {name!r} is registered twice")
        GROUPS[name] = Group(name, build, default)
        return build

    return register


@group("core", default=True)
def core(workspace: Workspace, config: StackConfig) -> list[Component]:
    """What the service needs besides its Postgres cluster (group ha): Redis."""
    return [Redis(workspace, port=config.redis_port)]


@group("ha", default=True)
def ha(workspace: Workspace, config: StackConfig) -> list[Component]:
    """The service's Postgres: three etcd members (Raft) and three Patroni members, every
    database of the topology on the leader, the standbys serving the replica aliases."""
    names = [f"etcd_{number}" for number in range(1, stack_config.HA_MEMBERS + 1)]
    peers = dict(zip(names, stack_config.member_ports(config.etcd_peer_port), strict=True))
    etcd = [
        EtcdMember(workspace, name=name, port=port, peer_port=peers[name], cluster=peers)
        for name, port in zip(names, stack_config.member_ports(config.etcd_port), strict=True)
    ]
    etcd_urls = [member.client_url for member in etcd]
    ports = zip(
        stack_config.member_ports(config.ha_pg_port),
        stack_config.member_ports(config.patroni_port),
        strict=True,
    )
    patroni = [
        PatroniMember(
            workspace,
            name=f"patroni_{number}",
            port=pg_port,
            api_port=api_port,
            etcd_urls=etcd_urls,
            etcd_members=names,
            databases=list(stack_config.database_names(config.shard_count).values()),
        )
        for number, (pg_port, api_port) in enumerate(ports, start=1)
    ]
    return [*etcd, *patroni]


@group("single")
def single(workspace: Workspace, config: StackConfig) -> list[Component]:
    """A plain primary and one streaming replica of it, no failover: the topology before the
    cluster (group ha), kept as building blocks and for comparison."""
    primary = PostgresPrimary(workspace, port=config.pg_port, shard_count=config.shard_count)
    replica = StreamingReplica(
        workspace,
        name="replica_1",
        port=config.replica_port,
        primary=primary,
        apply_delay_ms=config.replica_delay_ms,
        port_variable="STATELAB_REPLICA_PORT",
    )
    return [primary, replica]
