"""Suite-wide setup: real databases (test copies on the embedded or given stack), a real replica.

Django's test runner would point a replica alias at the primary (TEST MIRROR); here the
replica alias is switched back to the real standby, which receives the primary's test
database by streaming replication. Django never flushes a mirror (a standby refuses it); a
non-transactional test opens a transaction on it, which a hot standby allows read-only, so
tests that need what the primary committed to reach the replica use ``transaction=True``.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections
from hypothesis import settings as hypothesis_settings

from consistency.replicas import primary_wal_lsn, wait_for_replay
from core.faults import faults_cache_clear

# Property tests check invariants, not speed: on a shared 2-core machine one example can take
# longer than hypothesis's default 200 ms deadline, which would fail a correct property.
hypothesis_settings.register_profile("statelab", deadline=None)
hypothesis_settings.load_profile("statelab")


def _standby_settings(alias: str) -> dict:
    primary = connections["default"].settings_dict
    configured = settings.DATABASES[alias]
    return {
        **primary,
        **{key: configured[key] for key in ("HOST", "PORT", "USER", "PASSWORD", "OPTIONS")},
        "TEST": {**primary.get("TEST", {}), "MIRROR": "default"},
    }


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    original: dict[str, dict] = {}
    with django_db_blocker.unblock():
        target = primary_wal_lsn()
        for alias in settings.REPLICA_ALIASES:
            standby = _standby_settings(alias)
            original[alias] = dict(settings.DATABASES[alias])
            # This thread's connection, and the settings other threads build theirs from.
            settings.DATABASES[alias].update(standby)
            connections[alias].close()
            connections[alias].settings_dict = standby
            if not wait_for_replay(alias, target, timeout_s=60):
                pytest.exit(f"{alias} did not replay the test databases within 60 s", returncode=3)
    yield
    with django_db_blocker.unblock():
        for alias in settings.REPLICA_ALIASES:
            connections[alias].close()
            settings.DATABASES[alias].clear()
            settings.DATABASES[alias].update(original[alias])


@pytest.fixture(autouse=True)
def _fresh_fault_switches():
    """Switch values are cached per process; a test must not see the last test's values."""
    faults_cache_clear()
    yield
    faults_cache_clear()
