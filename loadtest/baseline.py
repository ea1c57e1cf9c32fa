"""The baseline every ratio is measured against: the cheapest authenticated endpoint."""

from locust import constant, task

from loadtest.common import TokenUser


class TrivialUser(TokenUser):
    """``GET /api/auth/whoami/``: authentication, routing, DRF rendering, nothing else."""

    wait_time = constant(0)

    @task
    def whoami(self) -> None:
        self.client.get("/api/auth/whoami/", headers=self.auth, name="trivial")
