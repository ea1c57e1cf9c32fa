"""``python -m checker.bench``: how fast the checker decides simulated histories.

Each repeat simulates a fresh linearizable history (:mod:`checker.simulate`: concurrent
clients, some info operations), then times parsing and each model's check on it. Prints,
per model, the median time and operations per second over the repeats, with the spread
(min to max). The verdicts are printed too: every one should be ``holds``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from checker.check import MODELS, check
from checker.datatypes import COUNTER, REGISTER, SET
from checker.history import parse_history
from checker.simulate import simulate_history

T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checker.bench", description=__doc__)
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--info-rate", type=float, default=0.02)
    parser.add_argument("--datatype", choices=(REGISTER, SET, COUNTER), default=REGISTER)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--models",
        help=(
            f"comma-separated, from: {', '.join(MODELS)} (default: linearizable, sequential, "
            "causal, session and convergence; only the first two and the last for sets and "
            "counters, which the causal and session models skip)"
        ),
    )
    args = parser.parse_args(argv)
    if args.models is None:
        registers = args.datatype == REGISTER
        args.models = ",".join(
            [
                "linearizable",
                "sequential",
                *(["causal", "session"] if registers else []),
                "convergence",
            ]
        )
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models: {', '.join(unknown)}")

    print(
        f"{args.operations} operations, {args.keys} keys, {args.clients} clients, "
        f"{args.datatype}, info rate {args.info_rate}, {args.repeats} repeats"
    )
    timings: dict[str, list[float]] = {name: [] for name in ["parse", *models]}
    outcomes: dict[str, set[str]] = {name: set() for name in models}
    for repeat in range(args.repeats):
        events = simulate_history(
            random.Random(args.seed + repeat),  # noqa: S311 - a reproducible simulation
            operations=args.operations,
            keys=args.keys,
            clients=args.clients,
            datatype=args.datatype,
            info_rate=args.info_rate,
            final_replicas=2,
        )
        history = _timed(timings["parse"], partial(parse_history, events))
        for name in models:
            verdict = _timed(timings[name], partial(check, history, name))
            outcomes[name].add(verdict.outcome)
    print(f"{'step':<22}{'median s':>10}{'ops/s':>12}{'spread s (min-max)':>24}  verdicts")
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        spread = f"{min(seconds):.3f}-{max(seconds):.3f}"
        verdicts = ",".join(sorted(outcomes.get(name, {"-"})))
        rate = args.operations / median if median else float("inf")
        print(f"{name:<22}{median:>10.3f}{rate:>12.0f}{spread:>24}  {verdicts}")
    return 0


def _timed(sink: list[float], work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    sink.append(time.perf_counter() - start)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
