"""Addresses and names of the embedded stack.

Pure: reads the environment once on import, starts nothing, imports nothing heavy, because
Django settings import it.
"""

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


# Every default port lies below Linux's ephemeral range (32768-60999 by default): a port in
# that range can be held for a moment by any outgoing connection's local end, and a server
# starting then fails to bind (seen with the quorum proxy under load).
STACK_DIR: Path = Path(os.environ.get("STATELAB_STACK_DIR") or REPO_ROOT / ".stack").absolute()
PG_PORT: int = _int_env("STATELAB_PG_PORT", 25432)
REPLICA_PORT: int = _int_env("STATELAB_REPLICA_PORT", 25433)
REDIS_PORT: int = _int_env("STATELAB_REDIS_PORT", 25379)
SHARD_COUNT: int = max(4, _int_env("STATELAB_SHARDS", 4))
REPLICA_DELAY_MS: int = max(0, _int_env("STATELAB_REPLICA_DELAY_MS", 0))
# The quorum store's storage nodes n1..nK listen on QUORUM_PORT + 0..K-1; the link proxy in
# front of them has its control port on QUORUM_PROXY_PORT and node n<i>'s route on
# QUORUM_PROXY_PORT + i (the coordinator connects through the routes).
QUORUM_NODE_COUNT: int = max(4, _int_env("STATELAB_QUORUM_NODES", 5))
QUORUM_PORT: int = _int_env("STATELAB_QUORUM_PORT", 25450)
QUORUM_PROXY_PORT: int = _int_env("STATELAB_QUORUM_PROXY_PORT", 25490)
QUORUM_DATABASE = "statelab_quorum"
# The regions group (architecture section 9): r1's port, r2 and r3 on the next two; the link proxy's
# control port and the first of its six route ports (r1->r2, r1->r3, r2->r1, ...).
REGION_PORT: int = _int_env("STATELAB_REGION_PORT", 25441)
REGION_LINKS_PORT: int = _int_env("STATELAB_REGION_LINKS_PORT", 25440)
REGION_ROUTE_PORT: int = _int_env("STATELAB_REGION_ROUTE_PORT", 25444)
# How much WAL a publisher keeps for a cut link before its slot is lost (max_slot_wal_keep_size).
REGION_SLOT_WAL_KEEP_MB: int = max(16, _int_env("STATELAB_REGION_SLOT_WAL_KEEP_MB", 64))
# The ha group (architecture section 8): each variable is the first of three consecutive ports, one
# per member: the members' Postgres servers, their Patroni REST APIs, etcd's client and peer
# ports.
HA_PG_PORT: int = _int_env("STATELAB_HA_PG_PORT", 25470)
PATRONI_PORT: int = _int_env("STATELAB_PATRONI_PORT", 25473)
ETCD_PORT: int = _int_env("STATELAB_ETCD_PORT", 25476)
ETCD_PEER_PORT: int = _int_env("STATELAB_ETCD_PEER_PORT", 25479)
HA_MEMBERS = 3
HA_SCOPE = "statelab"


@dataclass(frozen=True)
class StackConfig:
    """What the stack's groups are built from: where it lives, its ports, its knobs.

    Defaults come from the STATELAB_* variables; a new group adds its own fields here.
    """

    base_dir: Path = STACK_DIR
    pg_port: int = PG_PORT
    replica_port: int = REPLICA_PORT
    redis_port: int = REDIS_PORT
    shard_count: int = SHARD_COUNT
    replica_delay_ms: int = REPLICA_DELAY_MS
    quorum_nodes: int = QUORUM_NODE_COUNT
    quorum_port: int = QUORUM_PORT
    quorum_proxy_port: int = QUORUM_PROXY_PORT
    region_port: int = REGION_PORT
    region_links_port: int = REGION_LINKS_PORT
    region_route_port: int = REGION_ROUTE_PORT
    region_slot_wal_keep_mb: int = REGION_SLOT_WAL_KEEP_MB
    ha_pg_port: int = HA_PG_PORT
    patroni_port: int = PATRONI_PORT
    etcd_port: int = ETCD_PORT
    etcd_peer_port: int = ETCD_PEER_PORT


PG_USER = "statelab"
PG_PASSWORD = "statelab"  # noqa: S105 - dev-only credentials of a cluster bound to 127.0.0.1
HOST = "127.0.0.1"

POSTGRES_VARIABLES = (
    "DATABASE_URL",
    "REPLICA_URLS",
    "ACCOUNTS_DATABASE_URL",
    "LEDGER_DATABASE_URL",
    "SHARD_URLS",
)
REDIS_VARIABLES = ("REDIS_URL", "CELERY_BROKER_URL")
QUORUM_VARIABLES = ("QUORUM_NODE_URLS",)


def quorum_node_names(count: int = QUORUM_NODE_COUNT) -> list[str]:
    """The quorum store's node names, n1..n<count>, in the order of QUORUM_NODE_URLS."""
    return [f"n{number}" for number in range(1, count + 1)]


REGION_VARIABLES = ("REGION_URLS", "REGION_LINKS_URL")

REGION_NAMES = ("r1", "r2", "r3")
REGION_DATABASE = "statelab_region"


def region_ports(first_port: int = REGION_PORT) -> dict[str, int]:
    """Region name -> its Postgres server's port."""
    return {name: first_port + index for index, name in enumerate(REGION_NAMES)}


def region_routes(
    first_route_port: int = REGION_ROUTE_PORT, first_region_port: int = REGION_PORT
) -> dict[str, tuple[int, int]]:
    """Link name -> (listen port, target port). Link "ri->rj" carries what region rj's
    subscription receives from ri: it listens on its own port and forwards to ri's server."""
    ports = region_ports(first_region_port)
    links = [(a, b) for a in REGION_NAMES for b in REGION_NAMES if a != b]
    return {f"{a}->{b}": (first_route_port + index, ports[a]) for index, (a, b) in enumerate(links)}


# Where the HA app finds the cluster's managers (Patroni REST APIs) and the SMR its etcd.
PATRONI_VARIABLES = ("STATELAB_PATRONI_URLS",)
ETCD_VARIABLES = ("STATELAB_ETCD_URLS",)


def member_ports(first_port: int, count: int = HA_MEMBERS) -> list[int]:
    """The ports of `count` members whose first one is `first_port` (one each, in a row)."""
    return [first_port + index for index in range(count)]


def standby_orders(ports: list[int]) -> list[list[int]]:
    """Host orders of the replica aliases: one alias per standby a cluster of len(ports)
    members has, each a multi-host list tried in order for the first standby
    (``target_session_attrs=standby``). Alias i lists member i first and the last member
    second, so that wherever the leader is, the aliases land on different standbys: when the
    leader is member i, alias i falls back to the last member, which no other alias names
    first."""
    last = ports[-1]
    return [[port, last, *(other for other in ports[:-1] if other != port)] for port in ports[:-1]]


def database_names(shard_count: int = SHARD_COUNT) -> dict[str, str]:
    """Database alias -> database name inside the embedded cluster."""
    names = {
        "default": "statelab",
        "accounts": "statelab_accounts",
        "ledger": "statelab_ledger",
    }
    names.update({f"shard_{i}": f"statelab_shard_{i}" for i in range(shard_count)})
    return names


def _pg_url(port: int, database: str) -> str:
    return f"postgres://{PG_USER}:{PG_PASSWORD}@{HOST}:{port}/{database}"


def cluster_url(ports: list[int], database: str, target: str = "read-write") -> str:
    """A libpq multi-host URL over the members on `ports`: the first one that is `target`
    (``read-write``: the leader, wherever it is; ``standby``: a standby)."""
    hosts = ",".join(f"{HOST}:{port}" for port in ports)
    return f"postgres://{PG_USER}:{PG_PASSWORD}@{hosts}/{database}?target_session_attrs={target}"


def embedded_env(
    redis_port: int = REDIS_PORT,
    shard_count: int = SHARD_COUNT,
    *,
    quorum_nodes: int = QUORUM_NODE_COUNT,
    quorum_proxy_port: int = QUORUM_PROXY_PORT,
    region_port: int = REGION_PORT,
    region_links_port: int = REGION_LINKS_PORT,
    ha_pg_port: int = HA_PG_PORT,
    patroni_port: int = PATRONI_PORT,
    etcd_port: int = ETCD_PORT,
) -> dict[str, str]:
    """The URL variables that point at the embedded stack: every database on the Patroni
    cluster (the leader, wherever it is), one replica alias per standby; the quorum nodes
    through their link proxy's routes."""
    names = database_names(shard_count)
    members = member_ports(ha_pg_port)
    regions = region_ports(region_port)

    def leader(alias: str) -> str:
        return cluster_url(members, names[alias])

    return {
        "DATABASE_URL": leader("default"),
        "REPLICA_URLS": ",".join(
            cluster_url(order, names["default"], "standby") for order in standby_orders(members)
        ),
        "ACCOUNTS_DATABASE_URL": leader("accounts"),
        "LEDGER_DATABASE_URL": leader("ledger"),
        "SHARD_URLS": ",".join(leader(f"shard_{i}") for i in range(shard_count)),
        "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "CELERY_BROKER_URL": f"redis://{HOST}:{redis_port}/1",
        "QUORUM_NODE_URLS": ",".join(
            _pg_url(quorum_proxy_port + number, QUORUM_DATABASE)
            for number in range(1, quorum_nodes + 1)
        ),
        "REGION_URLS": ",".join(_pg_url(regions[name], REGION_DATABASE) for name in REGION_NAMES),
        "REGION_LINKS_URL": f"tcp://{HOST}:{region_links_port}",
        "STATELAB_PATRONI_URLS": ",".join(
            f"http://{HOST}:{port}" for port in member_ports(patroni_port)
        ),
        "STATELAB_ETCD_URLS": ",".join(f"http://{HOST}:{port}" for port in member_ports(etcd_port)),
    }


def postgres_given() -> bool:
    """True when DATABASE_URL is set: Postgres is provided elsewhere, the stack starts none."""
    return bool(os.environ.get("DATABASE_URL"))


def quorum_given() -> bool:
    """True when QUORUM_NODE_URLS is set: the storage nodes are provided elsewhere."""
    return bool(os.environ.get("QUORUM_NODE_URLS"))


def regions_given() -> bool:
    """True when REGION_URLS is set: the regions are provided elsewhere."""
    return bool(os.environ.get("REGION_URLS"))


def etcd_given() -> bool:
    """True when STATELAB_ETCD_URLS is set: etcd is provided elsewhere."""
    return bool(os.environ.get("STATELAB_ETCD_URLS"))


def redis_given() -> bool:
    """True when REDIS_URL is set: Redis is provided elsewhere, the stack starts none."""
    return bool(os.environ.get("REDIS_URL"))
