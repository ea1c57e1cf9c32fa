"""The relay against the real broker, the inbox, the admin's re-drive, and the metrics."""

import pytest
import redis
from django.conf import settings
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import Account
from contracts.saga import DebitAccount
from core.outbox import outbox_put, outbox_relay_all
from ledger.models import LedgerOutbox, Transfer
from ledger.services import transfer_create
from tests.factories import UserFactory
from tests.saga.conftest import ALL_DATABASES, broker_purge, deliver_all, deposit
from tests.saga.factories import AccountFactory


@pytest.fixture
def transfer():
    user = UserFactory()
    source = AccountFactory(owner_id=user.pk)
    deposit(source, "10.00")
    deliver_all()
    return transfer_create(
        user_id=user.pk,
        source_id=source.id,
        destination_id=AccountFactory().id,
        amount="1.00",
        currency="EUR",
    )


def _queued() -> list[bytes]:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange(
        settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1
    )


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_message_committed_but_never_published_is_published_by_the_sweep(no_publish, transfer):
    broker_purge()
    row = LedgerOutbox.objects.using("ledger").get(task=DebitAccount.name)
    assert row.published_at is None

    published = outbox_relay_all(grace_s=0)

    row.refresh_from_db()
    assert published["ledger"] == 1
    assert row.published_at is not None
    assert row.publish_count == 1
    assert any(str(row.id).encode() in message for message in _queued())
    assert outbox_relay_all(grace_s=0)["ledger"] == 0
    broker_purge()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_sweep_leaves_a_fresh_row_to_the_publish_after_its_commit(no_publish, transfer):
    assert outbox_relay_all()["ledger"] == 0
    assert LedgerOutbox.objects.using("ledger").get(task=DebitAccount.name).published_at is None


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_message_is_published_right_after_its_transaction_commits(transfer):
    """The default path: no sweep needed (the fixture's transaction published on commit)."""
    assert not LedgerOutbox.objects.using("ledger").filter(published_at__isnull=True).exists()
    broker_purge()


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_an_outbox_row_cannot_be_written_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox_put(using="ledger", task="ledger.notify", kwargs={})


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_a_rolled_back_step_leaves_no_message():
    def failing_step() -> None:
        with transaction.atomic(using="ledger"):
            outbox_put(using="ledger", task="ledger.notify", kwargs={"transfer_id": "x"})
            raise ValueError("the step's own work failed")

    with pytest.raises(ValueError, match="own work failed"):
        failing_step()

    assert not LedgerOutbox.objects.using("ledger").exists()


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_admin_lists_transfers_and_redrives_a_stuck_one(transfer):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_login(admin)
    before = LedgerOutbox.objects.using("ledger").count()

    listing = client.get("/admin/ledger/transfer/")
    detail = client.get(f"/admin/ledger/transfer/{transfer.id}/change/")
    response = client.post(
        "/admin/ledger/transfer/", {"action": "redrive", "_selected_action": [str(transfer.id)]}
    )

    assert listing.status_code == detail.status_code == 200
    assert response.status_code == 302
    assert LedgerOutbox.objects.using("ledger").count() == before + 1
    assert Transfer.objects.using("ledger").get(id=transfer.id).redrive_count == 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_admin_shows_accounts_and_the_journal_read_only(transfer):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_login(admin)

    for url in (
        "/admin/accounts/account/",
        "/admin/ledger/journalentry/",
        "/admin/accounts/accountoperation/",
    ):
        assert client.get(url).status_code == 200
    assert client.get("/admin/ledger/journalentry/add/").status_code == 403


def _staff_client() -> APIClient:
    client = APIClient()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _operations_formset(account: Account) -> dict:
    count = account.operations.count()
    return {
        "operations-TOTAL_FORMS": count,
        "operations-INITIAL_FORMS": count,
        **{f"operations-{n}-id": op.id for n, op in enumerate(account.operations.order_by("-id"))},
        **{f"operations-{n}-account": account.id for n in range(count)},
    }


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_staff_freeze_an_account_in_the_admin_and_cannot_change_its_currency():
    account = AccountFactory()
    deposit(account, "5.00")
    account.refresh_from_db()

    response = _staff_client().post(
        f"/admin/accounts/account/{account.id}/change/",
        {"status": "frozen", "currency": "USD", "owner_id": 999, **_operations_formset(account)},
    )

    changed = Account.objects.using("accounts").get(id=account.id)
    assert response.status_code == 302
    assert (changed.status, changed.currency, changed.owner_id) == (
        "frozen",
        account.currency,
        account.owner_id,
    )
    assert changed.version == account.version + 1


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_admin_deletes_no_account_and_no_inbox_row():
    account = AccountFactory()
    client = _staff_client()

    assert client.get(f"/admin/accounts/account/{account.id}/delete/").status_code == 403
    assert client.get("/admin/accounts/accountsinbox/add/").status_code == 403


@pytest.mark.django_db(databases="__all__")
def test_metrics_show_transfers_by_state_and_the_outbox_backlog(transfer):
    body = APIClient().get("/metrics").content.decode()

    assert 'statelab_transfers{state="pending"} 1.0' in body
    assert 'statelab_outbox_backlog{database="ledger"} 1.0' in body
    assert 'statelab_outbox_oldest_age_seconds{database="accounts"}' in body
    assert "statelab_saga_transitions_total" in body
    assert 'statelab_fault_value{switch="saga_credit_failure_rate"}' in body
    assert 'statelab_fault_crash_point_armed{point="after_debit_commit"}' in body
