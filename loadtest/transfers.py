"""Transfers under load (issue 3): each user moves 0.01 EUR back and forth between two of its
own accounts with a fresh ``Idempotency-Key`` per request, as a client of the saga would.

The HTTP figures here are the request side only (POST -> 202). Completed transfers per second
and request-to-completed latency, and the ratio to pgbench running the saga's SQL, come from
``python -m loadtest.saga_bench``, which drives the same requests and reads the outcome from the
ledger.

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 8 -r 8 -t 30s TransferUser
"""

from __future__ import annotations

import uuid

from locust import constant, task

from loadtest.common import TokenUser


def own_account_pair(user: TokenUser) -> tuple[int, int]:
    """Two EUR accounts of the user (opened if missing): transfers go back and forth."""
    listed = user.client.get("/api/accounts/", headers=user.auth, name="accounts").json()
    mine = [row["id"] for row in listed["results"] if row["currency"] == "EUR"]
    while len(mine) < 2:
        created = user.client.post(
            "/api/accounts/", json={"currency": "EUR"}, headers=user.auth, name="accounts"
        )
        mine.append(created.json()["id"])
    return mine[0], mine[1]


def transfer_create(user: TokenUser, source: int, destination: int) -> None:
    with user.client.post(
        "/api/transfers/",
        json={"source": source, "destination": destination, "amount": "0.01", "currency": "EUR"},
        headers={**user.auth, "Idempotency-Key": str(uuid.uuid4())},
        name="transfer_create",
        catch_response=True,
    ) as response:
        if response.status_code != 202:
            response.failure(f"{response.status_code}: {response.text[:200]}")


class TransferUser(TokenUser):
    wait_time = constant(0)
    accounts: tuple[int, int] = (0, 0)
    forward = True

    def on_start(self) -> None:
        super().on_start()
        self.accounts = own_account_pair(self)

    @task
    def transfer(self) -> None:
        source, destination = self.accounts if self.forward else self.accounts[::-1]
        self.forward = not self.forward
        transfer_create(self, source, destination)


class BobTransferUser(TransferUser):
    username = "bob"
