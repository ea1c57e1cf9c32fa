"""Sharded counters, recorded for the spectrum across bucket moves, over real HTTP.

Clients increment two fresh counter keys (one takes most increments and turns hot: its
increments spread over slots on several shards and are folded back) and read them: mode
``fresh`` reads the exact merge (``?fresh=true``), mode ``cached`` the default read (a hot
key's merged value may come from Redis, up to ``SHARDING_MERGED_CACHE_MS`` old). Faults: the
hot key's bucket is moved to another shard and, later, moved back (``sharding.moves``, the
copy/fence/switch a rebalance does), while the clients run. After quiescence (the merged
cache expired), one client reads each key both ways (``replica`` ``fresh`` and ``cached``)
as the final reads.
"""

from __future__ import annotations

import random
import threading
import time
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
    run_clients,
    service_given_or_started,
    users_created,
    warm_up,
)

if TYPE_CHECKING:
    from loadtest.service import Service

PATTERN = "counters"
MODES = ("fresh", "cached")
FAULTS = ("bucket_move",)
INCREMENTERS, READERS = 4, 2
HOT_SHARE = 0.9
THINK_S = 0.01
READS = {"fresh": "?fresh=true", "cached": ""}


def record(
    *,
    out_dir: Path,
    duration_s: float,
    service: Service | None = None,
    modes: tuple[str, ...] = MODES,
    faults: tuple[str, ...] = FAULTS,
) -> dict[str, Path]:
    """One history per mode (``duration_s`` each); ``service``: a running one to use."""
    out_dir.mkdir(parents=True, exist_ok=True)
    histories = {}
    with service_given_or_started(service, out_dir / f"{PATTERN}-service") as running:
        for mode in modes:
            history = out_dir / f"{PATTERN}-{mode}.jsonl"
            history.unlink(missing_ok=True)
            log = _mode_record(running, mode, history, duration_s, faults)
            log.write(out_dir / f"{PATTERN}-{mode}.faults.json")
            histories[mode] = history
    return histories


def _mode_record(
    service: Service, mode: str, history: Path, duration_s: float, faults: tuple[str, ...]
) -> FaultLog:
    from sharding.conf import conf

    stamp = time.strftime("%Y%m%d%H%M%S")
    keys = [f"spectrum-{mode}-{stamp}-hot", f"spectrum-{mode}-{stamp}-cool"]
    with (
        users_created(f"spectrum-{PATTERN}-{mode}-", INCREMENTERS + READERS + 1) as users,
        Recorder(history) as recorder,
    ):
        warm_up(service, users)
        log = FaultLog()
        steps = _steps(keys[0]) if "bucket_move" in faults else []
        schedule = FaultSchedule(steps, duration_s, log, heal=lambda: None)
        loops = [_incrementer(service, recorder, user, keys) for user in users[:INCREMENTERS]]
        loops += [_reader(service, recorder, user, keys, mode) for user in users[INCREMENTERS:-1]]
        schedule.start()
        run_clients(loops, duration_s)
        schedule.finish()
        time.sleep(conf().merged_cache_s + 0.5)  # the cached merge expires: quiescence
        _final_reads(service, recorder, users[-1], keys)
    return log


def _incrementer(service: Service, recorder: Recorder, user: User, keys: list[str]):
    def loop(stop: threading.Event) -> None:
        client = Client(service.base_url, user.token)
        session = recorder.session(f"user-{user.id}")
        rng = random.Random(user.id)  # noqa: S311 - workload shape, not security
        try:
            while not stop.is_set():
                key = keys[0] if rng.random() < HOT_SHARE else keys[1]
                _increment(client, session, key)
                stop.wait(rng.uniform(0, THINK_S))
        finally:
            client.close()

    return loop


def _reader(service: Service, recorder: Recorder, user: User, keys: list[str], mode: str):
    def loop(stop: threading.Event) -> None:
        client = Client(service.base_url, user.token)
        session = recorder.session(f"user-{user.id}")
        rng = random.Random(user.id)  # noqa: S311 - workload shape, not security
        try:
            while not stop.is_set():
                _read(client, session, rng.choice(keys), mode)
                stop.wait(rng.uniform(0, THINK_S * 5))
        finally:
            client.close()

    return loop


def _increment(client: Client, session: Session, key: str) -> None:
    pending = session.invoke("increment", key, 1)
    outcome, response = client.call(
        "POST", f"/api/sharding/counters/{key}/increment", json={"by": 1}
    )
    if outcome == OK:
        pending.ok(shard=response.json()["shard"])
    elif outcome == INFO:
        pending.info(status=response.status_code if response is not None else None)
    else:
        pending.fail(status=response.status_code)


def _read(client: Client, session: Session, key: str, mode: str, *, final: bool = False) -> None:
    extra = {"final": True} if final else {}
    pending = session.invoke("read", key, **extra)
    outcome, response = client.call("GET", f"/api/sharding/counters/{key}{READS[mode]}")
    if outcome == OK:
        body = response.json()
        pending.ok(
            body["value"],
            replica=mode,
            cached=body["cached"],
            hot=body["hot"],
            map_version=body["map_version"],
        )
    elif outcome == INFO or response.status_code != 404:
        pending.fail(status=response.status_code if response is not None else None)
    else:  # a counter never incremented yet is a 404: it reads 0
        pending.ok(0, replica=mode)


def _final_reads(service: Service, recorder: Recorder, reader: User, keys: list[str]) -> None:
    client = Client(service.base_url, reader.token)
    session = recorder.session("final")
    try:
        for mode in READS:
            for key in keys:
                _read(client, session, key, mode, final=True)
    finally:
        client.close()


def _steps(key: str) -> list[Step]:
    home: dict[str, str] = {}

    def move_away() -> None:
        home["shard"] = _move(key, None)

    def move_back() -> None:
        _move(key, home["shard"])

    return [(0.3, "bucket move (hot key)", move_away), (0.65, "bucket move back", move_back)]


def _move(key: str, target: str | None) -> str:
    """Move ``key``'s bucket to ``target`` (another shard when None); returns where it was."""
    from django.conf import settings
    from django.db import connections

    from sharding.moves import bucket_move
    from sharding.placement import bucket_map_current, bucket_of

    try:
        bucket_map = bucket_map_current(force=True)
        bucket = bucket_of(key, len(bucket_map.assignment))
        source = bucket_map.shard_of_bucket(bucket)
        if target is None:
            target = next(alias for alias in settings.SHARD_ALIASES if alias != source)
        bucket_move(bucket=bucket, target=target)
        return source
    finally:
        connections.close_all()
