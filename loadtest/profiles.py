"""Profile read scenarios for the benchmark (``loadtest/plan.py`` names the user classes).

- ``CachedProfileReadUser``: ``GET /api/profiles/me/`` under ``session``, served from Redis.
- ``ReplicaProfileReadUser``: the same with ``Cache-Control: no-cache``: routed to a replica
  that has the session's writes (the benchmark writes nothing, so every replica qualifies).
- ``PrimaryProfileReadUser``: ``X-Consistency: strong``: the primary, no cache.
- ``ProfileWriteReadUser``: PATCH then GET of one's own profile (read-your-writes under load).

Aims (issue 4): cached read >= 0.9 x the trivial endpoint; replica read >= 0.95 x primary read.
The routing-strategy comparison is ``loadtest/profiles_bench.py`` (a benchmark extra).
"""

from __future__ import annotations

from itertools import count

from locust import constant, task

from loadtest.common import TokenUser


class CachedProfileReadUser(TokenUser):
    wait_time = constant(0)

    @task
    def read_cached(self) -> None:
        with self.client.get(
            "/api/profiles/me/", headers=self.auth, name="profile_cached", catch_response=True
        ) as response:
            if response.headers.get("X-Cache") not in ("hit", "miss"):
                response.failure(f"not from the cache: X-Cache={response.headers.get('X-Cache')}")


class ReplicaProfileReadUser(TokenUser):
    wait_time = constant(0)
    username = "bob"

    @task
    def read_replica(self) -> None:
        headers = {**self.auth, "Cache-Control": "no-cache"}
        with self.client.get(
            "/api/profiles/me/", headers=headers, name="profile_replica", catch_response=True
        ) as response:
            if not str(response.headers.get("X-Served-By", "")).startswith("replica_"):
                response.failure(f"served by {response.headers.get('X-Served-By')}")


class PrimaryProfileReadUser(TokenUser):
    wait_time = constant(0)
    username = "bob"

    @task
    def read_primary(self) -> None:
        headers = {**self.auth, "X-Consistency": "strong"}
        self.client.get("/api/profiles/me/", headers=headers, name="profile_primary")


class ProfileWriteReadUser(TokenUser):
    """Writes then reads back: the read-back must show the write (checked per request)."""

    wait_time = constant(0)
    _numbers = count()

    @task
    def write_then_read(self) -> None:
        written = self.client.patch(
            "/api/profiles/me/",
            json={"bio": f"load {next(self._numbers)}"},
            headers=self.auth,
            name="profile_write",
        )
        if written.status_code != 200:
            return
        with self.client.get(
            "/api/profiles/me/", headers=self.auth, name="profile_read_back", catch_response=True
        ) as response:
            # Other users of the same account write too: the read-back may be newer, never older.
            if (
                response.status_code == 200
                and response.json()["version"] < written.json()["version"]
            ):
                response.failure("read-back older than the write (stale read)")
