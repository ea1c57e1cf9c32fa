# ruff: noqa: S608, E501 - pgbench script text built from constants; SQL lines kept whole
"""Measuring the saga (a benchmark, not a test).

- ``saga_load``: clients POST transfers over HTTP for a while between a set of funded accounts,
  then the run waits until every transfer is terminal and reports completed transfers per
  second and request-to-completed latency (``completed_at - created_at``, p50/p99).
- ``SAGA_SQL``: a pgbench script issuing the same SQL statements, in the same transactions,
  that one transfer costs the saga (idempotency key, transfer, history, outbox and relay,
  inbox, account lock and update, operation, journal entry, notification), on scratch tables
  of the same shape in schema ``saga_bench``: the database's ceiling for this work.

``python manage.py saga_bench`` runs both in one go and prints the ratio; ``transfers_extra``
and ``SAGA_SQL_BASELINE`` plug into ``loadtest/plan.py`` for ``make bench``.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from pathlib import Path

import requests
from django.db.models import Max, Min

BENCH_USER = "saga-bench"
BENCH_ACCOUNTS = 16

SAGA_SQL_SETUP = f"""
DROP SCHEMA IF EXISTS saga_bench CASCADE;
CREATE SCHEMA saga_bench;
CREATE TABLE saga_bench.idem (id bigserial PRIMARY KEY, user_id bigint, key varchar(255),
    fingerprint varchar(64), response_status smallint, response_body jsonb,
    created_at timestamptz, completed_at timestamptz, expires_at timestamptz,
    UNIQUE (user_id, key));
CREATE TABLE saga_bench.account (id bigint PRIMARY KEY, owner_id bigint, currency varchar(3),
    balance bigint CHECK (balance >= 0), status varchar(8), version bigint,
    updated_at timestamptz);
INSERT INTO saga_bench.account
    SELECT n, 1, 'EUR', 1000000000000, 'active', 0, now()
    FROM generate_series(1, {BENCH_ACCOUNTS}) AS n;
CREATE TABLE saga_bench.operation (id bigserial PRIMARY KEY, account_id bigint, kind varchar(8),
    transfer_id bigint, amount bigint, currency varchar(3), applied boolean, reason varchar(64),
    created_at timestamptz, UNIQUE (transfer_id, kind));
CREATE TABLE saga_bench.outbox (id bigserial PRIMARY KEY, task varchar(200), payload jsonb,
    created_at timestamptz, published_at timestamptz, publish_count int DEFAULT 0);
CREATE INDEX ON saga_bench.outbox (created_at) WHERE published_at IS NULL;
CREATE TABLE saga_bench.inbox (message_id uuid PRIMARY KEY, consumer varchar(100),
    received_at timestamptz);
CREATE TABLE saga_bench.transfer (id bigserial PRIMARY KEY, owner_id bigint,
    source_account_id bigint, destination_account_id bigint, amount bigint,
    currency varchar(3), state varchar(12), failure_reason varchar(64),
    created_at timestamptz, updated_at timestamptz, completed_at timestamptz,
    driven_at timestamptz, notified_at timestamptz);
CREATE TABLE saga_bench.transition (id bigserial PRIMARY KEY, transfer_id bigint,
    from_state varchar(12), to_state varchar(12), actor varchar(150), reason varchar(200),
    at timestamptz);
CREATE TABLE saga_bench.entry (id bigserial PRIMARY KEY, kind varchar(8), transfer_id bigint
    UNIQUE, currency varchar(3), description varchar(200), created_at timestamptz);
CREATE TABLE saga_bench.posting (id bigserial PRIMARY KEY, entry_id bigint, account_id bigint,
    amount bigint, currency varchar(3));
"""


def _relay(variable: str) -> str:
    return f"""BEGIN;
SELECT id FROM saga_bench.outbox WHERE published_at IS NULL AND id = :{variable} FOR UPDATE SKIP LOCKED;
UPDATE saga_bench.outbox SET published_at = now(), publish_count = publish_count + 1 WHERE id = :{variable};
COMMIT;
"""


def _account_step(kind: str, account: str, sign: str, out: str) -> str:
    return f"""BEGIN;
INSERT INTO saga_bench.inbox VALUES (gen_random_uuid(), '{kind}', now()) ON CONFLICT (message_id) DO NOTHING RETURNING message_id;
SELECT id FROM saga_bench.operation WHERE transfer_id = :tid AND kind = '{kind}';
SELECT id, balance, status, currency FROM saga_bench.account WHERE id IN (:{account}) ORDER BY id FOR UPDATE;
UPDATE saga_bench.account SET balance = balance {sign} :amount, version = version + 1, updated_at = now() WHERE id = :{account};
INSERT INTO saga_bench.operation (account_id, kind, transfer_id, amount, currency, applied, reason, created_at) VALUES (:{account}, '{kind}', :tid, :amount, 'EUR', true, '', now());
INSERT INTO saga_bench.outbox (task, payload, created_at) VALUES ('ledger.on_{kind}ed', '{{}}', now()) RETURNING id AS {out} \\gset
COMMIT;
"""


def _ledger_step(consumer: str, transitions: list[tuple[str, str]], tail: str, out: str) -> str:
    moves = "".join(
        f"INSERT INTO saga_bench.transition (transfer_id, from_state, to_state, actor, reason, at) VALUES (:tid, '{old}', '{new}', 'saga', '', now());\n"
        f"UPDATE saga_bench.transfer SET state = '{new}', updated_at = now(), driven_at = now() WHERE id = :tid;\n"
        for old, new in transitions
    )
    return f"""BEGIN;
INSERT INTO saga_bench.inbox VALUES (gen_random_uuid(), '{consumer}', now()) ON CONFLICT (message_id) DO NOTHING RETURNING message_id;
SELECT id, state FROM saga_bench.transfer WHERE id = :tid FOR UPDATE;
{moves}{tail}INSERT INTO saga_bench.outbox (task, payload, created_at) VALUES ('next', '{{}}', now()) RETURNING id AS {out} \\gset
COMMIT;
"""


SAGA_SQL = (
    f"""\\set src random(1, {BENCH_ACCOUNTS})
\\set dst 1 + (:src + random(0, {BENCH_ACCOUNTS} - 2)) % {BENCH_ACCOUNTS}
\\set amount random(1, 10000)
BEGIN;
INSERT INTO saga_bench.idem (user_id, key, fingerprint, created_at, expires_at) VALUES (1, md5(random()::text || clock_timestamp()::text), 'f', now(), now() + interval '48 hours') RETURNING id AS kid \\gset
COMMIT;
SELECT id, owner_id, currency, status FROM saga_bench.account WHERE id IN (:src, :dst);
BEGIN;
INSERT INTO saga_bench.transfer (owner_id, source_account_id, destination_account_id, amount, currency, state, failure_reason, created_at, updated_at, driven_at) VALUES (1, :src, :dst, :amount, 'EUR', 'pending', '', now(), now(), now()) RETURNING id AS tid \\gset
INSERT INTO saga_bench.transition (transfer_id, from_state, to_state, actor, reason, at) VALUES (:tid, '', 'pending', 'user', 'requested', now());
INSERT INTO saga_bench.outbox (task, payload, created_at) VALUES ('accounts.debit', '{{}}', now()) RETURNING id AS m1 \\gset
UPDATE saga_bench.idem SET response_status = 202, response_body = '{{}}', completed_at = now() WHERE id = :kid;
COMMIT;
"""
    + _relay("m1")
    + _account_step("debit", "src", "-", "m2")
    + _relay("m2")
    + _ledger_step("on_debited", [("pending", "debited")], "", "m3")
    + _relay("m3")
    + _account_step("credit", "dst", "+", "m4")
    + _relay("m4")
    + _ledger_step(
        "on_credited",
        [("debited", "credited"), ("credited", "completed")],
        "INSERT INTO saga_bench.entry (kind, transfer_id, currency, description, created_at) VALUES ('transfer', :tid, 'EUR', '', now()) RETURNING id AS eid \\gset\n"
        "INSERT INTO saga_bench.posting (entry_id, account_id, amount, currency) VALUES (:eid, :src, -:amount, 'EUR'), (:eid, :dst, :amount, 'EUR');\n",
        "m5",
    )
    + _relay("m5")
    + """BEGIN;
INSERT INTO saga_bench.inbox VALUES (gen_random_uuid(), 'notify', now()) ON CONFLICT (message_id) DO NOTHING RETURNING message_id;
UPDATE saga_bench.transfer SET notified_at = now() WHERE id = :tid AND notified_at IS NULL;
COMMIT;
"""
)


def saga_sql_baseline(clients: int = 8):
    from loadtest.bench import PgbenchBaseline

    return PgbenchBaseline(
        "saga_sql",
        alias="ledger",
        script=SAGA_SQL,
        setup=SAGA_SQL_SETUP,
        clients=clients,
        description="the SQL of one transfer (7 transactions + 5 relay transactions) per "
        "pgbench transaction, on scratch tables of the same shape",
    )


def bench_accounts_ensure(*, count: int = BENCH_ACCOUNTS) -> tuple[str, list[int]]:
    """A bench user with ``count`` funded EUR accounts and an API token (idempotent)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from accounts.models import Account
    from accounts.services import account_create, account_deposit

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    token, _ = Token.objects.get_or_create(user=user)
    existing = list(
        Account.objects.using("accounts")
        .filter(owner_id=user.pk, currency="EUR")
        .values_list("id", flat=True)
    )
    for _ in range(count - len(existing)):
        account = account_create(owner_id=user.pk, currency="EUR")
        account_deposit(account_id=account.id, amount="1000000.00")
        existing.append(account.id)
    return token.key, sorted(existing)[:count]


def saga_load(
    *, base_url: str, token: str, accounts: list[int], clients: int, duration_s: float
) -> dict:
    """Drive transfers over HTTP for ``duration_s``; wait for them; measure."""
    from ledger.models import Transfer

    created: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def client(number: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        step = number
        while time.monotonic() < stop_at:
            source = accounts[step % len(accounts)]
            destination = accounts[(step * 7 + 1 + number) % len(accounts)]
            step += clients
            if source == destination:
                continue
            response = session.post(
                f"{base_url}/api/transfers/",
                json={
                    "source": source,
                    "destination": destination,
                    "amount": "0.01",
                    "currency": "EUR",
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
                timeout=30,
            )
            with lock:
                if response.status_code == 202:
                    created.append(response.json()["id"])
                else:
                    errors.append(f"{response.status_code} {response.text[:200]}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests_s = time.monotonic() - started

    transfers = Transfer.objects.using("ledger").filter(id__in=created)
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and transfers.exclude(state__in=list(Transfer.TERMINAL)).exists()
    ):
        time.sleep(0.25)
    completed = transfers.filter(state=Transfer.State.COMPLETED)
    window = completed.aggregate(first=Min("created_at"), last=Max("completed_at"))
    latencies = sorted(
        (done - begun).total_seconds() * 1000
        for begun, done in completed.values_list("created_at", "completed_at")
    )
    span = (window["last"] - window["first"]).total_seconds() if latencies else 0.0
    return {
        "requested": len(created),
        "request_errors": len(errors),
        "request_errors_sample": errors[:3],
        "requests_per_s": round(len(created) / requests_s, 1),
        "completed": len(latencies),
        "not_terminal": transfers.exclude(state__in=list(Transfer.TERMINAL)).count(),
        "completed_per_s": round(len(latencies) / span, 1) if span else 0.0,
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
        if latencies
        else None,
        "clients": clients,
        "accounts": len(accounts),
    }


def transfers_extra(*, service, scale: float, work_dir: Path) -> tuple[str, dict]:
    """A ``make bench`` extra: the saga's completed transfers per second against ``service``
    (a ``loadtest.service.Service``)."""
    token, accounts = bench_accounts_ensure()
    figures = saga_load(
        base_url=service.base_url,
        token=token,
        accounts=accounts,
        clients=8,
        duration_s=max(5.0, 30.0 * scale),
    )
    return "transfers", figures
