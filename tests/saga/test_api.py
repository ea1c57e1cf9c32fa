"""REST: accounts, deposits, transfers, journal, reconciliation; bad input is a clear 4xx."""

import pytest
from rest_framework.test import APIClient

from ledger.models import Transfer
from tests.factories import StaffFactory, UserFactory
from tests.saga.conftest import ALL_DATABASES, deliver_all, deposit
from tests.saga.factories import AccountFactory

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def funded(alice):
    account = AccountFactory(owner_id=alice.pk)
    deposit(account, "50.00")
    deliver_all()
    return account


@pytest.fixture
def other():
    return AccountFactory()


def _post_transfer(client, body, key="key-1"):
    return client.post("/api/transfers/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_user_lists_only_their_own_accounts(alice, funded, other):
    response = _client(alice).get("/api/accounts/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [funded.id]
    assert response.json()["results"][0]["balance"] == "50.00"


def test_staff_list_every_account(funded, other):
    ids = [row["id"] for row in _client(StaffFactory()).get("/api/accounts/").json()["results"]]

    assert {funded.id, other.id} <= set(ids)


def test_a_user_opens_an_account_in_a_supported_currency(alice):
    response = _client(alice).post("/api/accounts/", {"currency": "USD"}, format="json")

    assert response.status_code == 201
    assert response.json()["owner_id"] == alice.pk
    assert response.json()["balance"] == "0.00"


def test_an_account_in_an_unknown_currency_is_a_400(alice):
    response = _client(alice).post("/api/accounts/", {"currency": "ZZZ"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "currency_unsupported"


def test_another_users_account_answers_404(alice, other):
    response = _client(alice).get(f"/api/accounts/{other.id}/")

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


def test_staff_deposit_adds_money_and_a_journal_entry_from_cash(other):
    response = _client(StaffFactory()).post(
        f"/api/accounts/{other.id}/deposits/", {"amount": "12.50"}, format="json"
    )
    deliver_all()

    assert response.status_code == 201
    assert response.json()["account"]["balance"] == "12.50"
    entries = (
        _client(StaffFactory()).get(f"/api/ledger/entries/?account={other.id}").json()["results"]
    )
    assert entries[0]["kind"] == "deposit"
    assert {(p["account"], p["amount"]) for p in entries[0]["postings"]} == {
        (None, "-12.50"),
        (other.id, "12.50"),
    }


def test_a_user_cannot_deposit(alice, funded):
    response = _client(alice).post(
        f"/api/accounts/{funded.id}/deposits/", {"amount": "1.00"}, format="json"
    )

    assert response.status_code == 403


def test_a_transfer_is_accepted_with_202_and_shows_its_history(alice, funded, other):
    response = _post_transfer(
        _client(alice),
        {"source": funded.id, "destination": other.id, "amount": "10.00", "currency": "EUR"},
    )

    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "pending"
    assert body["amount"] == "10.00"
    assert [step["to_state"] for step in body["history"]] == ["pending"]
    assert response["Location"] == f"/api/transfers/{body['id']}/"


def test_a_completed_transfer_shows_every_transition(alice, funded, other):
    client = _client(alice)
    created = _post_transfer(
        client, {"source": funded.id, "destination": other.id, "amount": "10.00", "currency": "EUR"}
    ).json()
    deliver_all()

    body = client.get(f"/api/transfers/{created['id']}/").json()

    assert body["state"] == "completed"
    assert [step["to_state"] for step in body["history"]] == [
        "pending",
        "debited",
        "credited",
        "completed",
    ]
    assert [row["id"] for row in client.get("/api/transfers/").json()["results"]] == [created["id"]]


def test_another_users_transfer_answers_404(alice, funded, other):
    created = _post_transfer(
        _client(alice),
        {"source": funded.id, "destination": other.id, "amount": "1.00", "currency": "EUR"},
    ).json()

    response = _client(UserFactory()).get(f"/api/transfers/{created['id']}/")

    assert response.status_code == 404
    assert response.json()["code"] == "transfer_not_found"


def test_moving_money_out_of_another_users_account_answers_404(alice, funded, other):
    response = _post_transfer(
        _client(alice),
        {"source": other.id, "destination": funded.id, "amount": "1.00", "currency": "EUR"},
    )

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    assert not Transfer.objects.using("ledger").exists()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": "0"}, "amount_not_positive"),
        ({"amount": "-5.00"}, "amount_not_positive"),
        ({"amount": "NaN"}, "amount_malformed"),
        ({"amount": "1e2"}, "amount_malformed"),
        ({"amount": 10}, "amount_malformed"),
        ({"amount": "1.001"}, "amount_too_precise"),
        ({"amount": "9" * 40}, "amount_too_long"),
        ({"currency": "XXX"}, "currency_unsupported"),
        ({"currency": "USD"}, "currency_mismatch"),
        ({"destination": "same"}, "same_account"),
        ({"destination": 10**9}, "account_not_found"),
        ({"source": "x"}, "validation_error"),
        ({"amount": None}, "amount_malformed"),
    ],
)
def test_a_bad_transfer_request_is_a_clear_4xx_with_a_code(alice, funded, other, change, code):
    body = {
        "source": funded.id,
        "destination": other.id,
        "amount": "1.00",
        "currency": "EUR",
        **change,
    }
    if change.get("destination") == "same":
        body["destination"] = funded.id

    response = _post_transfer(_client(alice), body)

    assert response.status_code in (400, 404)
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert not Transfer.objects.using("ledger").exists()


def test_a_cross_currency_transfer_is_a_400(alice, funded):
    dollars = AccountFactory(currency="USD")

    response = _post_transfer(
        _client(alice),
        {"source": funded.id, "destination": dollars.id, "amount": "1.00", "currency": "EUR"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "currency_mismatch"


def test_journal_entries_of_another_users_account_are_not_listed(alice, funded, other):
    deposit(other, "5.00")
    deliver_all()

    mine = _client(alice).get("/api/ledger/entries/").json()["results"]

    assert {p["account"] for entry in mine for p in entry["postings"]} == {None, funded.id}


def test_journal_entries_asked_for_another_users_account_answer_404(alice, funded, other):
    deposit(other, "5.00")
    deliver_all()

    response = _client(alice).get(f"/api/ledger/entries/?account={other.id}")

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


def test_the_reconciliation_report_is_staff_only_and_ok_when_quiet(alice, funded, other):
    _post_transfer(
        _client(alice),
        {"source": funded.id, "destination": other.id, "amount": "10.00", "currency": "EUR"},
    )
    deliver_all()

    assert _client(alice).get("/api/ledger/reconciliation/").status_code == 403
    report = _client(StaffFactory()).get("/api/ledger/reconciliation/").json()
    assert report["ok"] is True
    assert report["transfer_operations"]["checked"] == 1


def test_the_reconciliation_report_names_an_account_whose_balance_differs_from_the_journal(funded):
    from accounts.models import Account

    Account.objects.using("accounts").filter(id=funded.id).update(balance=1)

    report = _client(StaffFactory()).get("/api/ledger/reconciliation/").json()

    assert report["ok"] is False
    assert report["journal_matches_balances"]["differing_accounts"] == [
        {"account": funded.id, "balance": 1, "journal": 5000}
    ]
    assert report["money_conserved"]["ok"] is False


@pytest.mark.parametrize("value", ["", "x", "0"])
def test_journal_entries_with_an_account_that_is_not_a_positive_integer_are_a_400(alice, value):
    """The schema says integer; an empty value was taken as "no filter" (found by schemathesis)."""
    response = _client(alice).get(f"/api/ledger/entries/?account={value}")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "account" in response.json()["errors"]
