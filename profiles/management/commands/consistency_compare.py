"""Routing strategies side by side, under a real replica apply delay.

For each strategy: ``--pairs`` write-then-read pairs (a writer edits its profile, then reads
it back) and ``--others`` reads of other users' profiles by the same session after each pair.
Prints, per strategy, the stale-read rate of the read-backs, the share of reads served by the
primary (read-backs and other-user reads apart), and read latency p50/p99.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from consistency.context import consistency_context
from consistency.levels import PRIMARY
from consistency.pool import replica_pool
from consistency.replicas import primary_wal_lsn, set_replica_apply_delay, wait_for_replay
from consistency.routing import read_decision
from consistency.state import SessionState
from profiles.models import Profile
from profiles.services import profile_key, profile_update

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


def _version(alias: str, profile_id: int) -> int:
    return Profile.objects.using(alias).filter(pk=profile_id).values_list("version", flat=True)[0]


class Command(BaseCommand):
    help = "Compare read routing strategies (stale reads, primary share, latency) under lag."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--delay-ms", type=int, default=500)
        parser.add_argument("--pairs", type=int, default=200)
        parser.add_argument("--others", type=int, default=3, help="other-user reads per pair")
        parser.add_argument("--writers", type=int, default=10)
        parser.add_argument("--interval-ms", type=int, default=20, help="pause between pairs")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--json", action="store_true", help="also print the figures as JSON")

    def handle(self, *args, **options) -> None:
        if not settings.REPLICA_ALIASES:
            raise CommandError("no replica configured (REPLICA_URLS)")
        self.rng = random.Random(options["seed"])  # noqa: S311 - not security
        # The writes here are measurements: no change-feed tasks for them.
        settings.PROFILES_CHANGE_FEED_ENABLED = False
        users = self._users(options["writers"])
        strategies: list[Strategy] = [
            NoRouting(),
            TimePinning(2.0, "timer pinning 2 s"),
            TimePinning(15.0, "cookie pinning 15 s"),
            LsnRouting(),
        ]
        results = []
        try:
            self._set_delay(options["delay_ms"])
            for strategy in strategies:
                results.append((strategy, self._run(strategy, users, options)))
                self._caught_up()
        finally:
            self._set_delay(0)
            self._caught_up()
            get_user_model().objects.filter(username__startswith=USER_PREFIX).delete()
        self._print(results, options)
        if options["json"]:
            self.stdout.write(json.dumps({strategy.name: _figures(t) for strategy, t in results}))

    def _users(self, count: int) -> list[int]:
        user_model = get_user_model()
        user_model.objects.filter(username__startswith=USER_PREFIX).delete()
        return [
            user_model.objects.create(username=f"{USER_PREFIX}{number}").pk
            for number in range(count)
        ]

    def _set_delay(self, delay_ms: int) -> None:
        for alias in settings.REPLICA_ALIASES:
            set_replica_apply_delay(alias, delay_ms)

    def _caught_up(self) -> None:
        target = primary_wal_lsn()
        for alias in settings.REPLICA_ALIASES:
            wait_for_replay(alias, target, timeout_s=60)
        replica_pool.reset()

    def _timed_read(self, tally: Tally, choose: Callable[[], str], profile_id: int) -> tuple:
        started = time.perf_counter()
        alias = choose()
        version = _version(alias, profile_id)
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        return alias, version

    def _run(self, strategy: Strategy, users: list[int], options: dict) -> Tally:
        tally = Tally()
        for number in range(options["pairs"]):
            writer = users[number % len(users)]
            state = strategy.states.setdefault(writer, SessionState())
            with consistency_context("session", state=state):
                written = profile_update(
                    user_id=writer, changes={"bio": f"pair {number}"}, actor_id=writer
                )
            strategy.after_write(writer)
            alias, version = self._timed_read(tally, lambda w=writer: strategy.alias(w, w), writer)
            tally.own_reads += 1
            tally.own_stale += version < written.version
            tally.own_primary += alias == PRIMARY
            for other in self.rng.sample([u for u in users if u != writer], options["others"]):
                alias, _ = self._timed_read(
                    tally, lambda w=writer, o=other: strategy.alias(w, o), other
                )
                tally.other_reads += 1
                tally.other_primary += alias == PRIMARY
            time.sleep(options["interval_ms"] / 1000)
        return tally

    def _print(self, results: list[tuple[Strategy, Tally]], options: dict) -> None:
        self.stdout.write(
            f"replica apply delay {options['delay_ms']} ms, {options['pairs']} write-then-read "
            f"pairs, {options['others']} other-user reads per pair, {options['writers']} writers"
        )
        header = (
            "| strategy | stale read-backs | read-backs on primary | other-user reads on "
            "primary | all reads on primary | read p50 ms | read p99 ms |"
        )
        self.stdout.write(header)
        self.stdout.write("|---|---|---|---|---|---|---|")
        for strategy, tally in results:
            figures = _figures(tally)
            self.stdout.write(
                f"| {strategy.name} | {figures['stale_read_backs_pct']:.1f}% | "
                f"{figures['read_backs_on_primary_pct']:.1f}% | "
                f"{figures['other_reads_on_primary_pct']:.1f}% | "
                f"{figures['primary_share_pct']:.1f}% | "
                f"{figures['read_p50_ms']:.2f} | {figures['read_p99_ms']:.2f} |"
            )


def _figures(tally: Tally) -> dict[str, float]:
    latencies = sorted(tally.latencies_ms)
    return {
        "stale_read_backs_pct": _pct(tally.own_stale, tally.own_reads),
        "read_backs_on_primary_pct": _pct(tally.own_primary, tally.own_reads),
        "other_reads_on_primary_pct": _pct(tally.other_primary, tally.other_reads),
        "primary_share_pct": _pct(
            tally.own_primary + tally.other_primary, tally.own_reads + tally.other_reads
        ),
        "read_p50_ms": round(statistics.median(latencies), 3),
        "read_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
    }


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0
