"""The coordinator: Dynamo's write and read paths over the storage nodes.

Write (``value_write``), for key k with N, W and the writer's causal context C:
1. The preference list: the first N distinct nodes on the ring from k (``quorum.ring``); with
   ``sloppy`` a preferred node this process suspects to be down is replaced at once by the next
   healthy node after the list, which keeps the version as a *hint* naming the intended node.
2. One replica *coordinates*: the fastest one this process knows to be healthy (moving average
   of its answer times; a failure counts as a slow answer). In one statement it issues the
   write's dot (its own name and its next counter for k, past what C knows of it) and stores the
   version, which is the first acknowledgement. Why not send to all N before any of them
   answers: the dot must come from one place per key for its counters never to repeat (a
   repeated dot would let one writer's context delete another writer's value), and Dynamo
   does the same (the coordinator writes locally first, then sends to the others).
3. The version goes to the other N - 1 holders in parallel; the write succeeds when W holders
   acknowledged: strict quorum, only preferred nodes count; sloppy, hinted stand-ins count too,
   and a holder that fails during the write is replaced by the next fallback. Holders that have
   not answered when the client gets its answer *continue in the background*, each bounded by
   the node timeout (then its connection is shut down); they are not cancelled, so a write
   usually reaches all N.
4. Fewer than W acknowledgements within the request deadline: ``QuorumWriteUnavailable`` (503)
   naming what acknowledged. The version stays wherever it landed (fewer than W nodes, and the
   background ones): it is not rolled back, and a later read may or may not return it, as in
   Dynamo and Cassandra.

Read (``value_read``), with N and R: the coordinator asks *exactly R* nodes of the preference
list, chosen at random among those it does not suspect (then the suspected ones), and asks
another preferred node for each one that fails. Why R and not all N: a read then costs R
round trips, not N, and a slow replica is read from as often as any other, so the W + R <= N
staleness is not hidden by "the fastest R of N"; the guarantee does not depend on which R
answer: with W + R > N every R nodes include one of the W that acknowledged an earlier write.
The answers are reconciled with dotted version vectors (``causal.siblings``): concurrent
versions are all returned (siblings), obsolete ones are dropped. Read repair is synchronous:
every answering node whose versions differ from the reconciled siblings is sent them before
the read returns (each bounded by the node timeout and the request deadline); the answer lists
the repairs made. So after a read at R, R nodes hold what it returned (monotonic quorum reads).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from causal.clocks import Dot, VectorClock, Version, joined_context, siblings
from quorum import metrics
from quorum.client import NodeCallFailed, health, node_call, node_submit, submit
from quorum.conf import QuorumConf, conf
from quorum.storage import (
    StoredVersion,
    coordinate,
    hint_store,
    versions_read,
    versions_store,
)
from quorum.validation import quorum_parameters_resolve, quorum_parameters_validate


@dataclass(frozen=True)
class Failure:
    node: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"node": self.node, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class Ack:
    node: str
    intended: str
    ms: float

    @property
    def hinted(self) -> bool:
        return self.node != self.intended

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"node": self.node, "ms": round(self.ms, 1)}
        if self.hinted:
            answer["hint_for"] = self.intended
        return answer


@dataclass
class WriteResult:
    key: str
    n: int
    w: int
    sloppy: bool
    preference_list: list[str]
    coordinator: str | None
    dot: Dot | None
    acknowledged: list[Ack]
    failed: list[Failure]
    pending: list[str]
    context: VectorClock
    elapsed_ms: float

    @property
    def counted(self) -> int:
        return sum(1 for ack in self.acknowledged if self.sloppy or not ack.hinted)


@dataclass
class Repair:
    node: str
    dots: list[Dot]
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "node": self.node,
            "versions": [dot.as_list() for dot in self.dots],
            "ok": self.ok,
        }
        if self.detail:
            answer["detail"] = self.detail
        return answer


@dataclass
class ReadResult:
    key: str
    n: int
    r: int
    preference_list: list[str]
    asked: list[str]
    answered: list[str]
    failed: list[Failure]
    versions_seen: dict[str, list[StoredVersion]]
    siblings: list[StoredVersion]
    context: VectorClock
    repairs: list[Repair] = field(default_factory=list)
    elapsed_ms: float = 0.0


# ---- the write path ----------------------------------------------------------------------


class _Fallbacks:
    """The nodes after the preference list, in ring order, the ones this process does not
    suspect first; each handed out once (thread-safe)."""

    def __init__(self, nodes: list[str]) -> None:
        node_health = health()
        ordered = sorted(nodes, key=node_health.suspected)
        self._queue = deque(ordered)
        self._lock = threading.Lock()

    def take(self) -> str | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None


@dataclass
class _Slot:
    """One of the N replicas: the preferred node it belongs to and who holds it now."""

    intended: str
    holder: str | None

    @property
    def hinted(self) -> bool:
        return self.holder is not None and self.holder != self.intended


class _Progress:
    """Acknowledgements and failures of one write, shared with its background senders."""

    def __init__(self, total: int) -> None:
        self.acks: list[Ack] = []
        self.failures: list[Failure] = []
        self.holding: dict[str, str] = {}  # intended -> holder still being tried
        self.outstanding = total
        self.condition = threading.Condition()

    def acknowledged(self, ack: Ack) -> None:
        with self.condition:
            self.acks.append(ack)
            self.condition.notify_all()

    def failed(self, failure: Failure) -> None:
        with self.condition:
            self.failures.append(failure)

    def trying(self, intended: str, holder: str) -> None:
        with self.condition:
            self.holding[intended] = holder

    def settled(self, intended: str) -> None:
        with self.condition:
            self.holding.pop(intended, None)
            self.outstanding -= 1
            self.condition.notify_all()


def _observed(node: str, op: str, started: float) -> float:
    seconds = time.monotonic() - started
    metrics.node_seconds.labels(node, op).observe(seconds)
    return seconds * 1000


def _failure(error: NodeCallFailed) -> Failure:
    metrics.node_failures_total.labels(error.node, error.reason).inc()
    if error.reason != "error":
        health().failed(error.node)
    return Failure(error.node, error.reason, error.detail)


def _coordinate_first(
    settings: QuorumConf,
    *,
    key: str,
    slots: list[_Slot],
    context: VectorClock,
    value_json: str,
    sloppy: bool,
    fallbacks: _Fallbacks,
    deadline: float,
    failures: list[Failure],
) -> tuple[_Slot, Dot, float] | None:
    """Let the best available holder issue the dot and store the version; on failure try the
    next one (sloppy: the failed slot moves to a fallback). None when none could."""
    node_health = health()
    tried: set[str] = set()
    while time.monotonic() < deadline:
        candidates = [
            (node_health.suspected(slot.holder), node_health.latency(slot.holder), index, slot)
            for index, slot in enumerate(slots)
            if slot.holder is not None and slot.holder not in tried
        ]
        if not candidates:
            return None
        *_, slot = min(candidates, key=lambda candidate: candidate[:3])
        holder = slot.holder
        assert holder is not None
        tried.add(holder)
        started = time.monotonic()
        try:
            counter = node_call(
                settings.node_named(holder),
                partial(
                    coordinate,
                    key=key,
                    node=holder,
                    context=context,
                    value_json=value_json,
                    hint_for=slot.intended if slot.hinted else None,
                ),
                timeout_s=min(settings.node_timeout_s, deadline - started),
            )
        except NodeCallFailed as error:
            failures.append(_failure(error))
            if sloppy:
                slot.holder = fallbacks.take()
            else:
                slot.holder = None
            continue
        return slot, Dot(holder, counter), _observed(holder, "coordinate", started)
    return None


def _send_replica(
    settings: QuorumConf,
    *,
    key: str,
    slot: _Slot,
    stored: StoredVersion,
    sloppy: bool,
    fallbacks: _Fallbacks,
    progress: _Progress,
    deadline: float,
) -> None:
    """One replica of a write (in a background thread): its holder, and with ``sloppy`` the
    next fallbacks (as hints) until one acknowledges or the deadline passes."""
    holder = slot.holder
    try:
        while holder is not None and time.monotonic() < deadline:
            progress.trying(slot.intended, holder)
            hinted = holder != slot.intended
            started = time.monotonic()
            try:
                node_call(
                    settings.node_named(holder),
                    (
                        lambda conn: hint_store(
                            conn, intended=slot.intended, key=key, versions=[stored]
                        )
                    )
                    if hinted
                    else (lambda conn: versions_store(conn, key=key, versions=[stored])),
                    timeout_s=settings.node_timeout_s,
                )
            except NodeCallFailed as error:
                progress.failed(_failure(error))
                holder = fallbacks.take() if sloppy else None
                continue
            ms = _observed(holder, "hint" if hinted else "store", started)
            if hinted:
                metrics.hints_stored_total.labels(slot.intended).inc()
            progress.acknowledged(Ack(holder, slot.intended, ms))
            return
    finally:
        progress.settled(slot.intended)


def value_write(
    *,
    key: str,
    value: Any,
    context: VectorClock,
    n: int | None = None,
    w: int | None = None,
    sloppy: bool = False,
) -> WriteResult:
    """Write `value` under `key` at (N, W); the result says who acknowledged (the service
    answers 503 when fewer than W counted). See the module docstring."""
    settings = conf()
    n, w, _ = quorum_parameters_resolve(settings, n=n, w=w, r=None)
    quorum_parameters_validate(settings, key=key, n=n, w=w)
    value_json = _value_json(settings, value)
    started = time.monotonic()
    deadline = started + settings.request_timeout_s
    walk = settings.ring().walk(key)
    preference, fallbacks = walk[:n], _Fallbacks(walk[n:])
    node_health = health()
    slots = []
    for node in preference:
        holder: str | None = node
        if sloppy and node_health.suspected(node):
            holder = fallbacks.take() or node
        slots.append(_Slot(node, holder))
    failures: list[Failure] = []
    coordinated = _coordinate_first(
        settings,
        key=key,
        slots=slots,
        context=context,
        value_json=value_json,
        sloppy=sloppy,
        fallbacks=fallbacks,
        deadline=deadline,
        failures=failures,
    )
    if coordinated is None:
        result = WriteResult(
            key=key,
            n=n,
            w=w,
            sloppy=sloppy,
            preference_list=preference,
            coordinator=None,
            dot=None,
            acknowledged=[],
            failed=failures,
            pending=[],
            context=context,
            elapsed_ms=(time.monotonic() - started) * 1000,
        )
        _count_write(result, ok=False)
        return result
    first_slot, dot, first_ms = coordinated
    assert first_slot.holder is not None
    stored = StoredVersion(Version(dot, context), value_json)
    others = [slot for slot in slots if slot is not first_slot]
    progress = _Progress(len(others))
    first_ack = Ack(first_slot.holder, first_slot.intended, first_ms)
    if first_ack.hinted:
        metrics.hints_stored_total.labels(first_slot.intended).inc()
    progress.acknowledged(first_ack)
    for slot in others:
        if slot.holder is None:
            progress.settled(slot.intended)
            continue
        submit(
            _send_replica,
            settings,
            key=key,
            slot=slot,
            stored=stored,
            sloppy=sloppy,
            fallbacks=fallbacks,
            progress=progress,
            deadline=deadline,
        )

    def counted() -> int:
        return sum(1 for ack in progress.acks if sloppy or not ack.hinted)

    with progress.condition:
        progress.condition.wait_for(
            lambda: counted() >= w or progress.outstanding == 0,
            timeout=max(0.0, deadline - time.monotonic()),
        )
        acks = list(progress.acks)
        pending = sorted(set(progress.holding.values()))
        failures += progress.failures
    elapsed_ms = (time.monotonic() - started) * 1000
    result = WriteResult(
        key=key,
        n=n,
        w=w,
        sloppy=sloppy,
        preference_list=preference,
        coordinator=first_slot.holder,
        dot=dot,
        acknowledged=acks,
        failed=failures,
        pending=pending,
        context=Version(dot, context).clock(),
        elapsed_ms=elapsed_ms,
    )
    ok = result.counted >= w
    if ok:
        metrics.wait_seconds.labels("write", str(n), str(w)).observe(elapsed_ms / 1000)
    _count_write(result, ok=ok)
    return result


def _count_write(result: WriteResult, *, ok: bool) -> None:
    metrics.writes_total.labels(
        str(result.n), str(result.w), str(result.sloppy).lower(), "ok" if ok else "unavailable"
    ).inc()


def _value_json(settings: QuorumConf, value: Any) -> str:
    from quorum.errors import QuorumValueTooLarge

    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    size = len(text.encode())
    if size > settings.max_value_bytes:
        raise QuorumValueTooLarge(
            f"The value is {size} bytes of JSON; at most {settings.max_value_bytes}.",
            max_bytes=settings.max_value_bytes,
        )
    return text


# ---- the read path -----------------------------------------------------------------------


def _read_order(preference: list[str]) -> list[str]:
    node_health = health()
    healthy = [node for node in preference if not node_health.suspected(node)]
    suspected = [node for node in preference if node_health.suspected(node)]
    random.shuffle(healthy)
    random.shuffle(suspected)
    return healthy + suspected


def _timed(node: str, op: str, call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(connection):
        started = time.monotonic()
        answer = call(connection)
        _observed(node, op, started)
        return answer

    return run


def value_read(*, key: str, n: int | None = None, r: int | None = None) -> ReadResult:
    """Read `key` from R of its N preferred nodes, reconcile, repair; the result says who
    answered (the service answers 503 when fewer than R did). See the module docstring."""
    settings = conf()
    n, _, r = quorum_parameters_resolve(settings, n=n, w=None, r=r)
    quorum_parameters_validate(settings, key=key, n=n, r=r)
    started = time.monotonic()
    deadline = started + settings.request_timeout_s
    preference = settings.ring().preference_list(key, n)
    order = _read_order(preference)
    asked: list[str] = []
    answers: dict[str, list[StoredVersion]] = {}
    failures: list[Failure] = []
    pending: dict[Future, str] = {}

    def ask_next() -> None:
        node = order[len(asked)]
        asked.append(node)
        timeout = min(settings.node_timeout_s, deadline - time.monotonic())
        future = node_submit(
            settings.node_named(node),
            _timed(node, "read", lambda conn: versions_read(conn, key=key)),
            timeout_s=max(0.001, timeout),
        )
        pending[future] = node

    for _ in range(r):
        ask_next()
    while len(answers) < r and pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        done, _ = wait(list(pending), timeout=remaining, return_when=FIRST_COMPLETED)
        for future in done:
            node = pending.pop(future)
            try:
                answers[node] = future.result()
            except NodeCallFailed as error:
                failures.append(_failure(error))
                if len(asked) < len(order) and time.monotonic() < deadline:
                    ask_next()
    answered = list(answers)
    everything = {stored.dot: stored for stored_list in answers.values() for stored in stored_list}
    chosen = siblings(stored.version for stored in everything.values())
    sibling_versions = [everything[version.dot] for version in chosen]
    result = ReadResult(
        key=key,
        n=n,
        r=r,
        preference_list=preference,
        asked=asked,
        answered=answered,
        failed=failures,
        versions_seen=answers,
        siblings=sibling_versions,
        context=joined_context(chosen),
    )
    if len(answers) >= r:
        metrics.wait_seconds.labels("read", str(n), str(r)).observe(time.monotonic() - started)
        result.repairs = _repair(settings, key, answers, sibling_versions, deadline)
    result.elapsed_ms = (time.monotonic() - started) * 1000
    outcome = (
        "unavailable"
        if len(answers) < r
        else "not_found"
        if not sibling_versions
        else "siblings"
        if len(sibling_versions) > 1
        else "ok"
    )
    metrics.reads_total.labels(str(n), str(r), outcome).inc()
    return result


def _repair(
    settings: QuorumConf,
    key: str,
    answers: dict[str, list[StoredVersion]],
    sibling_versions: list[StoredVersion],
    deadline: float,
) -> list[Repair]:
    """Send the reconciled siblings to every answering node whose versions differ, and wait
    for them (synchronous read repair, bounded by the node timeout and the deadline)."""
    wanted = {stored.dot for stored in sibling_versions}
    if not wanted:
        return []
    futures: dict[Future, Repair] = {}
    for node, stored_list in answers.items():
        held = {stored.dot for stored in stored_list}
        if held == wanted:
            continue
        missing = sorted(wanted - held)
        timeout = min(settings.node_timeout_s, deadline - time.monotonic())
        if timeout <= 0:
            futures[_failed_future()] = Repair(node, missing, ok=False, detail="no time left")
            continue
        future = node_submit(
            settings.node_named(node),
            _timed(
                node,
                "repair",
                lambda conn: versions_store(conn, key=key, versions=sibling_versions),
            ),
            timeout_s=timeout,
        )
        futures[future] = Repair(node, missing, ok=False)
    if not futures:
        return []
    wait(list(futures), timeout=max(0.0, deadline - time.monotonic()) + 0.05)
    repairs = []
    for future, repair in futures.items():
        if future.done() and future.exception() is None:
            repair.ok = True
        elif future.done():
            error = future.exception()
            repair.detail = str(error)
            if isinstance(error, NodeCallFailed):
                _failure(error)
        else:
            repair.detail = "timeout"
        metrics.read_repairs_total.labels(repair.node, "ok" if repair.ok else "failed").inc()
        repairs.append(repair)
    return repairs


def _failed_future() -> Future:
    future: Future = Future()
    future.set_exception(TimeoutError("no time left"))
    return future
