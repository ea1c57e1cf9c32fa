import json
from pathlib import Path

from django.core.management.base import BaseCommand

from regions.splitbrain import casualty_table, split_brain_run


class Command(BaseCommand):
    help = (
        "The split-brain vignette on the real regions: partition {r1} | {r2, r3}, both sides "
        "write every type, heal, reconcile, anti-entropy; prints the timeline with measured "
        "times and the casualties (and the naive store's divergent keys)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--partition-s", type=float, default=8.0, help="seconds apart (8)")
        parser.add_argument("--keys", type=int, default=40, help="keys per type (40)")
        parser.add_argument("--clients", type=int, default=1, help="clients per region (1)")
        parser.add_argument("--out-dir", type=Path, help="write the history and the result here")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options) -> None:
        echo = (lambda line: None) if options["json"] else self.stdout.write
        result = split_brain_run(
            partition_s=options["partition_s"],
            keys=options["keys"],
            clients_per_region=options["clients"],
            out_dir=options["out_dir"],
            echo=echo,
        )
        if options["json"]:
            self.stdout.write(json.dumps(result, default=str))
            return
        self.stdout.write("")
        self.stdout.write(casualty_table(result))
        if result.get("history"):
            self.stdout.write(f"history: {result['history']}")
            self.stdout.write(f"the naive store's history: {result['naive_history']}")
