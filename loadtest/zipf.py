"""Zipf-like key populations with one celebrity key: the counter workload of the benchmark's
Locust users, of ``python -m loadtest.sharding_compare`` and of the hot-key tests.

Pure Python (no Django, no Locust), so both sides of the benchmark can import it."""

from __future__ import annotations

import bisect
import os
from typing import Protocol

COUNTER_KEYS = 10_000
CELEBRITY_SHARE = 0.3
# The celebrity key of the web-tier benchmark (the Locust users and the sharding extra).
BENCH_CELEBRITY = os.environ.get("STATELAB_BENCH_CELEBRITY", "celebrity")


class UniformSource(Protocol):
    """What a draw needs: ``random.Random`` or the ``random`` module."""

    def random(self) -> float: ...


class ZipfKeys:
    """Keys ``<prefix><rank>`` with P(rank) proportional to 1 / rank**exponent, plus a
    celebrity key drawn with probability ``celebrity_share``."""

    def __init__(
        self, *, keys: int, exponent: float, celebrity: str, celebrity_share: float, prefix: str
    ) -> None:
        weights = [1 / rank**exponent for rank in range(1, keys + 1)]
        total = sum(weights)
        running, self.cumulative = 0.0, []
        for weight in weights:
            running += weight / total
            self.cumulative.append(running)
        self.celebrity, self.celebrity_share, self.prefix = celebrity, celebrity_share, prefix

    def draw(self, rng: UniformSource) -> str:
        if rng.random() < self.celebrity_share:
            return self.celebrity
        rank = bisect.bisect_left(self.cumulative, rng.random())
        return f"{self.prefix}{min(rank, len(self.cumulative) - 1) + 1}"


def counter_keys(
    *,
    celebrity: str = BENCH_CELEBRITY,
    keys: int = COUNTER_KEYS,
    celebrity_share: float = CELEBRITY_SHARE,
) -> ZipfKeys:
    """The benchmark's counter keys: ``user:<rank>`` with exponent 1, and the celebrity."""
    return ZipfKeys(
        keys=keys,
        exponent=1.0,
        celebrity=celebrity,
        celebrity_share=celebrity_share,
        prefix="user:",
    )
