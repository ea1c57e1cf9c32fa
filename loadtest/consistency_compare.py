"""``python -m loadtest.consistency_compare``: read routing strategies side by side (stale
reads, primary share, latency) under a real replica apply delay; see
``loadtest.routing_strategies``. Prints a table; ``--json`` adds the figures as one JSON line.
"""

from __future__ import annotations

import argparse
import json

from loadtest.cli import django_setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.consistency_compare",
        description="Compare read routing strategies (stale reads, primary share, latency) "
        "under lag.",
    )
    parser.add_argument("--delay-ms", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--others", type=int, default=3, help="other-user reads per pair")
    parser.add_argument("--writers", type=int, default=10)
    parser.add_argument("--interval-ms", type=int, default=20, help="pause between pairs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    options = parser.parse_args(argv)

    django_setup()
    from loadtest.routing_strategies import Workload, comparison_table, routing_compare

    workload = Workload(
        delay_ms=options.delay_ms,
        pairs=options.pairs,
        others=options.others,
        writers=options.writers,
        interval_ms=options.interval_ms,
        seed=options.seed,
    )
    try:
        results = routing_compare(workload)
    except LookupError as missing:
        parser.exit(1, f"{missing}\n")
    print(comparison_table(workload, results))
    if options.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
