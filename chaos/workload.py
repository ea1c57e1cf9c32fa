"""The mixed workload: concurrent clients over HTTP, each recording what it did and saw.

- transfers between a few contended accounts, retried with the same Idempotency-Key when the
  answer is unknown (the point of the key); each client keeps at most ``TRANSFERS_IN_FLIGHT``
  accepted transfers unfinished, like a user who waits for their money to move, so the load
  stays one the saga can carry and "terminal within the bound" tests recovery, not capacity;
- profile writes, each followed by a read of one's own profile under ``session`` consistency
  (read-your-writes) and reads of another profile (monotonic reads);
- increments of one hot counter key.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

import requests

from chaos.checks import TERMINAL
from chaos.history import FAIL, OK, UNKNOWN, History, Operation

TIMEOUT_S = 5.0
TRANSFER_ATTEMPTS = 4
TRANSFERS_IN_FLIGHT = 10


class Client(threading.Thread):
    kind = ""

    def __init__(
        self, name: str, base_url: str, token: str, history: History, stop: threading.Event
    ):
        super().__init__(name=name, daemon=True)
        self.base_url = base_url
        self.history = history
        self.stop_event = stop
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.random = random.Random(name)  # noqa: S311 - workload shape, not security

    def call(self, method: str, path: str, **kwargs) -> tuple[str, requests.Response | None]:
        try:
            response = self.session.request(
                method, self.base_url + path, timeout=TIMEOUT_S, **kwargs
            )
        except requests.RequestException:
            return UNKNOWN, None
        if response.status_code >= 500:
            return UNKNOWN, response
        return (OK if response.status_code < 400 else FAIL), response

    def timed(self, kind: str, action: Callable[[], tuple[str, dict]]) -> Operation:
        started = self.history.now()
        outcome, data = action()
        operation = Operation(self.name, kind, started, self.history.now(), outcome, data)
        self.history.record(operation)
        return operation

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.step()
            time.sleep(self.random.uniform(0.0, 0.02))

    def step(self) -> None:
        raise NotImplementedError


class TransferClient(Client):
    """Moves small amounts from its own accounts to any of the contended accounts."""

    def __init__(
        self, *args, own_accounts: list[int], all_accounts: list[int], currency: str, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.own_accounts = own_accounts
        self.all_accounts = all_accounts
        self.currency = currency
        self.in_flight: deque[str] = deque()

    def _oldest_finished(self) -> bool:
        """Polls the oldest unfinished transfer; True (and forgets it) once it is terminal."""
        outcome, response = self.call("GET", f"/api/transfers/{self.in_flight[0]}/")
        if outcome == OK and response is not None and response.json().get("state") in TERMINAL:
            self.in_flight.popleft()
            return True
        return False

    def step(self) -> None:
        if len(self.in_flight) >= TRANSFERS_IN_FLIGHT and not self._oldest_finished():
            time.sleep(0.2)
            return
        source = self.random.choice(self.own_accounts)
        destination = self.random.choice([a for a in self.all_accounts if a != source])
        body = {
            "source": source,
            "destination": destination,
            "amount": f"{self.random.randint(1, 500) / 100:.2f}",
            "currency": self.currency,
        }
        key = str(uuid.uuid4())

        def create() -> tuple[str, dict]:
            outcome, response = UNKNOWN, None
            for _ in range(TRANSFER_ATTEMPTS):
                outcome, response = self.call(
                    "POST", "/api/transfers/", json=body, headers={"Idempotency-Key": key}
                )
                if outcome != UNKNOWN and not (
                    response is not None and response.status_code == 409
                ):
                    break
                time.sleep(0.2)
            data = {"key": key, **body}
            if response is not None:
                data["status"] = response.status_code
                if outcome == OK:
                    data["transfer"] = response.json().get("id")
                if response.status_code == 409:
                    outcome = UNKNOWN  # the key's first request is still running: it may land
            return outcome, data

        operation = self.timed("transfer", create)
        if operation.data.get("transfer"):
            self.in_flight.append(operation.data["transfer"])


class ProfileClient(Client):
    """Writes its profile, then reads it back under ``session`` consistency; reads another
    user's profile and remembers the highest version seen of each."""

    def __init__(self, *args, user_id: int, other_user_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.user_id = user_id
        self.other_user_id = other_user_id
        self.writes = 0
        self.written_version = 0
        self.seen: dict[str, int] = {}

    def step(self) -> None:
        def write() -> tuple[str, dict]:
            self.writes += 1
            bio = f"chaos {self.name} {self.writes}"  # unique: the checker's registers need it
            outcome, response = self.call("PATCH", "/api/profiles/me/", json={"bio": bio})
            data = {"user": self.user_id, "bio": bio}
            if outcome == OK:
                data["version"] = response.json()["version"]
                self.written_version = max(self.written_version, data["version"])
            return outcome, data

        self.timed("profile_write", write)
        self._read("me", self.user_id, "/api/profiles/me/", must_reach=self.written_version)
        self._read(
            "other", self.other_user_id, f"/api/profiles/{self.other_user_id}/", must_reach=0
        )

    def _read(self, target: str, user_id: int, path: str, must_reach: int) -> None:
        def read() -> tuple[str, dict]:
            outcome, response = self.call("GET", path, headers={"X-Consistency": "session"})
            data = {
                "target": target,
                "user": user_id,
                "must_reach": max(must_reach, self.seen.get(target, 0)),
            }
            if outcome == OK:
                data["version"] = response.json()["version"]
                data["bio"] = response.json()["bio"]
                data["served_by"] = response.headers.get("X-Served-By", "")
                self.seen[target] = max(self.seen.get(target, 0), data["version"])
            return outcome, data

        self.timed("profile_read", read)


class CounterClient(Client):
    def __init__(self, *args, key: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = key

    def step(self) -> None:
        def increment() -> tuple[str, dict]:
            outcome, _response = self.call(
                "POST", f"/api/sharding/counters/{self.key}/increment", json={"by": 1}
            )
            return outcome, {"key": self.key, "by": 1}

        self.timed("increment", increment)
