"""What every scenario needs: logging in with a token (once per user and process), the demo
users, the shared settings."""

from __future__ import annotations

import json
import os

from locust import FastHttpUser

from loadtest.tokens import token_shared

DEMO_PASSWORD = os.environ.get("STATELAB_DEMO_PASSWORD", "statelab-demo")
DEMO_USERS = ("alice", "bob")


class TokenUser(FastHttpUser):
    """A user that sends ``Authorization: Token``. The benchmark driver issues the tokens
    beforehand (``STATELAB_BENCH_TOKENS``), so that password hashing at log-in does not fall
    into the measured window; used interactively, the user logs in with its password."""

    abstract = True
    username = "alice"
    token = ""

    def on_start(self) -> None:
        issued = json.loads(os.environ.get("STATELAB_BENCH_TOKENS", "{}"))
        if self.username in issued:
            self.token = issued[self.username]
            return
        self.token = token_shared(self.username, self.log_in)

    def log_in(self) -> str:
        response = self.client.post(
            "/api/auth/token/",
            json={"username": self.username, "password": DEMO_PASSWORD},
            name="/api/auth/token/",
        )
        response.raise_for_status()
        return response.json()["token"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}
