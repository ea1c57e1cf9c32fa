"""Every alias is its own database, migrations stay where they belong, the replica is real."""

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections

from consistency.replicas import primary_wal_lsn, set_replica_apply_delay, wait_for_replay
from tests.factories import UserFactory

WRITABLE_ALIASES = [alias for alias in settings.DATABASES if alias not in settings.REPLICA_ALIASES]


def _current_database(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_database()")
        return cursor.fetchone()[0]


def _has_table(alias: str, table: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


@pytest.mark.django_db(databases="__all__")
def test_every_writable_alias_is_a_database_of_its_own():
    names = [_current_database(alias) for alias in WRITABLE_ALIASES]

    assert len(set(names)) == len(WRITABLE_ALIASES)


def test_there_are_at_least_four_shards_and_one_replica():
    assert len(settings.SHARD_ALIASES) >= 4
    assert len(settings.REPLICA_ALIASES) >= 1


def _expected_aliases(app_label: str) -> list[str]:
    """architecture section 2, written out here rather than asked of the router under test."""
    if app_label == "sharding":
        return list(settings.SHARD_ALIASES)
    return {"accounts": ["accounts"], "ledger": ["ledger"]}.get(app_label, ["default"])


MIGRATED_MODELS = [
    model
    for model in apps.get_models()
    if model._meta.managed and not model._meta.proxy and not model._meta.swapped
]


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("model", MIGRATED_MODELS, ids=lambda model: model._meta.label)
def test_each_table_exists_only_on_the_databases_of_its_app(model):
    holders = [alias for alias in WRITABLE_ALIASES if _has_table(alias, model._meta.db_table)]

    assert holders == _expected_aliases(model._meta.app_label)


@pytest.mark.django_db(databases="__all__")
def test_every_writable_alias_was_migrated_separately():
    assert all(_has_table(alias, "django_migrations") for alias in WRITABLE_ALIASES)


@pytest.mark.replication
@pytest.mark.django_db(databases=["default", "replica_1"], transaction=True)
def test_a_row_written_on_the_primary_appears_on_the_replica_after_catch_up():
    user = UserFactory(username="replicated")

    assert wait_for_replay("replica_1", primary_wal_lsn(), timeout_s=10)
    assert get_user_model().objects.using("replica_1").filter(pk=user.pk).exists()


@pytest.mark.replication
@pytest.mark.django_db(databases=["default", "replica_1"], transaction=True)
def test_the_replica_refuses_writes():
    with (
        pytest.raises(DatabaseError, match="read-only"),
        connections["replica_1"].cursor() as cursor,
    ):
        cursor.execute("CREATE TABLE refused (id int)")


@pytest.fixture
def replica_apply_delay():
    """Sets the replica's apply delay for one test and always resets it to 0."""
    applied = []

    def apply(delay_ms: int) -> None:
        set_replica_apply_delay("replica_1", delay_ms)
        applied.append(delay_ms)

    yield apply
    if applied:
        set_replica_apply_delay("replica_1", 0)
        wait_for_replay("replica_1", primary_wal_lsn(), timeout_s=30)


@pytest.mark.replication
@pytest.mark.django_db(databases=["default", "replica_1"], transaction=True)
def test_with_an_apply_delay_a_read_on_the_replica_right_after_a_write_is_stale(
    replica_apply_delay,
):
    replica_apply_delay(1500)
    user = UserFactory(username="delayed")

    stale = not get_user_model().objects.using("replica_1").filter(pk=user.pk).exists()
    replica_apply_delay(0)
    caught_up = wait_for_replay("replica_1", primary_wal_lsn(), timeout_s=15)

    assert stale
    assert caught_up
    assert get_user_model().objects.using("replica_1").filter(pk=user.pk).exists()
