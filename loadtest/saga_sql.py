# ruff: noqa: S608, E501 - pgbench script text built from constants; SQL lines kept whole
"""The SQL of the saga as a pgbench script: the database's ceiling for the saga's work.

``saga_sql_script`` issues the statements, in the same transactions, that a batch of transfers
costs the saga: each request's one transaction (idempotency key with its advisory lock, the
read model of accounts, transfer and its history, debit command, stored response) and the
relay's mark; then each step once for the whole batch, as the batching consumers apply it
(inbox rows, rows locked in id order, balances, operations, transitions, journal entries,
replies and commands, their marks, the notification), on scratch copies of the saga's tables,
in schema ``saga_bench`` of the ledger database.

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
    KnownAccount,
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
    KnownAccount,
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
KNOWN_ACCOUNT = _table(KnownAccount)


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
        cursor.execute(
            f"INSERT INTO {KNOWN_ACCOUNT} (account_id, owner_id, currency, status, version, updated_at) "
            "SELECT n, 1, 'EUR', 'active', 0, now() FROM generate_series(1, %s) AS n",
            [accounts],
        )


# pgbench substitutes :name textually: uuid ids are kept quoted (quote_literal) to be reused.


def _ids(name: str, batch: int) -> str:
    return ", ".join(f":{name}{n}" for n in range(batch))


def _mark_published(outbox: str, variables: str) -> str:
    """The relay's mark: one statement, its commit not waiting for the WAL flush."""
    return (
        f"UPDATE {outbox} SET published_at = now(), publish_count = publish_count + 1 "
        "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed "
        f"WHERE id IN ({variables}) AND published_at IS NULL;\n"
    )


def _outbox_insert(outbox: str, task: str, rows: int, out: str) -> str:
    """``rows`` messages in one statement; their ids, quoted and comma-separated, in ``:out``."""
    return (
        f"WITH sent AS (INSERT INTO {outbox} (id, task, payload, created_at, publish_count, "
        f"request_id) SELECT gen_random_uuid(), '{task}', '{{}}', now(), 0, "
        f"md5(random()::text) FROM generate_series(1, {rows}) "
        f"RETURNING id) SELECT string_agg(quote_literal(id), ', ') AS {out} FROM sent \\gset\n"
    )


def _inbox_insert(inbox: str, consumer: str, rows: int) -> str:
    return (
        f"INSERT INTO {inbox} (message_id, consumer, received_at) SELECT gen_random_uuid(), "
        f"'{consumer}', now() FROM generate_series(1, {rows}) ORDER BY 1 "
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id;\n"
    )


def _request(number: int, accounts: int) -> str:
    """``POST /api/transfers/``: the key's advisory lock, the key, the read model of the two
    accounts, the transfer with its history and its debit command, the response stored, all in
    one transaction; then the transfer read back for the response, and the relay's mark."""
    n = number
    return f"""\\set src{n} random(1, {accounts})
\\set dst{n} 1 + (:src{n} + random(0, {accounts} - 2)) % {accounts}
\\set amount{n} random(1, 10000)
BEGIN;
SELECT set_config('lock_timeout', '5000ms', true), set_config('statement_timeout', '15000ms', true);
SELECT quote_literal(md5(random()::text || clock_timestamp()::text)) AS key{n} \\gset
SELECT pg_try_advisory_xact_lock(hashtext(:key{n}));
SELECT id FROM {IDEMPOTENCY_KEY} WHERE user_id = 1 AND key = :key{n};
INSERT INTO {IDEMPOTENCY_KEY} (user_id, key, fingerprint, created_at, expires_at) VALUES (1, :key{n}, 'f', now(), now() + interval '48 hours') RETURNING id AS kid{n} \\gset
SELECT account_id, owner_id, currency, status FROM {KNOWN_ACCOUNT} WHERE account_id IN (:src{n}, :dst{n});
INSERT INTO {TRANSFER} (id, owner_id, source_account_id, destination_account_id, amount, currency, state, failure_reason, created_at, updated_at, driven_at, redrive_count, request_id) VALUES (gen_random_uuid(), 1, :src{n}, :dst{n}, :amount{n}, 'EUR', 'pending', '', now(), now(), now(), 0, md5(random()::text)) RETURNING quote_literal(id) AS tid{n} \\gset
INSERT INTO {TRANSITION} (transfer_id, from_state, to_state, actor, reason, at) VALUES (:tid{n}, '', 'pending', 'user', 'requested', now());
{_outbox_insert(LEDGER_OUTBOX, "accounts.debit", 1, f"request{n}").rstrip()}
SELECT id, state FROM {TRANSFER} WHERE id = :tid{n};
SELECT id, from_state, to_state FROM {TRANSITION} WHERE transfer_id = :tid{n};
UPDATE {IDEMPOTENCY_KEY} SET response_status = 202, response_body = '{{}}', completed_at = now() WHERE id = :kid{n};
COMMIT;
{_mark_published(LEDGER_OUTBOX, f":request{n}").rstrip()}
"""


def _account_batch(kind: str, account: str, sign: str, batch: int, out: str) -> str:
    """One batch of debits or credits: the inbox rows, the accounts locked in id order, the
    operations already recorded, one update of the balances, the operations and the replies;
    then the replies marked published."""
    accounts, transfers = _ids(account, batch), _ids("tid", batch)
    deltas = ", ".join(f"(:{account}{n}, {sign}:amount{n})" for n in range(batch))
    operations = ", ".join(
        f"(:{account}{n}, '{kind}', :tid{n}, :amount{n}, 'EUR', true, '', now())"
        for n in range(batch)
    )
    return (
        "BEGIN;\n"
        + _inbox_insert(ACCOUNTS_INBOX, kind, batch)
        + f"""SELECT id, balance, status, currency FROM {ACCOUNT} WHERE id IN ({accounts}) ORDER BY id FOR UPDATE;
SELECT id, transfer_id, kind FROM {OPERATION} WHERE transfer_id IN ({transfers});
UPDATE {ACCOUNT} SET balance = balance + delta.total, version = version + delta.n, updated_at = now() FROM (SELECT id, sum(amount) AS total, count(*) AS n FROM (VALUES {deltas}) AS changes (id, amount) GROUP BY id) AS delta WHERE {ACCOUNT}.id = delta.id;
INSERT INTO {OPERATION} (account_id, kind, transfer_id, amount, currency, applied, reason, created_at) VALUES {operations};
"""
        + _outbox_insert(ACCOUNTS_OUTBOX, f"ledger.on_{kind}ed", batch, out)
        + "COMMIT;\n"
        + _mark_published(ACCOUNTS_OUTBOX, f":{out}")
    )


def _ledger_batch(
    consumer: str, transitions: list[tuple[str, str]], batch: int, tail: str, out: str | None
) -> str:
    """One batch of events on the ledger: the inbox rows, the transfers locked in id order,
    each transition's history rows and state change (one statement each), ``tail``, the next
    commands; then those marked published."""
    transfers = _ids("tid", batch)
    moves = "".join(
        f"INSERT INTO {TRANSITION} (transfer_id, from_state, to_state, actor, reason, at) "
        f"SELECT id, '{old}', '{new}', 'saga', '', now() FROM unnest(ARRAY[{transfers}]::uuid[]) AS id;\n"
        f"UPDATE {TRANSFER} SET state = '{new}', updated_at = now(), driven_at = now() WHERE id IN ({transfers});\n"
        for old, new in transitions
    )
    commands = "" if out is None else _outbox_insert(LEDGER_OUTBOX, "next", batch, out)
    return (
        "BEGIN;\n"
        + _inbox_insert(LEDGER_INBOX, consumer, batch)
        + f"SELECT id, state FROM {TRANSFER} WHERE id IN ({transfers}) ORDER BY id FOR UPDATE;\n"
        + moves
        + tail
        + commands
        + "COMMIT;\n"
        + (_mark_published(LEDGER_OUTBOX, f":{out}") if out is not None else "")
    )


def _journal(batch: int) -> str:
    entries = ", ".join(f"('transfer', :tid{n}, 'EUR', '', now())" for n in range(batch))
    postings = ", ".join(
        f"(:tid{n}::uuid, :src{n}, -:amount{n}), (:tid{n}::uuid, :dst{n}, :amount{n})"
        for n in range(batch)
    )
    return (
        f"WITH entry AS (INSERT INTO {ENTRY} (kind, transfer_id, currency, description, created_at) "
        f"VALUES {entries} RETURNING id, transfer_id) "
        f"INSERT INTO {POSTING} (entry_id, account_id, amount, currency) "
        "SELECT entry.id, side.account_id, side.amount, 'EUR' FROM entry JOIN (VALUES "
        f"{postings}) AS side (transfer_id, account_id, amount) ON side.transfer_id = entry.transfer_id;\n"
    )


def saga_sql_script(*, accounts: int, batch: int = 1) -> str:
    """``batch`` transfers between ``accounts`` accounts as one pgbench transaction: each
    transfer's request on its own, then every saga step once for the whole batch, as the
    batching consumers apply them (``batch=1``: one transfer, a step per message)."""
    if batch < 1:
        raise ValueError("a batch holds at least one transfer")
    return (
        "".join(_request(n, accounts) for n in range(batch))
        + _account_batch("debit", "src", "-", batch, "debited")
        + _ledger_batch("on_debited", [("pending", "debited")], batch, "", "credit")
        + _account_batch("credit", "dst", "+", batch, "credited")
        + _ledger_batch(
            "on_credited",
            [("debited", "credited"), ("credited", "completed")],
            batch,
            _journal(batch),
            "notify",
        )
        + "BEGIN;\n"
        + _inbox_insert(LEDGER_INBOX, "notify", batch)
        + f"UPDATE {TRANSFER} SET notified_at = now() WHERE notified_at IS NULL "
        f"AND id IN ({_ids('tid', batch)});\n" + "COMMIT;\n"
    )


def saga_sql_baseline(*, accounts: int, clients: int = 8, batch: int = 1) -> PgbenchBaseline:
    return PgbenchBaseline(
        "saga_sql",
        alias=ALIAS,
        script=saga_sql_script(accounts=accounts, batch=batch),
        setup=partial(saga_tables_create, accounts=accounts),
        clients=clients,
        transfers_per_transaction=batch,
        description=f"the SQL of {batch} transfer(s) per pgbench transaction: each request's "
        "transaction, then each saga step for the batch, on scratch copies of the saga's tables",
    )
