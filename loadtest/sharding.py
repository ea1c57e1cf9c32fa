"""Sharding scenario: a Zipf-like key population plus one celebrity key taking 30 % of writes.

Interactive:
    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 32 -r 32 -t 30s ShardingZipfUser

The comparison with and without spreading is ``loadtest/sharding_bench.py`` (a benchmark
extra of ``make bench``); below the web tier: ``python -m loadtest.sharding_compare --pgbench``.
"""

from __future__ import annotations

import random

from locust import constant, task

from loadtest.common import DEMO_USERS, TokenUser
from loadtest.zipf import counter_keys

KEYS = counter_keys()


class ShardingZipfUser(TokenUser):
    """30 % of increments to the celebrity key, the rest Zipf over 10 000 user keys."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.username = random.choice(DEMO_USERS)  # noqa: S311 - load shape, not security
        super().on_start()

    @task
    def increment(self) -> None:
        key = KEYS.draw(random)
        name = "celebrity increment" if key == KEYS.celebrity else "counter increment"
        self.client.post(
            f"/api/sharding/counters/{key}/increment", json={"by": 1}, headers=self.auth, name=name
        )
