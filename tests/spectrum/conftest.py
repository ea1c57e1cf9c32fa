"""One real service (gunicorn, a Celery worker, beat) for the spectrum's recorders, on the
test databases; started once for the package's tests that ask for it."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections

from core.redis import redis_clients_reset
from loadtest.service import service_running
from tests.servers import free_port


@pytest.fixture(scope="package")
def service(tmp_path_factory, django_db_setup, django_db_blocker):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.test")
        patch.setenv("STATELAB_USE_TEST_DATABASES", "true")
        patch.setenv("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)
        patch.setenv("REDIS_URL", settings.REDIS_URL)
        log_dir = tmp_path_factory.mktemp("spectrum-service")
        with django_db_blocker.unblock(), service_running(free_port(), log_dir) as running:
            yield running
    connections.close_all()  # the recorders' faults restart the replica under this process too
    redis_clients_reset()
