"""What every ``python -m loadtest.<module>`` entry point does before it touches Django."""

from __future__ import annotations

import os


def django_setup() -> None:
    """Django with the settings ``manage.py`` would use (``config.settings.local`` unless
    ``DJANGO_SETTINGS_MODULE`` names others)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
