"""Helpers of the saga suites: money in, and an in-process "network" that delivers outbox
messages by calling the same Celery task functions a worker runs (no broker involved)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.db import transaction

import accounts.tasks  # noqa: F401 - registers the tasks that deliver() runs
import ledger.tasks  # noqa: F401
from accounts.models import Account, AccountsOutbox
from accounts.services import account_deposit
from audit.reconciliation import reconciliation_report
from contracts.accounts import AccountOpened
from core.faults import CACHE_SECONDS, faults_set
from ledger.models import LedgerOutbox, Transfer
from tests.workers import ROOT, worker_environment

ALL_DATABASES = ["default", "accounts", "ledger"]
OUTBOXES = ((AccountsOutbox, "accounts"), (LedgerOutbox, "ledger"))


def deposit(account: Account, amount: str) -> None:
    account_deposit(account_id=account.id, amount=amount)


def undelivered() -> list[tuple[str, object]]:
    """Every unpublished outbox row of both databases, oldest first."""
    rows = []
    for model, using in OUTBOXES:
        rows += [
            (using, row) for row in model.objects.using(using).filter(published_at__isnull=True)
        ]
    return sorted(rows, key=lambda pair: pair[1].created_at)


def deliver(using: str, row) -> None:
    """Mark one outbox row published and run its task function in this process."""
    from django.utils import timezone

    with transaction.atomic(using=using):
        type(row).objects.using(using).filter(id=row.id).update(published_at=timezone.now())
    current_app.tasks[row.task](**{**row.payload, "message_id": str(row.id)})


def account_announcement_deliver(account: Account) -> None:
    """Deliver the ``AccountOpened`` event of a just opened account to the ledger, as a worker
    would (published or not: the ledger applies an account's snapshot once)."""
    row = AccountsOutbox.objects.using("accounts").get(
        task=AccountOpened.name, payload__account_id=account.id
    )
    deliver("accounts", row)


def redeliver(row) -> None:
    """Deliver a message that was delivered before (same message id)."""
    current_app.tasks[row.task](**{**row.payload, "message_id": str(row.id)})


def deliver_all(max_rounds: int = 50) -> int:
    """Deliver messages until no outbox has any left; returns how many were delivered."""
    delivered = 0
    for _ in range(max_rounds):
        rows = undelivered()
        if not rows:
            return delivered
        for using, row in rows:
            deliver(using, row)
            delivered += 1
    raise AssertionError("the outboxes never became empty")


def transfer_requested(owner, source: Account, destination: Account, amount: str) -> Transfer:
    """A transfer asked for over the API by ``owner`` (202), as the worker tests start one."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(
        "/api/transfers/",
        {"source": source.id, "destination": destination.id, "amount": amount, "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"test-{uuid.uuid4()}",
    )
    assert response.status_code == 202, response.json()
    return Transfer.objects.using("ledger").get(id=response.json()["id"])


def refreshed(transfer: Transfer) -> Transfer:
    return Transfer.objects.using("ledger").get(id=transfer.id)


def balance(account: Account) -> int:
    return Account.objects.using("accounts").get(id=account.id).balance


def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float, step: Callable[[], None] | None = None
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def faults_set_everywhere(values: dict) -> None:
    """Set fault switches and wait out the bound within which every process sees them (each
    caches the switches for ``CACHE_SECONDS``): a worker process may have just loaded the old
    values."""
    faults_set(values=values, actor="test")
    time.sleep(CACHE_SECONDS + 0.2)


@pytest.fixture
def no_publish(settings):
    """Outbox rows stay in the outbox until a test delivers them (no broker traffic)."""
    settings.OUTBOX_PUBLISH_ON_COMMIT = False


@pytest.fixture
def assert_reconciled():
    def check() -> dict:
        report = reconciliation_report()
        assert report["ok"], report
        return report

    return check


class BeatProcess:
    """A real ``celery beat`` process: it publishes the relay sweep and the watchdog from
    CELERY_BEAT_SCHEDULE to the broker, for the worker to run."""

    def __init__(self, tmp_path: Path) -> None:
        self.log_path = tmp_path / "beat.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--schedule",
                str(tmp_path / "beat-schedule"),
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=worker_environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
        self._log.close()


@contextmanager
def celery_beat(tmp_path: Path) -> Iterator[BeatProcess]:
    beat = BeatProcess(tmp_path)
    try:
        yield beat
    finally:
        beat.stop()


def broker_purge() -> None:
    """Drop messages a previous test left on this run's queue: those waiting, and those a
    worker SIGKILLed by an earlier test (or run) had taken and not acknowledged. The Redis
    transport keeps the latter in its ``unacked`` hash and puts them back in the queue once
    the visibility timeout (an hour) has passed: into whatever test databases exist by then,
    where the same account ids name other accounts (a stale credit there creates money)."""
    from config.celery import app

    app.control.purge()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for tag, entry in broker.hgetall("unacked").items():
        _message, _exchange, routing_key = json.loads(entry)
        if routing_key == settings.CELERY_TASK_DEFAULT_QUEUE:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)
