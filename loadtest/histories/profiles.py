"""Profiles read path, recorded for the spectrum: ``strong``, ``session`` and ``eventual``
(``X-Consistency``) over real HTTP, reads routed to the databases (``Cache-Control:
no-cache``; the write-through cache is ``loadtest/histories/cache.py``).

Each mode runs fresh users: writers each PATCH their own bio (a register per profile, unique
values), read it back and read another writer's; readers read the writers' profiles. Every
user's token is a session of the service (its positions are kept server-side) and a
``session`` of the history. Faults, on a schedule across the run: the replica's apply delay
(the ``replica_delay_ms`` switch, 3 s), then the replica stopped and started (the embedded
stack's). The service's profile version is kept as ``profile_version``, for reading
the history, not as the checker's ``version``: one primary orders each profile's writes in
real time, which is the order the checker assumes without it. After healing and catch-up,
one client reads every profile through each copy
(primary, replica, cache: the ``X-Served-By`` header is the ``replica`` field) as the final
reads ``convergence`` judges.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from checker import Recorder, Session
from loadtest.histories._common import (
    INFO,
    OK,
    Client,
    FaultLog,
    FaultSchedule,
    Step,
    User,
    replicas_caught_up,
    run_clients,
    service_given_or_started,
    stack_component,
    standby_member_name,
    switches_set,
    users_created,
    warm_up,
)

if TYPE_CHECKING:
    from loadtest.service import Service

PATTERN = "profiles"
MODES = ("strong", "session", "eventual")
FAULTS = ("replica_delay", "replica_stop")
WRITERS, READERS = 4, 2
DELAY_MS = 3000  # longer than a request takes on a loaded machine
THINK_S = 0.02


@dataclass(frozen=True)
class ReadPath:
    """How a client reads: the consistency level and whether the cache may answer."""

    level: str
    cache: bool

    def headers(self) -> dict[str, str]:
        headers = {"X-Consistency": self.level}
        if not self.cache:
            headers["Cache-Control"] = "no-cache"
        return headers


FINAL_PATHS = (
    ReadPath("strong", cache=False),
    ReadPath("eventual", False),
    ReadPath("eventual", True),
)


def record(
    *,
    out_dir: Path,
    duration_s: float,
    service: Service | None = None,
    modes: tuple[str, ...] = MODES,
    faults: tuple[str, ...] = FAULTS,
) -> dict[str, Path]:
    """One history per mode (``duration_s`` each); ``service``: a running one to use."""
    paths = {mode: ReadPath(mode, cache=False) for mode in modes}
    return profile_histories_record(
        pattern=PATTERN,
        paths=paths,
        out_dir=out_dir,
        duration_s=duration_s,
        service=service,
        faults=faults,
    )


def profile_histories_record(
    *,
    pattern: str,
    paths: dict[str, ReadPath],
    out_dir: Path,
    duration_s: float,
    service: Service | None,
    faults: tuple[str, ...],
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    histories = {}
    with service_given_or_started(service, out_dir / f"{pattern}-service") as running:
        for mode, path in paths.items():
            history = out_dir / f"{pattern}-{mode}.jsonl"
            history.unlink(missing_ok=True)
            log = _mode_record(
                running,
                pattern=pattern,
                mode=mode,
                path=path,
                history=history,
                duration_s=duration_s,
                faults=faults,
            )
            log.write(out_dir / f"{pattern}-{mode}.faults.json")
            histories[mode] = history
    return histories


def _mode_record(
    service: Service,
    *,
    pattern: str,
    mode: str,
    path: ReadPath,
    history: Path,
    duration_s: float,
    faults: tuple[str, ...],
) -> FaultLog:
    prefix = f"spectrum-{pattern}-{mode}-"
    with (
        users_created(prefix, WRITERS + READERS + 1) as users,
        users_created(prefix + "staff-", 1, staff=True) as (staff,),
        Recorder(history) as recorder,
    ):
        writers, readers, final = users[:WRITERS], users[WRITERS:-1], users[-1]
        warm_up(service, [*users, staff], "/api/profiles/me/")
        log = FaultLog()
        schedule = FaultSchedule(
            _steps(service, staff, faults),
            duration_s,
            log,
            heal=lambda: _heal(service, staff, faults),
        )
        loops = [_writer(service, recorder, user, writers, path) for user in writers]
        loops += [_reader(service, recorder, user, writers, path) for user in readers]
        schedule.start()
        run_clients(loops, duration_s)
        schedule.finish()
        replicas_caught_up()
        _final_reads(service, recorder, final, writers)
    return log


def profile_key(user_id: int) -> str:
    return f"profile:{user_id}"


def _writer(service: Service, recorder: Recorder, user: User, writers: list[User], path: ReadPath):
    def loop(stop: threading.Event) -> None:
        client = Client(service.base_url, user.token)
        session = recorder.session(f"user-{user.id}")
        others = [other for other in writers if other.id != user.id]
        rng = random.Random(user.id)  # noqa: S311 - workload shape, not security
        try:
            while not stop.is_set():
                _write(client, session, user.id, f"v{recorder.unique_value()}")
                _read(client, session, user.id, path, own=True)
                _read(client, session, rng.choice(others).id, path)
                stop.wait(rng.uniform(0, THINK_S))
        finally:
            client.close()

    return loop


def _reader(service: Service, recorder: Recorder, user: User, writers: list[User], path: ReadPath):
    def loop(stop: threading.Event) -> None:
        client = Client(service.base_url, user.token)
        session = recorder.session(f"user-{user.id}")
        rng = random.Random(user.id)  # noqa: S311 - workload shape, not security
        try:
            while not stop.is_set():
                _read(client, session, rng.choice(writers).id, path)
                stop.wait(rng.uniform(0, THINK_S))
        finally:
            client.close()

    return loop


def _write(client: Client, session: Session, user_id: int, bio: str) -> None:
    pending = session.invoke("write", profile_key(user_id), bio)
    outcome, response = client.call("PATCH", "/api/profiles/me/", json={"bio": bio})
    if outcome == OK:
        pending.ok(profile_version=response.json()["version"])
    elif outcome == INFO:
        pending.info(status=response.status_code if response is not None else None)
    else:
        pending.fail(status=response.status_code)


def _read(
    client: Client,
    session: Session,
    user_id: int,
    path: ReadPath,
    *,
    own: bool = False,
    final: bool = False,
) -> None:
    extra = {"final": True} if final else {}
    pending = session.invoke("read", profile_key(user_id), **extra)
    url = "/api/profiles/me/" if own else f"/api/profiles/{user_id}/"
    outcome, response = client.call("GET", url, headers=path.headers())
    if outcome == OK:
        body = response.json()
        pending.ok(
            body["bio"] or None,  # a fresh profile's bio is empty: the register's initial null
            replica=response.headers.get("X-Served-By", "?"),
            cache=response.headers.get("X-Cache"),
            profile_version=body["version"],
        )
    else:  # a read that did not return shows nothing
        pending.fail(status=response.status_code if response is not None else None)


def _final_reads(service: Service, recorder: Recorder, reader: User, writers: list[User]) -> None:
    """After quiescence: every profile through each copy (the primary, the replica, the
    cache)."""
    client = Client(service.base_url, reader.token)
    session = recorder.session("final")
    try:
        for path in FINAL_PATHS:
            for writer in writers:
                _read(client, session, writer.id, path, final=True)
    finally:
        client.close()


def _steps(service: Service, staff: User, faults: tuple[str, ...]) -> list[Step]:
    """The delay from 10 % of the run (to 45 %, or to 80 % without a replica stop), a standby
    of the cluster stopped from 55 % to 80 %, Redis stopped from 55 % to 70 %."""
    standby = standby_member_name() if "replica_stop" in faults else None
    replica = stack_component(standby) if standby else None
    redis = stack_component("redis") if "redis_restart" in faults else None
    steps: list[Step] = []
    if "replica_delay" in faults:
        until = 0.45 if replica is not None else 0.8
        steps += [
            (0.1, f"replica_delay_ms={DELAY_MS}", lambda: _delay(service, staff, DELAY_MS)),
            (until, "replica_delay_ms=0", lambda: _delay(service, staff, 0)),
        ]
    if replica is not None:
        steps += [
            (0.55, f"standby {replica.name} stopped", replica.down),
            (0.8, f"standby {replica.name} started", replica.up),
        ]
    if redis is not None:
        steps += [(0.55, "redis stopped", redis.down), (0.7, "redis started", redis.up)]
    return steps


def _delay(service: Service, staff: User, delay_ms: int) -> None:
    switches_set(service, staff.token, {"replica_delay_ms": delay_ms})


def _heal(service: Service, staff: User, faults: tuple[str, ...]) -> None:
    names = ["redis"] if "redis_restart" in faults else []
    if "replica_stop" in faults:
        names += [f"patroni_{number}" for number in (1, 2, 3)]
    for name in names:
        component = stack_component(name)
        if component is not None:
            component.up()
    _delay(service, staff, 0)
