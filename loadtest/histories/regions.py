"""The regions' histories for the consistency spectrum (issue 14): the store's real services
on the three region servers, one client per region and mode writing and reading a few keys
through slow links (100 ms each, a third of the time), then a partition ``{r1} | {r2, r3}`` of
the link proxy (the rest); the clients stop, the partition heals, and after quiescence every
region reads every key (final reads, for ``convergence``). The writes stop at the heal as in
the split-brain vignette: what each side wrote last meets at the heal.

Modes (one history file each):

- ``lww-register``: ``lww`` writes and reads (last writer wins by hybrid logical clock);
- ``mv-register``: a Riak-style client: it reads, then writes with the causal context it
  read. A read that answers concurrent siblings (HTTP 300) is not a register value: it is
  recorded as a failed read with the siblings in an extra ``siblings`` field. After the heal a
  resolver session writes one value over the siblings (with their context), as a client must;
- ``counter``: PN-Counter increments and decrements (``increment`` of a signed amount);
- ``or-set``: add-wins observed-remove set, adds and removes of a few elements;
- ``naive``: the vignette's naive store, a plain row updated in place and replicated as it is.

Every operation is recorded with the checker's Recorder (real time, one process per session,
``replica`` = the region that served it). Any exception is ``info`` (its effect unknown); a
naive update that found no row (the row had not arrived yet) is ``fail``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from checker import Recorder

MODES = ("lww-register", "mv-register", "counter", "or-set", "naive")
KINDS = {"lww-register": "lww", "mv-register": "mv", "counter": "counter", "or-set": "orset"}
KEYS_PER_MODE = 3
ELEMENTS = ("red", "green", "blue", "amber")
PARTITION = [["r1"], ["r2", "r3"]]
HEALED = [["r1", "r2", "r3"]]
SETTLE_TIMEOUT_S = 60.0
PAUSE_S = 0.02
SLOW_LINK_MS = 100


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def _wait(predicate: Callable[[], bool], timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


class _Client:
    """One session: a region, a mode, its keys; the causal context of its last read per key."""

    def __init__(
        self,
        recorder: Recorder,
        mode: str,
        region: str,
        keys: list[str],
        *,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        self.recorder = recorder
        self.session = recorder.session(name or f"{mode}@{region}")
        self.mode = mode
        self.region = region
        self.keys = keys
        self.random = random.Random(seed)  # noqa: S311 - a workload, not a secret
        self.contexts: dict[str, Any] = {}

    def step(self) -> None:
        key = self.random.choice(self.keys)
        if self.random.random() < 0.5:
            self.read(key)
        elif self.mode == "mv-register":
            self.read(key)
            self.write(key)
        else:
            self.write(key)

    def read(self, key: str, *, final: bool = False) -> bool:
        """Read the key; True when it answered siblings."""
        extra = {"final": True} if final else {}
        with self.session.operation("read", key, replica=self.region, **extra) as op:
            if self.mode == "naive":
                op.ok(_naive_read(self.region, key), replica=self.region)
                return False
            from regions.store import region_value_get

            result = region_value_get(region=self.region, kind=KINDS[self.mode], key=key)
            self.contexts[key] = result.context
            if result.conflicted:
                op.fail(
                    replica=self.region,
                    siblings=sorted((s["value"] for s in result.siblings), key=str),
                )
                return True
            op.ok(result.value, replica=self.region)
            return False

    def write(self, key: str, value: Any = None) -> None:
        if self.mode == "naive":
            value = self.recorder.unique_value() if value is None else value
            with self.session.operation("write", key, value, replica=self.region) as op:
                if _naive_update(self.region, key, value):
                    op.ok(replica=self.region)
                else:
                    op.fail(replica=self.region)
            return
        from causal.clocks import VectorClock
        from regions.kinds import Operation
        from regions.store import region_value_write

        kind = KINDS[self.mode]
        if kind in ("lww", "mv"):
            value = self.recorder.unique_value() if value is None else value
            f, operation = "write", Operation(kind, "write", value)
        elif kind == "counter":
            value = self.random.choice([1, 2, 3, -1, -2])
            name = "increment" if value > 0 else "decrement"
            f, operation = "increment", Operation(kind, name, abs(value))
        else:
            value = self.random.choice(ELEMENTS)
            f = self.random.choice(["add", "add", "remove"])
            operation = Operation(kind, f, value)
        context = self.contexts.get(key, VectorClock()) if kind == "mv" else VectorClock()
        with self.session.operation(f, key, value, replica=self.region) as op:
            result = region_value_write(
                region=self.region, kind=kind, key=key, operation=operation, context=context
            )
            op.ok(replica=self.region)
        if kind == "mv":
            self.contexts[key] = result.context


def _naive_read(region: str, key: str) -> Any:
    from regions.db import region_connection

    with region_connection(region) as conn:
        row = conn.execute("SELECT value FROM regions_naive WHERE key = %s", (key,)).fetchone()
    return None if row is None else row[0]


def _naive_update(region: str, key: str, value: Any) -> bool:
    from regions.db import region_connection

    with region_connection(region) as conn, conn.transaction():
        updated = conn.execute(
            "UPDATE regions_naive SET value = %s, region = %s WHERE key = %s",
            (json.dumps(value), region, key),
        ).rowcount
    return updated == 1


def _naive_prepare(recorder: Recorder, keys: list[str]) -> None:
    """The naive rows exist in every region before the clients update them (an INSERT of one
    key in two regions would stop the subscription: that is not the failure shown here): r1
    inserts them, recorded as writes of a setup session."""
    from regions.db import region_connection

    setup = recorder.session("naive-setup")
    for key in keys:
        value = recorder.unique_value()
        with setup.operation("write", key, value, replica="r1") as op:
            with region_connection("r1") as conn, conn.transaction():
                conn.execute(
                    "INSERT INTO regions_naive (key, value, region) VALUES (%s, %s, 'r1')",
                    (key, json.dumps(value)),
                )
            op.ok(replica="r1")

    def everywhere() -> bool:
        return all(_naive_read(region, key) is not None for region in HEALED[0] for key in keys)

    if not _wait(everywhere):
        raise RuntimeError("the naive rows did not reach every region")


def _run_clients(clients: list[_Client], until: float) -> None:
    def loop(client: _Client) -> None:
        while time.monotonic() < until:
            try:
                client.step()
            except Exception:  # recorded as info by the operation; the client goes on
                time.sleep(PAUSE_S)
            time.sleep(PAUSE_S)

    threads = [threading.Thread(target=loop, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _settle() -> None:
    """Until every region holds the same versions, then reconcile (anti-entropy folds and
    repairs) and wait again."""
    from regions.convergence import anti_entropy_now, converged

    _wait(converged)
    anti_entropy_now()
    if not _wait(converged):
        raise RuntimeError("the regions did not converge after the heal")


def _resolve_siblings(recorder: Recorder, keys: list[str]) -> bool:
    """A resolver in r1 writes one value over each key's siblings (with their context)."""
    resolver = _Client(recorder, "mv-register", "r1", keys, name="mv-resolver@r1")
    resolved = False
    for key in keys:
        if resolver.read(key):
            resolver.write(key)
            resolved = True
    return resolved


def _naive_quiet(keys: list[str]) -> None:
    """The naive rows stop changing (replication has applied what it carries)."""
    last: dict = {}

    def stable() -> bool:
        nonlocal last
        now = {(region, key): _naive_read(region, key) for region in HEALED[0] for key in keys}
        same, last = now == last, now
        return same

    _wait(stable)
    time.sleep(1.0)


def record(*, out_dir: Path, duration_s: float) -> dict[str, Path]:
    """Run the regions (started here when they do not run, stopped after), partition and heal
    them under every mode's clients; {mode: history file}."""
    _django()
    from devstack import config as stack_config
    from devstack.stack import default_stack
    from regions.conf import REGION_NAMES
    from regions.links import LINKS
    from regions.network import network_set
    from regions.schema import regions_setup

    out_dir.mkdir(parents=True, exist_ok=True)
    stack = default_stack()
    components = stack.select(["regions"])
    started = not stack_config.regions_given() and any(c.pid() is None for c in components)
    if started:
        stack.up(["regions"])
    paths = {mode: out_dir / f"regions-{mode}.jsonl" for mode in MODES}
    for path in paths.values():
        path.unlink(missing_ok=True)
    recorders = {mode: Recorder(paths[mode]) for mode in MODES}
    run = f"h{time.time_ns() % 10**12}"
    keys = {mode: [f"{run}-{mode}-{n}" for n in range(KEYS_PER_MODE)] for mode in MODES}
    try:
        regions_setup()
        network_set(groups=HEALED, delays={})
        _settle()
        _naive_prepare(recorders["naive"], keys["naive"])
        clients = [
            _Client(recorders[mode], mode, region, keys[mode], seed=index)
            for index, (mode, region) in enumerate(
                (mode, region) for mode in MODES for region in REGION_NAMES
            )
        ]
        network_set(groups=HEALED, delays=dict.fromkeys(LINKS, SLOW_LINK_MS))
        _run_clients(clients, time.monotonic() + max(1.0, duration_s / 3))
        network_set(groups=PARTITION, delays=dict.fromkeys(LINKS, 0))
        try:
            _run_clients(clients, time.monotonic() + max(1.0, duration_s * 2 / 3))
        finally:
            network_set(groups=HEALED)
        _settle()
        if _resolve_siblings(recorders["mv-register"], keys["mv-register"]):
            _settle()
        _naive_quiet(keys["naive"])
        for mode in MODES:
            for region in REGION_NAMES:
                reader = _Client(recorders[mode], mode, region, keys[mode], name=f"final@{region}")
                for key in keys[mode]:
                    reader.read(key, final=True)
    finally:
        for recorder in recorders.values():
            recorder.close()
        try:
            network_set(groups=HEALED, delays={})
        finally:
            if started:
                stack.down(["regions"])
    return paths
