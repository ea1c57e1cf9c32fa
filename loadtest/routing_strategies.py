"""Routing strategies side by side, under a real replica apply delay (the measurement behind
``python -m loadtest.consistency_compare`` and the ``routing`` extra of ``make bench``).

For each strategy: ``pairs`` write-then-read pairs (a writer edits its profile, then reads
it back) and ``others`` reads of other users' profiles by the same session after each pair.
Per strategy: the stale-read rate of the read-backs, the share of reads served by the primary
(read-backs and other-user reads apart), and read latency p50/p99.

It sets the replica's apply delay (back to 0 at the end) and creates and deletes users named
``consistency-compare-*``: a development and benchmark tool, never installed in the image.
Needs Django set up (``loadtest.cli.django_setup``).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model

from consistency.context import consistency_context
from consistency.levels import PRIMARY
from consistency.pool import replica_pool
from consistency.replicas import primary_wal_lsn, set_replica_apply_delay, wait_for_replay
from consistency.routing import read_decision
from consistency.state import SessionState
from loadtest.stats import percentile
from profiles.domain import profile_key
from profiles.models import Profile
from profiles.services import profile_update

USER_PREFIX = "consistency-compare-"


@dataclass
class Tally:
    own_reads: int = 0
    own_stale: int = 0
    own_primary: int = 0
    other_reads: int = 0
    other_primary: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class Strategy:
    name = ""

    def __init__(self) -> None:
        self.states: dict[int, SessionState] = {}
        self.last_write: dict[int, float] = {}

    def after_write(self, writer_id: int) -> None:
        self.last_write[writer_id] = time.monotonic()

    def alias(self, reader_id: int, profile_id: int) -> str:
        raise NotImplementedError


class NoRouting(Strategy):
    name = "no routing (always replica)"

    def alias(self, reader_id: int, profile_id: int) -> str:
        return settings.REPLICA_ALIASES[0]


class TimePinning(Strategy):
    def __init__(self, seconds: float, name: str) -> None:
        super().__init__()
        self.seconds = seconds
        self.name = name

    def alias(self, reader_id: int, profile_id: int) -> str:
        written = self.last_write.get(reader_id)
        if written is not None and time.monotonic() - written < self.seconds:
            return PRIMARY
        return settings.REPLICA_ALIASES[0]


class LsnRouting(Strategy):
    name = "LSN routing (session)"

    def alias(self, reader_id: int, profile_id: int) -> str:
        state = self.states.setdefault(reader_id, SessionState())
        with consistency_context("session", state=state):
            return read_decision(profile_key(profile_id)).alias


def strategies_all() -> list[Strategy]:
    return [
        NoRouting(),
        TimePinning(2.0, "timer pinning 2 s"),
        TimePinning(15.0, "cookie pinning 15 s"),
        LsnRouting(),
    ]


@dataclass(frozen=True)
class Workload:
    delay_ms: int = 500
    pairs: int = 200
    others: int = 3
    writers: int = 10
    interval_ms: int = 20
    seed: int = 1


def routing_compare(workload: Workload) -> dict[str, dict[str, float]]:
    """Every strategy under ``workload``: strategy name -> its figures (``strategy_figures``).
    Raises LookupError without a replica."""
    if not settings.REPLICA_ALIASES:
        raise LookupError("no replica configured (REPLICA_URLS)")
    rng = random.Random(workload.seed)  # noqa: S311 - not security
    # The writes here are measurements: no change-feed tasks for them.
    settings.PROFILES_CHANGE_FEED_ENABLED = False
    users = _users(workload.writers)
    results = {}
    try:
        _set_delay(workload.delay_ms)
        for strategy in strategies_all():
            results[strategy.name] = strategy_figures(_run(strategy, users, workload, rng))
            _caught_up()
    finally:
        _set_delay(0)
        _caught_up()
        get_user_model().objects.filter(username__startswith=USER_PREFIX).delete()
    return results


def _users(count: int) -> list[int]:
    user_model = get_user_model()
    user_model.objects.filter(username__startswith=USER_PREFIX).delete()
    return [
        user_model.objects.create(username=f"{USER_PREFIX}{number}").pk for number in range(count)
    ]


def _set_delay(delay_ms: int) -> None:
    for alias in settings.REPLICA_ALIASES:
        set_replica_apply_delay(alias, delay_ms)


def _caught_up() -> None:
    target = primary_wal_lsn()
    for alias in settings.REPLICA_ALIASES:
        wait_for_replay(alias, target, timeout_s=60)
    replica_pool.reset()


def _version(alias: str, profile_id: int) -> int:
    return Profile.objects.using(alias).filter(pk=profile_id).values_list("version", flat=True)[0]


def _timed_read(tally: Tally, choose: Callable[[], str], profile_id: int) -> tuple[str, int]:
    started = time.perf_counter()
    alias = choose()
    version = _version(alias, profile_id)
    tally.latencies_ms.append((time.perf_counter() - started) * 1000)
    return alias, version


def _run(strategy: Strategy, users: list[int], workload: Workload, rng: random.Random) -> Tally:
    tally = Tally()
    for number in range(workload.pairs):
        writer = users[number % len(users)]
        state = strategy.states.setdefault(writer, SessionState())
        with consistency_context("session", state=state):
            written = profile_update(
                user_id=writer, changes={"bio": f"pair {number}"}, actor_id=writer
            )
        strategy.after_write(writer)
        alias, version = _timed_read(tally, lambda w=writer: strategy.alias(w, w), writer)
        tally.own_reads += 1
        tally.own_stale += version < written.version
        tally.own_primary += alias == PRIMARY
        for other in rng.sample([u for u in users if u != writer], workload.others):
            alias, _ = _timed_read(tally, lambda w=writer, o=other: strategy.alias(w, o), other)
            tally.other_reads += 1
            tally.other_primary += alias == PRIMARY
        time.sleep(workload.interval_ms / 1000)
    return tally


def strategy_figures(tally: Tally) -> dict[str, float]:
    return {
        "stale_read_backs_pct": _pct(tally.own_stale, tally.own_reads),
        "read_backs_on_primary_pct": _pct(tally.own_primary, tally.own_reads),
        "other_reads_on_primary_pct": _pct(tally.other_primary, tally.other_reads),
        "primary_share_pct": _pct(
            tally.own_primary + tally.other_primary, tally.own_reads + tally.other_reads
        ),
        "read_p50_ms": round(statistics.median(tally.latencies_ms), 3),
        "read_p99_ms": round(percentile(tally.latencies_ms, 0.99), 3),
    }


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def comparison_table(workload: Workload, results: dict[str, dict[str, float]]) -> str:
    lines = [
        f"replica apply delay {workload.delay_ms} ms, {workload.pairs} write-then-read "
        f"pairs, {workload.others} other-user reads per pair, {workload.writers} writers",
        "| strategy | stale read-backs | read-backs on primary | other-user reads on "
        "primary | all reads on primary | read p50 ms | read p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figures in results.items():
        lines.append(
            f"| {name} | {figures['stale_read_backs_pct']:.1f}% | "
            f"{figures['read_backs_on_primary_pct']:.1f}% | "
            f"{figures['other_reads_on_primary_pct']:.1f}% | "
            f"{figures['primary_share_pct']:.1f}% | "
            f"{figures['read_p50_ms']:.2f} | {figures['read_p99_ms']:.2f} |"
        )
    return "\n".join(lines)
