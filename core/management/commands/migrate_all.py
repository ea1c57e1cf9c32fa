from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections


class Command(BaseCommand):
    help = "Run migrate on every database alias except the replicas (they copy the primary)."

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        for alias in connections:
            if alias in settings.REPLICA_ALIASES:
                continue
            if verbosity:
                self.stdout.write(f"migrating {alias}")
            call_command(
                "migrate", database=alias, interactive=False, verbosity=max(0, verbosity - 1)
            )
