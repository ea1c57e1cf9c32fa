"""The saga's SQL as pgbench runs it, on scratch copies of the real tables."""

from __future__ import annotations

import pytest
from django.db import connections

from loadtest.pgbench import pgbench_run
from loadtest.saga_sql import (
    ACCOUNT,
    ALIAS,
    POSTING,
    SAGA_MODELS,
    SCHEMA,
    TRANSFER,
    saga_sql_script,
    saga_tables_create,
)

pytestmark = pytest.mark.django_db(databases=["accounts", "ledger"], transaction=True)

ACCOUNTS = 4


@pytest.fixture
def scratch_tables():
    saga_tables_create(accounts=ACCOUNTS)
    yield
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def _columns(alias: str, schema: str, table: str) -> list[tuple]:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, is_identity "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY column_name",
            [schema, table],
        )
        return cursor.fetchall()


def _constraints(alias: str, schema: str, table: str) -> list[tuple]:
    """Keys, checks and foreign keys; not constraint triggers (the ledger's journal balance
    trigger is left out of the copies on purpose: it reads the real tables)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT conname, contype FROM pg_constraint JOIN pg_class ON pg_class.oid = conrelid "
            "JOIN pg_namespace ON pg_namespace.oid = relnamespace "
            "WHERE nspname = %s AND relname = %s AND contype <> 't' ORDER BY conname",
            [schema, table],
        )
        return cursor.fetchall()


def _home(model) -> str:
    return "accounts" if model._meta.app_label == "accounts" else "ledger"


@pytest.mark.usefixtures("scratch_tables")
def test_the_scratch_tables_have_the_columns_and_constraints_of_the_real_ones():
    for model in SAGA_MODELS:
        table = model._meta.db_table
        real = (
            _columns(_home(model), "public", table),
            _constraints(_home(model), "public", table),
        )

        scratch = (_columns(ALIAS, SCHEMA, table), _constraints(ALIAS, SCHEMA, table))

        assert real[0], f"{table} is a real table"
        assert scratch == real, table


@pytest.mark.usefixtures("scratch_tables")
@pytest.mark.parametrize("batch", [1, 3])
def test_pgbench_completes_balanced_transfers_with_the_script(tmp_path, batch):
    figures = pgbench_run(
        alias=ALIAS,
        script=saga_sql_script(accounts=ACCOUNTS, batch=batch),
        clients=2,
        transactions=3,
        work_dir=tmp_path,
    )

    with connections[ALIAS].cursor() as cursor:
        cursor.execute(f"SELECT state, count(*) FROM {TRANSFER} GROUP BY state")  # noqa: S608
        states = dict(cursor.fetchall())
        cursor.execute(f"SELECT coalesce(sum(amount), 0), count(*) FROM {POSTING}")  # noqa: S608
        posted = cursor.fetchone()
        cursor.execute(f"SELECT sum(balance), count(*) FROM {ACCOUNT}")  # noqa: S608
        balances = cursor.fetchone()
    assert figures.tps > 0
    assert states == {"completed": 6 * batch}
    assert posted == (0, 12 * batch)
    assert balances == (ACCOUNTS * 1_000_000_000_000, ACCOUNTS)
