"""Any order of deliveries, with duplicates and watchdog re-drives mixed in, leaves the books
exact: messages are delivered by calling the consumers directly (the same task functions a
worker runs) on the real databases, in an order hypothesis chooses."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, AccountOperation, AccountsOutbox
from audit.reconciliation import reconciliation_report
from core.faults import faults_set
from ledger.models import LedgerOutbox, Transfer
from ledger.services import saga_redrive, transfer_create
from tests.factories import UserFactory
from tests.saga.conftest import ALL_DATABASES, deliver, deliver_all, deposit, redeliver
from tests.saga.factories import AccountFactory

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)


def _messages() -> list[tuple[str, object]]:
    rows = [("accounts", row) for row in AccountsOutbox.objects.using("accounts")]
    rows += [("ledger", row) for row in LedgerOutbox.objects.using("ledger")]
    return sorted(rows, key=lambda pair: (pair[1].created_at, str(pair[1].id)))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=80_00), min_size=1, max_size=3),
    credit_fails=st.booleans(),
    schedule=st.lists(
        st.tuples(st.sampled_from(["deliver", "redrive"]), st.integers(0, 10_000)), max_size=30
    ),
)
def test_duplicated_reordered_and_redriven_deliveries_apply_each_operation_once(
    amounts, credit_fails, schedule
):
    faults_set(values={"saga_credit_failure_rate": 1.0 if credit_fails else 0.0}, actor="test")
    user = UserFactory()
    source, destination = AccountFactory(owner_id=user.pk), AccountFactory()
    deposit(source, "100.00")
    deliver_all()
    transfers = [
        transfer_create(
            user_id=user.pk,
            source_id=source.id,
            destination_id=destination.id,
            amount=f"{amount // 100}.{amount % 100:02d}",
            currency="EUR",
        )
        for amount in amounts
    ]

    for action, pick in schedule:
        if action == "redrive":
            saga_redrive(transfer_id=transfers[pick % len(transfers)].id, actor="test")
            continue
        messages = _messages()
        using, row = messages[pick % len(messages)]
        if row.published_at is None:
            deliver(using, row)
        else:
            redeliver(row)
    deliver_all()

    states = [Transfer.objects.using("ledger").get(id=t.id).state for t in transfers]
    assert all(state in Transfer.TERMINAL for state in states)
    for transfer, state in zip(transfers, states, strict=True):
        applied = AccountOperation.objects.using("accounts").filter(
            transfer_id=transfer.id, applied=True
        )
        kinds = sorted(applied.values_list("kind", flat=True))
        assert (
            kinds
            == {"completed": ["credit", "debit"], "compensated": ["debit", "refund"], "failed": []}[
                state
            ]
        )
    moved = sum(t.amount for t, s in zip(transfers, states, strict=True) if s == "completed")
    assert Account.objects.using("accounts").get(id=source.id).balance == 100_00 - moved
    assert Account.objects.using("accounts").get(id=destination.id).balance == moved
    assert reconciliation_report()["ok"]
