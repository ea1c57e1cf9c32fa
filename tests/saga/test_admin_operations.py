"""What staff do in the admin: read amounts in major units with their currency, re-drive a
transfer from its page, resend outbox messages."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AccountsOutbox
from ledger.models import LedgerOutbox, Transfer
from ledger.services import transfer_create
from tests.factories import UserFactory
from tests.saga.conftest import ALL_DATABASES, deliver_all, deposit
from tests.saga.factories import AccountFactory

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


@pytest.fixture
def staff() -> APIClient:
    client = APIClient()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def transfer() -> Transfer:
    user = UserFactory()
    source = AccountFactory(owner_id=user.pk, currency="EUR")
    deposit(source, "20.00")
    deliver_all()
    return transfer_create(
        user_id=user.pk,
        source_id=source.id,
        destination_id=AccountFactory(currency="EUR").id,
        amount="12.30",
        currency="EUR",
    )


def test_amounts_show_in_major_units_with_their_currency(staff, transfer):
    transfers = staff.get("/admin/ledger/transfer/").content.decode()
    accounts = staff.get("/admin/accounts/account/").content.decode()
    page = staff.get(f"/admin/ledger/transfer/{transfer.id}/change/").content.decode()

    assert "12.30 EUR" in transfers
    assert "20.00 EUR" in accounts
    assert "12.30 EUR" in page


def test_a_transfer_page_re_drives_the_saga_it_shows(staff, transfer):
    before = LedgerOutbox.objects.using("ledger").count()
    page = staff.get(f"/admin/ledger/transfer/{transfer.id}/change/").content.decode()

    response = staff.post(f"/admin/ledger/transfer/{transfer.id}/redrive/")

    assert f"/admin/ledger/transfer/{transfer.id}/redrive/" in page
    assert response.status_code == 302
    assert Transfer.objects.using("ledger").get(id=transfer.id).redrive_count == 1
    assert LedgerOutbox.objects.using("ledger").count() == before + 1


def test_re_drive_changes_nothing_on_a_get(staff, transfer):
    response = staff.get(f"/admin/ledger/transfer/{transfer.id}/redrive/")

    assert response.status_code == 405
    assert Transfer.objects.using("ledger").get(id=transfer.id).redrive_count == 0


def test_a_finished_transfer_page_offers_no_re_drive(staff, transfer):
    deliver_all()
    transfer.refresh_from_db(using="ledger")
    Transfer.objects.using("ledger").filter(id=transfer.id).update(notified_at=transfer.updated_at)

    page = staff.get(f"/admin/ledger/transfer/{transfer.id}/change/").content.decode()

    assert transfer.state == Transfer.State.COMPLETED
    assert "/redrive/" not in page


@pytest.mark.parametrize(
    ("model", "using"), [(LedgerOutbox, "ledger"), (AccountsOutbox, "accounts")]
)
def test_the_outbox_admin_resends_the_selected_messages(staff, transfer, model, using):
    rows = list(model.objects.using(using).order_by("created_at"))
    label = f"{model._meta.app_label}/{model._meta.model_name}"

    response = staff.post(
        f"/admin/{label}/",
        {"action": "resend", "_selected_action": [str(rows[0].id)]},
    )

    assert response.status_code == 302
    resent = model.objects.using(using).get(id=rows[0].id)
    assert resent.publish_count == rows[0].publish_count + 1
    assert resent.published_at is not None
