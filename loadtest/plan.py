"""What ``python -m loadtest.bench`` measures. Pure data (no Locust import): each scenario names
a user class of ``loadtest/locustfile.py``; baselines and extras run in the driver process."""

from loadtest.bench import PgbenchBaseline, Scenario

SCENARIOS: list[Scenario] = [
    Scenario(
        "trivial",
        "TrivialUser",
        users=16,
        request="trivial",
        description="GET /api/auth/whoami/ (token auth + DRF, no data)",
    ),
]

PGBENCH_BASELINES: list[PgbenchBaseline] = []

# Callables ``(service_url, scale, work_dir) -> (name, figures)``.
EXTRAS: list = []
