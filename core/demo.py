"""Demo data for ``make run``: users alice and bob, staff admin, and what each app adds.

An app adds its own demo data by giving its AppConfig a ``seed_demo(users)`` method; seeding
is idempotent, so ``make run`` can do it on every start.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model

DEMO_USERS = (
    {"username": "alice", "is_staff": False},
    {"username": "bob", "is_staff": False},
    {"username": "admin", "is_staff": True},
)


def demo_users_ensure() -> dict:
    """Create the demo users when missing; an existing user's password is left alone."""
    user_model = get_user_model()
    users = {}
    for spec in DEMO_USERS:
        user, created = user_model.objects.get_or_create(
            username=spec["username"],
            defaults={
                "is_staff": spec["is_staff"],
                "is_superuser": spec["is_staff"],
                "email": f"{spec['username']}@statelab.invalid",
            },
        )
        if created:
            user.set_password(settings.DEMO_PASSWORD)
            user.save(update_fields=["password"])
        users[spec["username"]] = user
    return users


def demo_seed() -> dict:
    users = demo_users_ensure()
    for app_config in apps.get_app_configs():
        seeder = getattr(app_config, "seed_demo", None)
        if callable(seeder):
            seeder(users)
    return users
