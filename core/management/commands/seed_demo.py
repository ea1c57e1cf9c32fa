from django.conf import settings
from django.core.management.base import BaseCommand

from core.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo users (alice, bob, staff admin) and each app's demo data; idempotent."

    def handle(self, *args, **options) -> None:
        users = demo_seed()
        self.stdout.write(
            f"demo logins: {', '.join(users)} / password {settings.DEMO_PASSWORD!r} (dev only)"
        )
