"""Sharding scenario: a Zipf-like key population plus one celebrity key taking 30 % of writes.

Interactive:
    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 32 -r 32 -t 30s ShardingZipfUser

The comparison with and without spreading is ``loadtest/sharding_bench.py`` (a benchmark
extra of ``make bench``); below the web tier: ``manage.py sharding_compare --pgbench``.
"""

from __future__ import annotations

import bisect
import os
import random
from pathlib import Path

from locust import constant, task

from loadtest.common import DEMO_USERS, TokenUser

ROOT = Path(__file__).resolve().parent.parent
CELEBRITY = os.environ.get("STATELAB_BENCH_CELEBRITY", "celebrity")
CELEBRITY_SHARE = 0.3
KEYS = 10_000


def _cumulative(keys: int, exponent: float = 1.0) -> list[float]:
    weights = [1 / rank**exponent for rank in range(1, keys + 1)]
    total, running, cumulative = sum(weights), 0.0, []
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    return cumulative


ZIPF = _cumulative(KEYS)


class ShardingZipfUser(TokenUser):
    """30 % of increments to the celebrity key, the rest Zipf over 10 000 user keys."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.username = random.choice(DEMO_USERS)  # noqa: S311 - load shape, not security
        super().on_start()

    @task
    def increment(self) -> None:
        if random.random() < CELEBRITY_SHARE:  # noqa: S311
            key, name = CELEBRITY, "celebrity increment"
        else:
            rank = min(bisect.bisect_left(ZIPF, random.random()), KEYS - 1) + 1  # noqa: S311
            key, name = f"user:{rank}", "counter increment"
        self.client.post(
            f"/api/sharding/counters/{key}/increment", json={"by": 1}, headers=self.auth, name=name
        )
