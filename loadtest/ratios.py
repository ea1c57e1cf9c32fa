"""The figures the benchmark is judged by: ratios of two measured figures (or one figure)
against an aim, looked up in the results document by path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ratio:
    name: str
    numerator: str
    denominator: str | None
    aim: float
    at_least: bool = True


RATIOS = (
    Ratio(
        "cached profile read RPS / trivial endpoint RPS",
        "scenarios.profile_cached.rps",
        "scenarios.trivial.rps",
        0.9,
    ),
    Ratio(
        "replica-routed read RPS / primary read RPS",
        "scenarios.profile_replica.rps",
        "scenarios.profile_primary.rps",
        0.95,
    ),
    Ratio(
        "completed transfers per s / pgbench transfers per s of the same SQL",
        "extras.transfers.completed_per_s",
        "baselines.saga_sql.transfers_per_s",
        0.5,
    ),
    Ratio(
        "celebrity increments per s, spreading / naive",
        "extras.sharding.celebrity_per_s_spread",
        "extras.sharding.celebrity_per_s_naive",
        3.0,
    ),
    Ratio(
        "per-shard imbalance (max/mean) with spreading",
        "extras.sharding.imbalance_spread",
        None,
        1.25,
        at_least=False,
    ),
    Ratio(
        "stale reads under LSN routing with replica delay",
        "extras.routing.lsn_stale_reads",
        None,
        0.0,
        at_least=False,
    ),
)


def _lookup(figures: dict, path: str) -> float | None:
    node = figures
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, (int, float)) else None


def compute_ratios(figures: dict) -> list[dict]:
    results = []
    for ratio in RATIOS:
        numerator = _lookup(figures, ratio.numerator)
        denominator = _lookup(figures, ratio.denominator) if ratio.denominator else 1.0
        value = None if numerator is None or not denominator else round(numerator / denominator, 3)
        met = (
            None
            if value is None
            else (value >= ratio.aim if ratio.at_least else value <= ratio.aim)
        )
        results.append(
            {
                "figure": ratio.name,
                "value": value,
                "aim": f"{'>=' if ratio.at_least else '<='} {ratio.aim}",
                "met": met,
                "numerator": ratio.numerator,
                "denominator": ratio.denominator,
            }
        )
    return results
