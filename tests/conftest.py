"""Suite-wide setup: real databases (test copies on the embedded or given stack), a real replica.

Django's test runner would point a replica alias at the primary (TEST MIRROR); here the
replica alias is switched back to the real standby, which receives the primary's test
database by streaming replication. Django never flushes a mirror (a standby refuses it); a
non-transactional test opens a transaction on it, which a hot standby allows read-only, so
tests that need what the primary committed to reach the replica use ``transaction=True``.
"""

from __future__ import annotations

import functools

import pytest
from django.conf import settings
from django.core.management.commands import flush
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


#: Rows no test writes, derived from the models alone, that Django's flush would empty after
#: every transactional test only to write them again through post_migrate.
KEPT_BY_THE_FLUSH = frozenset({"django_content_type", "auth_permission"})


def _sql_flush_by_delete(
    style, connection, reset_sequences: bool = True, allow_cascade: bool = False
) -> list[str]:
    """``DELETE FROM`` every table of the models but the catalogue, in one transaction (the
    flush's): the foreign keys Django creates are deferred, so the order does not matter. A
    database with triggers of its own (the ledger's journal refuses DELETE) is truncated."""
    tables, triggered = _model_tables_of(connection.alias, connection.settings_dict["NAME"])
    if reset_sequences or triggered:
        return connection.ops.sql_flush(
            style, list(tables), reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    return [
        f"DELETE FROM {connection.ops.quote_name(table)}"  # noqa: S608 - model table names
        for table in tables
    ]


@functools.cache
def _model_tables_of(alias: str, database: str) -> tuple[tuple[str, ...], bool]:
    """The tables of the models on ``database`` (but the catalogue), and whether any table
    there has a trigger of its own; looked up once per database: the suite migrates each once
    and no test adds or drops a model's table."""
    connection = connections[alias]
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE NOT tgisinternal)")
        (triggered,) = cursor.fetchone()
    return tuple(sorted(set(tables) - KEPT_BY_THE_FLUSH)), triggered


@pytest.fixture(scope="session", autouse=True)
def _a_cheaper_flush_after_transactional_tests():
    """After each transactional test Django empties every table of every database it used, by
    ``TRUNCATE`` (a new file per table), then emits post_migrate, whose receivers write the
    content types and permissions back: most of a second per such test on this machine, minutes
    over the suite. Here the tables are emptied by ``DELETE`` (they hold a test's few rows) and
    the content types and permissions are kept (the project has no post_migrate receiver of
    its own). What a test wrote is removed as before."""
    patch = pytest.MonkeyPatch()
    patch.setattr(flush, "sql_flush", _sql_flush_by_delete)
    patch.setattr(flush, "emit_post_migrate_signal", lambda *args, **kwargs: None)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _fresh_fault_switches():
    """Switch values are cached per process; a test must not see the last test's values."""
    faults_cache_clear()
    yield
    faults_cache_clear()
