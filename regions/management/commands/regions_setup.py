import json

from django.core.management.base import BaseCommand

from regions.schema import regions_setup


class Command(BaseCommand):
    help = (
        "Create (idempotently) each region's database, tables, publications and the full mesh "
        "of subscriptions; recreate a link whose slot was lost."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **options) -> None:
        report = regions_setup()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
            return
        self.stdout.write(f"regions database {report.database}")
        for link, state in report.links.items():
            self.stdout.write(f"  {link:<8} {state}")
