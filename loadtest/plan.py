"""What ``python -m loadtest.bench`` measures. No Locust import here: each scenario names a
user class of ``loadtest/locustfile.py``; baselines and extras run in the driver process."""

from ledger.bench import saga_sql_baseline, transfers_extra
from loadtest.bench import PgbenchBaseline, Scenario
from loadtest.ha_bench import ha_extra
from loadtest.profiles_bench import strategy_comparison
from loadtest.sharding_bench import sharding_comparison

SCENARIOS: list[Scenario] = [
    Scenario(
        "trivial",
        "TrivialUser",
        users=16,
        request="trivial",
        description="GET /api/auth/whoami/ (token auth + DRF, no data)",
        group="reads",
    ),
    Scenario(
        "profile_cached",
        "CachedProfileReadUser",
        users=16,
        request="profile_cached",
        description="GET /api/profiles/me/ under session consistency, from the Redis cache",
        group="reads",
    ),
    Scenario(
        "profile_replica",
        "ReplicaProfileReadUser",
        users=16,
        request="profile_replica",
        description="the same with Cache-Control: no-cache: routed to the caught-up replica",
        group="reads",
    ),
    Scenario(
        "profile_primary",
        "PrimaryProfileReadUser",
        users=16,
        request="profile_primary",
        description="X-Consistency: strong: the primary, no cache",
        group="reads",
    ),
    Scenario(
        "transfers",
        "TransferUser",
        users=8,
        request="transfer_create",
        description="POST /api/transfers/ with an Idempotency-Key (202; the saga runs after)",
    ),
    Scenario(
        "counters_zipf",
        "ShardingZipfUser",
        users=16,
        description="counter increments, Zipf keys, one celebrity key at 30 %",
    ),
    Scenario(
        "mixed",
        "DayInTheLifeUser",
        users=16,
        description="a day in the life: reads, writes, transfers, increments, range reads",
    ),
]

PGBENCH_BASELINES: list[PgbenchBaseline] = [saga_sql_baseline()]

# Callables ``(*, service, scale, work_dir) -> (name, figures)``.
# ha_extra last: it kills the cluster's leader under the running service.
EXTRAS: list = [transfers_extra, sharding_comparison, strategy_comparison, ha_extra]
