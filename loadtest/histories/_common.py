"""What the statelab patterns' recorders share: the service to call, throwaway users with
tokens, HTTP calls classified the checker's way, the fault switches and the stack's
components, and a fault schedule run beside the clients.

Needs Django set up (``loadtest.cli.django_setup``; pytest-django in tests): users, tokens and
replay positions are read and written through the ORM, on the databases the service uses.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from loadtest.service import Service, service_running

TIMEOUT_S = 10.0
OK, FAIL, INFO = "ok", "fail", "info"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def service_given_or_started(service: Service | None, log_dir: Path) -> Iterator[Service]:
    """``service`` when the caller runs one (``make bench``), else a service of our own (web,
    one Celery worker, beat) on a free port, stopped afterwards."""
    if service is not None:
        yield service
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    with service_running(free_port(), log_dir, web_workers=2) as started:
        yield started


@dataclass(frozen=True)
class User:
    id: int
    token: str


@contextmanager
def users_created(prefix: str, count: int, *, staff: bool = False) -> Iterator[list[User]]:
    """``count`` fresh users (each with a new profile and an API token: a session of its
    own), deleted afterwards."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    user_model.objects.filter(username__startswith=prefix).delete()
    users = []
    for number in range(count):
        user = user_model.objects.create(username=f"{prefix}{number}", is_staff=staff)
        users.append(User(id=user.pk, token=Token.objects.create(user=user).key))
    try:
        yield users
    finally:
        user_model.objects.filter(username__startswith=prefix).delete()


class Client:
    """One HTTP client (one thread): a token, a connection pool, answers classified."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[str, requests.Response | None]:
        """``ok`` (2xx), ``fail`` (4xx: refused, nothing happened) or ``info`` (5xx, timeout,
        connection error: it may or may not have happened)."""
        try:
            response = self.http.request(method, self.base_url + path, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException:
            return INFO, None
        if response.status_code >= 500:
            return INFO, response
        return (OK if response.status_code < 400 else FAIL), response

    def close(self) -> None:
        self.http.close()


def switches_set(service: Service, staff_token: str, values: dict[str, Any]) -> None:
    """PATCH the fault switches (``/api/faults/``, staff only), retried a few times."""
    for attempt in range(5):
        try:
            response = requests.patch(
                service.base_url + "/api/faults/",
                json=values,
                headers={"Authorization": f"Token {staff_token}"},
                timeout=30,
            )
            response.raise_for_status()
            return
        except requests.RequestException:
            if attempt == 4:
                raise
            time.sleep(0.5)


def replicas_caught_up(timeout_s: float = 60) -> None:
    """Every replica has replayed the primary's current WAL position."""
    from django.conf import settings
    from django.db import connections

    from consistency.replicas import primary_wal_lsn, wait_for_replay

    target = primary_wal_lsn()
    for alias in settings.REPLICA_ALIASES:
        connections[alias].close()
        if not wait_for_replay(alias, target, timeout_s=timeout_s):
            raise RuntimeError(f"{alias} did not catch up within {timeout_s} s")


def standby_member_name() -> str | None:
    """A member of the HA cluster that is a standby now (the replica aliases read from them)."""
    from ha.patroni import patroni_client

    return next((m.name for m in patroni_client().cluster() if not m.is_leader), None)


def stack_component(name: str) -> Any | None:
    """The embedded stack's component ``name`` (``patroni_2``, ``redis``), or None when
    Postgres or Redis is given by URL (then it is not ours to stop)."""
    from devstack import config as devstack_config
    from devstack.stack import default_stack

    if devstack_config.postgres_given() or devstack_config.redis_given():
        return None
    return default_stack().component(name)


@dataclass
class FaultLog:
    """What was injected and when (seconds from the start of the mode's run)."""

    origin: float = field(default_factory=time.monotonic)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def note(self, fault: str, detail: str = "") -> None:
        self.entries.append(
            {"at_s": round(time.monotonic() - self.origin, 2), "fault": fault, "detail": detail}
        )

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.entries, indent=2))
        return path


Step = tuple[float, str, Callable[[], None]]


class FaultSchedule(threading.Thread):
    """Runs ``steps`` (fraction of ``duration_s``, fault name, action) in order while the
    clients run; ``heal`` runs at the end whatever happened."""

    def __init__(
        self, steps: list[Step], duration_s: float, log: FaultLog, heal: Callable[[], None]
    ) -> None:
        super().__init__(name="fault-schedule", daemon=True)
        self.steps = sorted(steps, key=lambda step: step[0])
        self.duration_s = duration_s
        self.log = log
        self.heal = heal
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for fraction, name, action in self.steps:
                delay = self.log.origin + fraction * self.duration_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                action()
                self.log.note(name)
        except BaseException as error:  # reported by finish(), after healing
            self.error = error

    def finish(self) -> None:
        self.join(timeout=self.duration_s + 120)
        with suppress(Exception):
            self.heal()
        self.log.note("healed")
        if self.error is not None:
            raise RuntimeError(f"a fault step failed: {self.error!r}") from self.error


def warm_up(service: Service, users: list[User], path: str = "/api/auth/whoami/") -> None:
    """One unrecorded call per user, all at once: the web workers' first requests (imports,
    connections) do not fall into the recorded window."""
    threads = [
        threading.Thread(target=Client(service.base_url, user.token).call, args=("GET", path))
        for user in users
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S * 2)


def run_clients(loops: list[Callable[[threading.Event], None]], duration_s: float) -> None:
    """Run each loop in a thread of its own until ``duration_s`` has passed; join them."""
    stop = threading.Event()
    threads = [threading.Thread(target=loop, args=(stop,), daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    time.sleep(duration_s)
    stop.set()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S * 4)
