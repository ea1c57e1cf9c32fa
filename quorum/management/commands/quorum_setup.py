from django.core.management.base import BaseCommand, CommandError

from quorum.services import quorum_schema_setup


class Command(BaseCommand):
    help = "Create or update the quorum store's schema on every storage node (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--allow-missing",
            action="store_true",
            help="report nodes that do not answer instead of failing (they get the schema "
            "on first use)",
        )

    def handle(self, *args, **options) -> None:
        outcome = quorum_schema_setup()
        for node, result in outcome.items():
            self.stdout.write(f"quorum node {node}: {result}")
        failed = [node for node, result in outcome.items() if result != "ok"]
        if failed and not options["allow_missing"]:
            raise CommandError(
                f"quorum nodes without schema: {', '.join(failed)} (are they running? "
                "python -m devstack up --group quorum)"
            )
