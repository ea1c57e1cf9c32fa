# ruff: noqa: S608, E501 - pgbench script text built from constants; SQL lines kept whole
"""The SQL of one transfer as a pgbench script: the database's ceiling for the saga's work.

``saga_sql_script`` issues the statements, in the same transactions, that one transfer costs the saga
(idempotency key, transfer and its history, outbox and relay, inbox, account lock and update,
operation, journal entry, notification) on scratch copies of the saga's tables, in schema
``saga_bench`` of the ledger database.

``saga_tables_create`` makes the copies from the models with Django's schema editor (the
statements a migration would run: columns, NOT NULL, checks, unique constraints, indexes,
foreign keys), so they follow the real tables and cannot drift; a statement of the script that
no longer fits them fails the run loudly. Not copied: the triggers the ledger's migrations add
(transition guard, journal balance and immutability), which query the real tables by name.
"""

from __future__ import annotations

from functools import partial

from django.db import connections
from django.db.models import Model

from accounts.models import Account, AccountOperation, AccountsInbox, AccountsOutbox
from ledger.models import (
    JournalEntry,
    LedgerInbox,
    LedgerOutbox,
    Posting,
    Transfer,
    TransferIdempotencyKey,
    TransferTransition,
)
from loadtest.pgbench import PgbenchBaseline

ALIAS = "ledger"
SCHEMA = "saga_bench"

SAGA_MODELS: tuple[type[Model], ...] = (
    Account,
    AccountOperation,
    AccountsInbox,
    AccountsOutbox,
    Transfer,
    TransferTransition,
    JournalEntry,
    Posting,
    LedgerInbox,
    LedgerOutbox,
    TransferIdempotencyKey,
)


def _table(model: type[Model]) -> str:
    return f"{SCHEMA}.{model._meta.db_table}"


ACCOUNT = _table(Account)
OPERATION = _table(AccountOperation)
ACCOUNTS_INBOX = _table(AccountsInbox)
ACCOUNTS_OUTBOX = _table(AccountsOutbox)
TRANSFER = _table(Transfer)
TRANSITION = _table(TransferTransition)
ENTRY = _table(JournalEntry)
POSTING = _table(Posting)
LEDGER_INBOX = _table(LedgerInbox)
LEDGER_OUTBOX = _table(LedgerOutbox)
IDEMPOTENCY_KEY = _table(TransferIdempotencyKey)


def saga_tables_create(*, accounts: int) -> None:
    """(Re)create schema ``saga_bench`` on the ledger database: empty copies of the saga's
    tables, made by the schema editor inside the schema, and ``accounts`` funded accounts
    (ids 1..n)."""
    with connections[ALIAS].schema_editor() as editor:
        editor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        editor.execute(f"CREATE SCHEMA {SCHEMA}")
        # The editor's statements name tables unqualified: they land in the scratch schema
        # until this transaction ends (foreign keys and indexes included, run at its end).
        editor.execute(f"SET LOCAL search_path TO {SCHEMA}")
        for model in SAGA_MODELS:
            editor.create_model(model)
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ACCOUNT} (id, owner_id, currency, balance, status, version, created_at, updated_at) "
            "SELECT n, 1, 'EUR', 1000000000000, 'active', 0, now(), now() FROM generate_series(1, %s) AS n",
            [accounts],
        )


# pgbench substitutes :name textually: uuid ids are kept quoted (quote_literal) to be reused.


def _relay(outbox: str, variable: str) -> str:
    return f"""BEGIN;
SELECT id FROM {outbox} WHERE published_at IS NULL AND id = :{variable} FOR UPDATE SKIP LOCKED;
UPDATE {outbox} SET published_at = now(), publish_count = publish_count + 1 WHERE id = :{variable};
COMMIT;
"""


def _outbox_insert(outbox: str, task: str, out: str) -> str:
    return (
        f"INSERT INTO {outbox} (id, task, payload, created_at, publish_count) "
        f"VALUES (gen_random_uuid(), '{task}', '{{}}', now(), 0) RETURNING quote_literal(id) AS {out} \\gset\n"
    )


def _inbox_insert(inbox: str, consumer: str) -> str:
    return (
        f"INSERT INTO {inbox} (message_id, consumer, received_at) VALUES (gen_random_uuid(), '{consumer}', now()) "
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id;\n"
    )


def _account_step(kind: str, account: str, sign: str, out: str) -> str:
    return (
        "BEGIN;\n"
        + _inbox_insert(ACCOUNTS_INBOX, kind)
        + f"""SELECT id FROM {OPERATION} WHERE transfer_id = :tid AND kind = '{kind}';
SELECT id, balance, status, currency FROM {ACCOUNT} WHERE id IN (:{account}) ORDER BY id FOR UPDATE;
UPDATE {ACCOUNT} SET balance = balance {sign} :amount, version = version + 1, updated_at = now() WHERE id = :{account};
INSERT INTO {OPERATION} (account_id, kind, transfer_id, amount, currency, applied, reason, created_at) VALUES (:{account}, '{kind}', :tid, :amount, 'EUR', true, '', now());
"""
        + _outbox_insert(ACCOUNTS_OUTBOX, f"ledger.on_{kind}ed", out)
        + "COMMIT;\n"
    )


def _ledger_step(consumer: str, transitions: list[tuple[str, str]], tail: str, out: str) -> str:
    moves = "".join(
        f"INSERT INTO {TRANSITION} (transfer_id, from_state, to_state, actor, reason, at) VALUES (:tid, '{old}', '{new}', 'saga', '', now());\n"
        f"UPDATE {TRANSFER} SET state = '{new}', updated_at = now(), driven_at = now() WHERE id = :tid;\n"
        for old, new in transitions
    )
    return (
        "BEGIN;\n"
        + _inbox_insert(LEDGER_INBOX, consumer)
        + f"SELECT id, state FROM {TRANSFER} WHERE id = :tid FOR UPDATE;\n"
        + moves
        + tail
        + _outbox_insert(LEDGER_OUTBOX, "next", out)
        + "COMMIT;\n"
    )


def saga_sql_script(*, accounts: int) -> str:
    """One transfer between two of ``accounts`` accounts, as one pgbench transaction."""
    return (
        f"""\\set src random(1, {accounts})
\\set dst 1 + (:src + random(0, {accounts} - 2)) % {accounts}
\\set amount random(1, 10000)
BEGIN;
INSERT INTO {IDEMPOTENCY_KEY} (user_id, key, fingerprint, created_at, expires_at) VALUES (1, md5(random()::text || clock_timestamp()::text), 'f', now(), now() + interval '48 hours') RETURNING id AS kid \\gset
COMMIT;
SELECT id, owner_id, currency, status FROM {ACCOUNT} WHERE id IN (:src, :dst);
BEGIN;
INSERT INTO {TRANSFER} (id, owner_id, source_account_id, destination_account_id, amount, currency, state, failure_reason, created_at, updated_at, driven_at, redrive_count) VALUES (gen_random_uuid(), 1, :src, :dst, :amount, 'EUR', 'pending', '', now(), now(), now(), 0) RETURNING quote_literal(id) AS tid \\gset
INSERT INTO {TRANSITION} (transfer_id, from_state, to_state, actor, reason, at) VALUES (:tid, '', 'pending', 'user', 'requested', now());
"""
        + _outbox_insert(LEDGER_OUTBOX, "accounts.debit", "m1")
        + f"""UPDATE {IDEMPOTENCY_KEY} SET response_status = 202, response_body = '{{}}', completed_at = now() WHERE id = :kid;
COMMIT;
"""
        + _relay(LEDGER_OUTBOX, "m1")
        + _account_step("debit", "src", "-", "m2")
        + _relay(ACCOUNTS_OUTBOX, "m2")
        + _ledger_step("on_debited", [("pending", "debited")], "", "m3")
        + _relay(LEDGER_OUTBOX, "m3")
        + _account_step("credit", "dst", "+", "m4")
        + _relay(ACCOUNTS_OUTBOX, "m4")
        + _ledger_step(
            "on_credited",
            [("debited", "credited"), ("credited", "completed")],
            f"INSERT INTO {ENTRY} (kind, transfer_id, currency, description, created_at) VALUES ('transfer', :tid, 'EUR', '', now()) RETURNING id AS eid \\gset\n"
            f"INSERT INTO {POSTING} (entry_id, account_id, amount, currency) VALUES (:eid, :src, -:amount, 'EUR'), (:eid, :dst, :amount, 'EUR');\n",
            "m5",
        )
        + _relay(LEDGER_OUTBOX, "m5")
        + "BEGIN;\n"
        + _inbox_insert(LEDGER_INBOX, "notify")
        + f"""UPDATE {TRANSFER} SET notified_at = now() WHERE id = :tid AND notified_at IS NULL;
COMMIT;
"""
    )


def saga_sql_baseline(*, accounts: int, clients: int = 8) -> PgbenchBaseline:
    return PgbenchBaseline(
        "saga_sql",
        alias=ALIAS,
        script=saga_sql_script(accounts=accounts),
        setup=partial(saga_tables_create, accounts=accounts),
        clients=clients,
        description="the SQL of one transfer (7 transactions + 5 relay transactions) per "
        "pgbench transaction, on scratch copies of the saga's tables",
    )
