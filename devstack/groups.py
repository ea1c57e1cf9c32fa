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
    LinkProxy,
    PatroniMember,
    PostgresPrimary,
    Redis,
    RegionLinks,
    RegionServer,
    StorageNode,
    StreamingReplica,
)
from devstack.config import StackConfig, quorum_node_names
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


@group("quorum")
def quorum(workspace: Workspace, config: StackConfig) -> list[Component]:
    """The quorum store's storage nodes n1..nK (Postgres servers ``quorum_n<i>``) and the link
    proxy ``quorum_proxy`` in front of them: the coordinator reaches node n<i> through route
    n<i>, so that a slow node is a delay on its route. Given elsewhere by QUORUM_NODE_URLS."""
    nodes = [
        StorageNode(
            workspace,
            name=f"quorum_{name}",
            port=config.quorum_port + index,
            port_variable="STATELAB_QUORUM_PORT",
        )
        for index, name in enumerate(quorum_node_names(config.quorum_nodes))
    ]
    proxy = LinkProxy(
        workspace,
        name="quorum_proxy",
        port=config.quorum_proxy_port,
        routes={
            name: (config.quorum_proxy_port + number, node.port)
            for number, (name, node) in enumerate(
                zip(quorum_node_names(config.quorum_nodes), nodes, strict=True), start=1
            )
        },
    )
    proxy.given_by = "QUORUM_NODE_URLS"
    proxy.port_variable = "STATELAB_QUORUM_PROXY_PORT"
    return [*nodes, proxy]


@group("regions")
def regions(workspace: Workspace, config: StackConfig) -> list[Component]:
    """Three regions r1, r2, r3 (Postgres servers with wal_level=logical) and the proxy whose
    six routes carry their logical-replication links; the regions app creates the schema,
    publications and subscriptions (``python manage.py regions_setup``)."""
    ports = stack_config.region_ports(config.region_port)
    servers: list[Component] = [
        RegionServer(
            workspace, name=name, port=port, slot_wal_keep_mb=config.region_slot_wal_keep_mb
        )
        for name, port in ports.items()
    ]
    links = RegionLinks(
        workspace,
        name="region_net",
        port=config.region_links_port,
        routes=stack_config.region_routes(config.region_route_port, config.region_port),
    )
    return [*servers, links]
