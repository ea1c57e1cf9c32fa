"""What ``python -m loadtest.bench`` measures. No Locust import here: each scenario names a
user class of ``loadtest/locustfile.py``; baselines and extras run in the driver process.
Imported once Django is set up."""

from loadtest.extras import Extra
from loadtest.ha_bench import HA
from loadtest.locust_runs import Scenario
from loadtest.pgbench import PgbenchBaseline
from loadtest.profiles_bench import ROUTING
from loadtest.quorum_bench import QUORUM
from loadtest.regions_bench import REGIONS
from loadtest.saga_bench import BENCH_ACCOUNTS, PGBENCH_BATCH, TRANSFERS
from loadtest.saga_sql import saga_sql_baseline
from loadtest.sharding_bench import SHARDING
from loadtest.spectrum import SPECTRUM

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

PGBENCH_BASELINES: list[PgbenchBaseline] = [
    saga_sql_baseline(accounts=BENCH_ACCOUNTS, batch=PGBENCH_BATCH)
]

# Run in this order, after the scenarios; ``--extras`` picks some by name. HA last: it kills
# the cluster's leader under the running service.
EXTRAS: list[Extra] = [TRANSFERS, SHARDING, ROUTING, REGIONS, QUORUM, SPECTRUM, HA]
