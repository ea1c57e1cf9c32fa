"""One pagination convention on every list (core.pagination): cursor pages with next/previous,
every row once when following next, a bad limit or cursor refused rather than cut."""

import pytest
from rest_framework.test import APIClient

from ledger.models import JournalEntry
from tests.factories import UserFactory
from tests.saga.conftest import deliver_all, deposit
from tests.saga.factories import AccountFactory

pytestmark = pytest.mark.django_db(databases=["default", "accounts", "ledger"])


@pytest.fixture
def alice():
    return UserFactory()


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _follow(client: APIClient, url: str) -> list[list]:
    pages = []
    while url:
        body = client.get(url).json()
        pages.append([row["id"] for row in body["results"]])
        url = body["next"]
    return pages


def test_following_next_lists_every_account_once_in_pages_of_limit(alice):
    opened = [AccountFactory(owner_id=alice.pk).id for _ in range(5)]

    pages = _follow(_client(alice), "/api/accounts/?limit=2")

    assert pages == [opened[0:2], opened[2:4], opened[4:5]]


def test_previous_leads_back_to_the_page_before(alice):
    opened = [AccountFactory(owner_id=alice.pk).id for _ in range(3)]
    client = _client(alice)
    second = client.get(client.get("/api/accounts/?limit=2").json()["next"]).json()

    back = client.get(second["previous"]).json()

    assert [row["id"] for row in back["results"]] == opened[0:2]
    assert back["previous"] is None


def test_journal_entries_come_newest_first_across_pages(alice):
    account = AccountFactory(owner_id=alice.pk)
    for amount in ("1.00", "2.00", "3.00"):
        deposit(account, amount)
    deliver_all()
    expected = list(
        JournalEntry.objects.using("ledger").order_by("-id").values_list("id", flat=True)
    )

    pages = _follow(_client(alice), "/api/ledger/entries/?limit=2")

    assert [entry for page in pages for entry in page] == expected


@pytest.mark.parametrize("limit", ["0", "501", "ten", "-1", ""])
def test_a_limit_out_of_range_is_refused_not_cut(alice, limit):
    response = _client(alice).get(f"/api/transfers/?limit={limit}")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "limit" in response.json()["errors"]


def test_a_forged_cursor_is_a_400(alice):
    response = _client(alice).get("/api/transfers/?cursor=not-a-cursor")

    assert (response.status_code, response.json()["code"]) == (400, "cursor_invalid")
