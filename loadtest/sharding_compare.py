"""``python -m loadtest.sharding_compare``: with vs without adaptive spreading, below the web
tier (the service layer; with ``--pgbench`` the database layer too); see
``loadtest.sharding_layers``. Prints a table, or one JSON document with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import uuid

from loadtest.cli import django_setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.sharding_compare",
        description="With vs without adaptive spreading.",
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--share", type=float, default=0.3)
    parser.add_argument("--pgbench", action="store_true")
    parser.add_argument("--pgbench-clients", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    # One worker process of a phase (started by the phase itself).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--celebrity", default="", help=argparse.SUPPRESS)
    parser.add_argument("--record-after", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    django_setup()
    from loadtest.sharding_layers import (
        ServiceLoad,
        pgbench_compare,
        phase_run,
        report_table,
        worker_run,
    )

    if options.worker:
        output = worker_run(
            threads=options.threads,
            seconds=options.seconds,
            record_after=options.record_after,
            keys=options.keys,
            share=options.share,
            celebrity=options.celebrity,
            seed=options.seed,
        )
        print(json.dumps(output))
        return 0
    figures: dict = {}
    if options.seconds > 0:
        load = ServiceLoad(
            processes=options.processes,
            threads=options.threads,
            seconds=options.seconds,
            warmup=options.warmup,
            keys=options.keys,
            share=options.share,
        )
        celebrity = f"celebrity-{uuid.uuid4().hex[:6]}"
        figures["naive"] = phase_run(load, celebrity, spreading=False)
        figures["spread"] = phase_run(load, celebrity, spreading=True)
    if options.pgbench:
        figures["pgbench"] = pgbench_compare(
            clients=options.pgbench_clients, seconds=max(5, int(options.seconds))
        )
    print(json.dumps(figures) if options.json else report_table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
