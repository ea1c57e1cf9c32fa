"""The counter workload below the web tier: threads calling ``counter_increment`` on keys drawn
from a ``ZipfKeys`` population; used by ``python -m loadtest.sharding_compare`` and the hot-key
tests."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import connections

from loadtest.stats import percentile
from loadtest.zipf import ZipfKeys
from sharding.counters import counter_increment
from sharding.selectors import imbalance_of


@dataclass
class WorkloadResult:
    seconds: float = 0.0
    per_shard: Counter = field(default_factory=Counter)
    celebrity_latencies: list[float] = field(default_factory=list)
    operations: int = 0
    errors: int = 0

    @property
    def imbalance(self) -> float:
        return imbalance_of({alias: float(count) for alias, count in self.per_shard.items()})

    @property
    def celebrity_rate(self) -> float:
        return len(self.celebrity_latencies) / self.seconds if self.seconds else 0.0

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    def celebrity_p99_ms(self) -> float:
        if not self.celebrity_latencies:
            return 0.0
        return percentile(self.celebrity_latencies, 0.99) * 1000


def workload_run(
    *, keys: ZipfKeys, threads: int, seconds: float, seed: int = 0, record_after: float = 0.0
) -> WorkloadResult:
    """``threads`` threads increment drawn keys for ``seconds``; operations completed after
    ``record_after`` seconds are counted in the result (per shard that served them)."""
    result = WorkloadResult()
    lock = threading.Lock()
    start = time.monotonic()
    record_from = start + record_after
    deadline = start + seconds

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)  # noqa: S311 - workload, not security
        local = WorkloadResult()
        try:
            while True:
                key = keys.draw(rng)
                began = time.monotonic()
                if began >= deadline:
                    break
                try:
                    written = counter_increment(key=key, by=1)
                except Exception:
                    local.errors += 1
                    continue
                ended = time.monotonic()
                if began >= record_from:
                    local.operations += 1
                    local.per_shard[written.shard] += 1
                    if key == keys.celebrity:
                        local.celebrity_latencies.append(ended - began)
        finally:
            connections.close_all()
            with lock:
                result.operations += local.operations
                result.errors += local.errors
                result.per_shard.update(local.per_shard)
                result.celebrity_latencies.extend(local.celebrity_latencies)

    workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    result.seconds = max(0.001, time.monotonic() - max(start, record_from))
    return result
