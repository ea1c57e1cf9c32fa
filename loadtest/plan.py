"""What ``python -m loadtest.bench`` measures. No Locust import here: each scenario names a
user class of ``loadtest/locustfile.py``; baselines and extras run in the driver process."""

from ledger.bench import saga_sql_baseline, transfers_extra
from loadtest.bench import PgbenchBaseline, Scenario
from loadtest.sharding_bench import sharding_comparison

SCENARIOS: list[Scenario] = [
    Scenario(
        "trivial",
        "TrivialUser",
        users=16,
        request="trivial",
        description="GET /api/auth/whoami/ (token auth + DRF, no data)",
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
]

PGBENCH_BASELINES: list[PgbenchBaseline] = [saga_sql_baseline()]

# Callables ``(*, service, scale, work_dir) -> (name, figures)``.
EXTRAS: list = [transfers_extra, sharding_comparison]
