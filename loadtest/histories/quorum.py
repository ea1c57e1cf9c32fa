"""The quorum store's histories for the consistency spectrum (issue 14): the coordinator
(``quorum.coordinator``, what the API calls) on the real storage nodes of the stack's
``quorum`` group, under one fault schedule per mode, recorded with the checker's Recorder.

Modes (one history file each, N = 3 throughout):

- ``N3-W1-R1``: W + R <= N, reads may miss acknowledged writes;
- ``N3-W2-R2``: a strict majority quorum, W + R > N;
- ``N3-W3-R1``: a strict quorum with every replica written and one read, W + R > N;
- ``sloppy``: W = R = 2 with ``sloppy=true``: a write whose preferred node is down goes to
  the next healthy node with a hint, handed off once the node is back.

Workload, the same for every mode: a few keys whose preference list is exactly n2, n3, n4.
Each key has one writer session (a unique value per write, the causal context of its last
write passed on, so its writes replace each other and never make siblings) that reads the key
back after each write; two reader sessions read every key in turn. A write is ``ok`` when W
replicas counted, else ``info`` (it is not rolled back: it may have landed); a read is ``ok``
with the value it returned (null when the R answers hold no version, ``replica`` the nodes that
answered), ``fail`` when fewer than R answered, and also ``fail`` when it answered concurrent
siblings (not a register value: they go in a ``siblings`` field, as in the regions' history).

Faults, in quarters of ``duration_s``: n2 slow (every packet of its route held 100 ms plus a
random 0..100 ms); n3 frozen by SIGSTOP; n4 stopped; n3 and n4 stopped (two of the three
preferred nodes: strict W = 2 cannot be met, the sloppy quorum writes hints). Then the clients
pause (the operations running complete) while both nodes start again, and the sessions only
read for one more second *before* any hint is handed off: the sloppy quorum's stale window,
until read repair or a later write replaces what the returned nodes missed. The clients stop,
hints are handed off until none is left, the background replica sends settle, and a final
read of every key on each of its three nodes, straight from the node's storage (``final``,
``replica`` = the node), says what each replica holds: there is no anti-entropy, so a replica
that missed a write and was not repaired by a read since keeps its old value (``convergence``
shows it). The faults and their times go to ``quorum-<mode>.faults.json`` beside each history.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from checker import Recorder

N = 3
MODES: dict[str, tuple[int, int, bool]] = {
    "N3-W1-R1": (1, 1, False),
    "N3-W2-R2": (2, 2, False),
    "N3-W3-R1": (3, 1, False),
    "sloppy": (2, 2, True),
}
PREFERENCE = ("n2", "n3", "n4")
SLOW_NODE, FROZEN_NODE, STOPPED_NODES = "n2", "n3", ("n4", "n3")
KEYS_PER_MODE = 6
READERS = 2
PAUSE_S = 0.01
RETURNED_WINDOW_S = 1.0
MIN_DURATION_S = 2.0


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


class _Faults:
    """The fault schedule's switches, with what was done and when (seconds from the start)."""

    def __init__(self) -> None:
        self.origin = time.monotonic()
        self.entries: list[dict[str, Any]] = []

    def note(self, fault: str, detail: str = "") -> None:
        self.entries.append(
            {"at_s": round(time.monotonic() - self.origin, 2), "fault": fault, "detail": detail}
        )

    def slow(self, node: str) -> None:
        from loadtest.quorum_bench import SLOW_DELAY_MS, SLOW_JITTER_MS, slow_node_set

        slow_node_set(node)
        self.note("slow", f"{node}: {SLOW_DELAY_MS} ms + 0..{SLOW_JITTER_MS} ms per packet")

    def down(self, node: str, how: str) -> None:
        from quorum.control import node_state_set

        node_state_set(node=node, state="down", how=how)
        self.note("freeze" if how == "freeze" else "stop", node)

    def up(self, node: str) -> None:
        from quorum.control import node_state_set

        node_state_set(node=node, state="up")
        self.note("up", node)

    def up_together(self, nodes: tuple[str, ...]) -> None:
        """Start `nodes` at the same time (one after the other, the first back would be read
        and repaired alone before the second is back)."""
        starters = [threading.Thread(target=self.up, args=(node,)) for node in nodes]
        for starter in starters:
            starter.start()
        for starter in starters:
            starter.join()


def _keys(run_id: str, mode: str) -> list[str]:
    from loadtest.quorum_bench import keys_where

    return keys_where(
        f"{run_id}-{mode}", KEYS_PER_MODE, lambda preference: set(preference) == set(PREFERENCE)
    )


class _Workload:
    """The writer and reader sessions of one mode, until ``stop`` is set."""

    def __init__(self, recorder: Recorder, keys: list[str], w: int, r: int, sloppy: bool):
        self.recorder = recorder
        self.keys = keys
        self.w, self.r, self.sloppy = w, r, sloppy
        self.stop = threading.Event()
        self.writes_paused = threading.Event()
        self.all_paused = threading.Event()
        self._running = 0
        self._quiet = threading.Condition()

    @contextmanager
    def _op(self) -> Iterator[None]:
        with self._quiet:
            self._running += 1
        try:
            yield
        finally:
            with self._quiet:
                self._running -= 1
                self._quiet.notify_all()

    def pause(self) -> None:
        """No new operation starts, and the ones running have completed."""
        self.all_paused.set()
        with self._quiet:
            self._quiet.wait_for(lambda: self._running == 0, timeout=30)

    def write(self, session, key: str, context):
        """One recorded write; the context covering it (when a node issued its dot)."""
        from quorum.coordinator import value_write

        value = self.recorder.unique_value()
        with self._op(), session.operation("write", key, value) as op:
            result = value_write(
                key=key, value=value, context=context, n=N, w=self.w, sloppy=self.sloppy
            )
            if result.counted >= self.w:
                op.ok()
            else:
                op.info(acknowledged=[ack.node for ack in result.acknowledged])
        return result.context if result.dot is not None else context

    def read(self, session, key: str) -> None:
        from quorum.coordinator import value_read

        with self._op(), session.operation("read", key) as op:
            result = value_read(key=key, n=N, r=self.r)
            answered = ",".join(sorted(result.answered))
            if len(result.answered) < self.r:
                op.fail(replica=answered)
            elif len(result.siblings) > 1:
                op.fail(replica=answered, siblings=[s.value for s in result.siblings])
            else:
                value = result.siblings[0].value if result.siblings else None
                op.ok(value, replica=answered)

    def writer(self, key: str) -> None:
        from causal.clocks import VectorClock

        session = self.recorder.session(f"writer-{key}")
        context = VectorClock()
        while not self.stop.is_set():
            if self.all_paused.is_set():
                time.sleep(PAUSE_S)
                continue
            if not self.writes_paused.is_set():
                with suppress(Exception):
                    context = self.write(session, key, context)
            with suppress(Exception):
                self.read(session, key)
            time.sleep(PAUSE_S)

    def reader(self, number: int) -> None:
        session = self.recorder.session(f"reader-{number}")
        while not self.stop.is_set():
            for key in self.keys:
                if self.all_paused.is_set():
                    break
                with suppress(Exception):
                    self.read(session, key)
                time.sleep(PAUSE_S)

    def threads(self) -> list[threading.Thread]:
        loops: list[tuple[Callable[..., None], tuple]] = [
            (self.writer, (key,)) for key in self.keys
        ] + [(self.reader, (number,)) for number in range(READERS)]
        return [
            threading.Thread(target=loop, args=args, daemon=True, name=f"quorum-{loop.__name__}")
            for loop, args in loops
        ]


def _healed(faults: _Faults) -> None:
    from quorum.control import node_state_set, nodes_list

    for state in nodes_list():
        if state.state != "up":
            node_state_set(node=state.name, state="up")
            faults.note("up", state.name)


def _hints_handed_off(faults: _Faults) -> None:
    from quorum.client import health
    from quorum.handoff import hints_hand_off

    health().forget()
    delivered = 0
    for _ in range(50):
        handed = sum(hints_hand_off().values())
        if not handed:
            break
        delivered += handed
    faults.note("handoff", f"{delivered} hinted versions delivered")


def _final_reads(recorder: Recorder, keys: list[str]) -> None:
    """Each key's versions on each of its nodes, read straight from the node's storage."""
    from quorum.client import node_call
    from quorum.conf import conf
    from quorum.storage import versions_read

    session = recorder.session("final")
    for key in keys:
        for node in PREFERENCE:
            with session.operation("read", key, final=True) as op:
                stored = node_call(
                    conf().node(node),
                    lambda conn, key=key: versions_read(conn, key=key),
                    timeout_s=10,
                )
                values = [version.value for version in stored]
                if len(values) > 1:
                    op.fail(replica=node, siblings=values)
                else:
                    op.ok(values[0] if values else None, replica=node)


def mode_record(mode: str, *, out_dir: Path, duration_s: float, run_id: str) -> Path:
    """One mode's history (see the module docstring); its path."""
    from quorum.client import health
    from quorum.conf import conf

    w, r, sloppy = MODES[mode]
    path = out_dir / f"quorum-{mode}.jsonl"
    path.unlink(missing_ok=True)
    keys = _keys(run_id, mode)
    quarter = max(MIN_DURATION_S, duration_s) / 4
    faults = _Faults()
    with Recorder(path) as recorder:
        workload = _Workload(recorder, keys, w, r, sloppy)
        threads = workload.threads()
        try:
            faults.slow(SLOW_NODE)
            for thread in threads:
                thread.start()
            time.sleep(quarter)
            faults.up(SLOW_NODE)
            faults.down(FROZEN_NODE, "freeze")
            time.sleep(quarter)
            faults.up(FROZEN_NODE)
            faults.down(STOPPED_NODES[0], "stop")
            time.sleep(quarter)
            faults.down(STOPPED_NODES[1], "stop")
            time.sleep(quarter)
            workload.writes_paused.set()
            workload.pause()
            faults.note("clients paused")
            faults.up_together(STOPPED_NODES)
            workload.all_paused.clear()
            faults.note("reads only", "before any hint is handed off")
            time.sleep(RETURNED_WINDOW_S)
        finally:
            workload.stop.set()
            for thread in threads:
                thread.join(timeout=30)
            _healed(faults)
        _hints_handed_off(faults)
        time.sleep(conf().node_timeout_s + 0.5)  # the writes' background replica sends
        health().forget()
        faults.note("quiescent", "final reads of every key on each of its nodes")
        _final_reads(recorder, keys)
    path.with_name(f"quorum-{mode}.faults.json").write_text(json.dumps(faults.entries, indent=2))
    return path


def record(
    *, out_dir: Path, duration_s: float, modes: tuple[str, ...] = tuple(MODES)
) -> dict[str, Path]:
    """One history per mode, ``duration_s`` each (at least 2 s: a quarter per fault); the
    quorum group is started if it does not run (and left running)."""
    _django()
    from loadtest.quorum_bench import quorum_ready

    out_dir.mkdir(parents=True, exist_ok=True)
    quorum_ready()
    run_id = f"spectrum{uuid.uuid4().hex[:8]}"
    return {
        mode: mode_record(mode, out_dir=out_dir, duration_s=duration_s, run_id=run_id)
        for mode in modes
    }
