"""Production settings refuse insecure values and pass Django's deployment checklist."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.config import embedded_env

ROOT = Path(__file__).resolve().parent.parent
SAFE_SECRET = "k" * 20 + "-not-a-default-" + "q7w8e9r0t1y2u3i4o5p6a7s8d9f0"


def _production_env(**overrides: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "STATELAB_DEMO", "PROMETHEUS_MULTIPROC"))
    }
    environment.update(embedded_env())
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=SAFE_SECRET,
        DJANGO_ALLOWED_HOSTS="statelab.example.com",
        STATELAB_DEMO_PASSWORD="a-real-password-for-production-demo-users",
    )
    environment.update(overrides)
    return environment


def _manage(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_under_production_settings_reports_nothing():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + "x" * 60}, "DJANGO_SECRET_KEY"),
        ({"STATELAB_DEMO_PASSWORD": "statelab-demo"}, "demo password"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
    ],
    ids=["debug", "empty-secret", "insecure-secret", "demo-password", "no-database-url"],
)
def test_production_settings_refuse_an_insecure_or_missing_value(overrides, complaint):
    result = _manage("check", **overrides)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert complaint in result.stderr
