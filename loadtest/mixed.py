"""A day in the life: the mix the service sees in a normal hour, for goodput at an SLO.

Per 100 actions: 40 profile reads (session consistency), 5 profile edits, 10 transfers
between one's own accounts, 30 counter increments over Zipf keys (one celebrity key), 10
``whoami`` and 5 cross-shard event range reads. Each user thinks 50-200 ms between actions,
so the stepped load of ``make bench`` raises the offered rate by adding users.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from locust import between, task

from loadtest.common import DEMO_USERS, TokenUser
from loadtest.sharding import ShardingZipfUser
from loadtest.transfers import own_account_pair, transfer_create


class DayInTheLifeUser(TokenUser):
    wait_time = between(0.05, 0.2)
    accounts: tuple[int, int] = (0, 0)

    def on_start(self) -> None:
        self.username = random.choice(DEMO_USERS)  # noqa: S311 - load shape, not security
        super().on_start()
        self.accounts = own_account_pair(self)

    @task(40)
    def profile_read(self) -> None:
        self.client.get("/api/profiles/me/", headers=self.auth, name="mixed: profile read")

    @task(5)
    def profile_edit(self) -> None:
        self.client.patch(
            "/api/profiles/me/",
            json={"bio": f"edited {uuid.uuid4().hex[:8]}"},
            headers=self.auth,
            name="mixed: profile edit",
        )

    @task(10)
    def transfer_between_own_accounts(self) -> None:
        source, destination = random.sample(self.accounts, 2)
        transfer_create(self, source, destination)

    @task(30)
    def counter_increment(self) -> None:
        ShardingZipfUser.increment(self)

    @task(10)
    def whoami(self) -> None:
        self.client.get("/api/auth/whoami/", headers=self.auth, name="mixed: whoami")

    @task(5)
    def events_range(self) -> None:
        until = datetime.now(UTC)
        self.client.get(
            "/api/sharding/events/",
            params={
                "since": (until - timedelta(minutes=5)).isoformat(),
                "until": until.isoformat(),
            },
            headers=self.auth,
            name="mixed: events range",
        )
