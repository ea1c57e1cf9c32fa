"""The invariant test (architecture section 3, invariants 1-4) under faults: a few hundred
transfers, created concurrently through the API, between four contended accounts; credits
fail 20% of the time; worker processes are SIGKILLed at every crash point between a commit
and the publish or ack that follows it and inside the consumers' batches, and the whole worker
is killed and restarted once. After the faults stop, every transfer must reach a terminal
state and the books must agree exactly."""

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.db.models import Count
from rest_framework.test import APIClient

from accounts.models import AccountOperation
from audit.reconciliation import reconciliation_report
from core.faults import faults_set
from ledger.models import LedgerInbox, Transfer
from tests.factories import UserFactory
from tests.saga.conftest import ALL_DATABASES, broker_purge, celery_beat, deposit, wait_until
from tests.saga.factories import AccountFactory
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)]

TRANSFERS = 240
CRASH_POINTS = [
    "after_debit_commit",
    "after_ledger_transition_commit",
    "after_credit_commit",
    "before_outbox_publish",
    "after_outbox_send",
    "after_refund_commit",
    "after_notify_commit",
    # Inside a batch: its effects written, not committed; applied, replies out, not acked.
    "accounts_batch_before_commit",
    "ledger_batch_before_commit",
    "consumer_batch_before_ack",
]


def _create_transfers(owners: dict, accounts: list) -> list[str]:
    rng = random.Random(20261124)  # noqa: S311 - a reproducible plan, not a secret
    plan = []
    for number in range(TRANSFERS):
        source = rng.choice(accounts)
        destination = rng.choice([account for account in accounts if account.id != source.id])
        amount = f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d}"
        plan.append((number, source, destination, amount))

    def create(step) -> str:
        number, source, destination, amount = step
        client = APIClient()
        client.force_authenticate(owners[source.owner_id])
        try:
            response = client.post(
                "/api/transfers/",
                {
                    "source": source.id,
                    "destination": destination.id,
                    "amount": amount,
                    "currency": "EUR",
                },
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"chaos-{number}",
            )
            assert response.status_code == 202, response.json()
            return response.json()["id"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(create, plan))


def _all_terminal() -> bool:
    return not Transfer.objects.using("ledger").exclude(state__in=list(Transfer.TERMINAL)).exists()


def test_after_crashes_and_credit_failures_every_transfer_ends_and_the_books_agree(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("STATELAB_SAGA_STUCK_AFTER_S", "3")
    broker_purge()
    users = [UserFactory(), UserFactory()]
    owners = {user.pk: user for user in users}
    accounts = [AccountFactory(owner_id=users[number % 2].pk) for number in range(4)]
    for account in accounts:
        deposit(account, "1000.00")
    # 100 ms per step keeps transfers in flight while the crash points are armed in turn (the
    # saga would otherwise finish before the first one is armed on a quiet machine).
    faults_set(values={"saga_credit_failure_rate": 0.2, "saga_step_latency_ms": 100}, actor="chaos")

    # Every transfer is accepted before a worker runs, and the faulty worker takes one message
    # per batch: the sagas then wait in the queues long enough for every crash point below to
    # find some in flight. (With the requests and the worker interleaved and batches of up to
    # 100, the consumers kept up with the requests: nothing was in flight when the first point
    # was armed, and no point fired.) The batch crash points are passed by batches of one too.
    ids = _create_transfers(owners, accounts)
    one_per_batch = {"STATELAB_CONSUMER_BATCH_MAX": "1"}
    with celery_beat(tmp_path):
        with celery_worker(
            tmp_path, concurrency=4, name="chaos-1", environment=one_per_batch
        ) as worker:
            crashes_before = worker.children_killed()
            for point in CRASH_POINTS:
                # Only worker processes pass these points while armed: this process creates
                # and relays nothing until the point is disarmed again.
                seen = worker.children_killed()
                faults_set(values={"crash_points": [point]}, actor="chaos")
                wait_until(lambda seen=seen: worker.children_killed() > seen, timeout_s=6)
                faults_set(values={"crash_points": []}, actor="chaos")
                time.sleep(0.5)
            crashed_children = worker.children_killed() - crashes_before
            worker.kill()  # the whole worker, with whatever it had prefetched and not acked

        faults_set(
            values={"saga_credit_failure_rate": 0.0, "saga_step_latency_ms": 0, "crash_points": []},
            actor="chaos",
        )
        with celery_worker(tmp_path, concurrency=4, name="chaos-2"):
            settled = wait_until(_all_terminal, timeout_s=90)
            quiet = wait_until(lambda: reconciliation_report()["ok"], timeout_s=30)

    states = dict(Transfer.objects.using("ledger").values_list("state").annotate(n=Count("id")))
    assert crashed_children >= 3, "the crash points never killed a worker process"
    assert settled, states
    assert len(ids) == Transfer.objects.using("ledger").count() == TRANSFERS
    report = reconciliation_report()
    assert quiet, report
    assert report["money_conserved"]["ok"]
    assert report["transfer_operations"]["ok"]
    assert report["transfer_operations"]["checked"] == TRANSFERS
    assert report["journal_matches_balances"]["ok"]
    assert report["operations_explain_balances"]["ok"]
    assert states.get("completed", 0) > 0
    assert states.get("compensated", 0) > 0
    applied = AccountOperation.objects.using("accounts").filter(
        applied=True, transfer_id__isnull=False
    )
    assert applied.count() == len(set(applied.values_list("transfer_id", "kind")))
    assert LedgerInbox.objects.using("ledger").count() > 0
