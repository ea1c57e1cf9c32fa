"""Batches of messages, applied in this process by the same consumer tasks a worker runs (an
envelope handed to the task, as the worker's batching strategy hands a batch to its pool), on
the real accounts and ledger databases: duplicates inside a batch, a batch delivered again, a
poison message among good ones, opposite transfers in concurrent batches, the messages of
two requests in one batch each answered under its own request id."""

import threading
import uuid

import pytest
from celery import current_app
from django.db import connections

from accounts.models import AccountOperation, AccountsOutbox, AccountsParkedMessage
from contracts.accounts import DepositApplied, DepositJournaled
from contracts.saga import AccountDebited, CreditAccount, DebitAccount, RefundAccount
from core.consumers import batch_fallbacks, messages_parked, messages_retried
from core.metrics import inbox_redeliveries_ignored
from core.request_id import MESSAGE_KEY as REQUEST_ID_KEY
from core.request_id import request_id_bound
from ledger.models import LedgerOutbox, LedgerParkedMessage, Transfer
from ledger.services import transfer_create
from tests.factories import UserFactory
from tests.saga.conftest import (
    ALL_DATABASES,
    balance,
    broker_purge,
    deliver_all,
    deposit,
    refreshed,
)
from tests.saga.factories import AccountFactory

pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)
State = Transfer.State


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def sources(alice):
    accounts = [AccountFactory(owner_id=alice.pk) for _ in range(3)]
    for account in accounts:
        deposit(account, "100.00")
    deliver_all()
    return accounts


@pytest.fixture
def destination():
    return AccountFactory()


def _transfers(alice, sources, destination, amount="10.00") -> list[Transfer]:
    return [
        transfer_create(
            user_id=alice.pk,
            source_id=source.id,
            destination_id=destination.id,
            amount=amount,
            currency="EUR",
        )
        for source in sources
    ]


def _envelope(rows) -> list[dict]:
    """The rows' messages as the relay sends them: with their ids, and request ids if any."""
    return [
        {**row.payload, "message_id": str(row.id)}
        | ({REQUEST_ID_KEY: row.request_id} if row.request_id else {})
        for row in rows
    ]


def _debit_commands() -> list:
    return list(LedgerOutbox.objects.using("ledger").filter(task=DebitAccount.name))


def _apply(task: str, items: list[dict]) -> None:
    current_app.tasks[task](messages=items)


def _sample(metric, **labels) -> float:
    """The counter's value for ``labels`` (read from the counter alone: the registry's other
    collectors query databases these tests may not use)."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == labels:
                return sample.value
    return 0.0


def _debits() -> list[tuple]:
    return sorted(
        AccountOperation.objects.using("accounts")
        .filter(kind="debit")
        .values_list("transfer_id", "applied")
    )


def test_a_batch_applies_every_debit_in_it_and_sends_one_reply_each(alice, sources, destination):
    transfers = _transfers(alice, sources, destination)

    _apply(DebitAccount.name, _envelope(_debit_commands()))

    assert [balance(source) for source in sources] == [9000, 9000, 9000]
    assert _debits() == sorted((transfer.id, True) for transfer in transfers)
    replies = AccountsOutbox.objects.using("accounts").filter(task=AccountDebited.name)
    assert sorted(row.payload["transfer_id"] for row in replies) == sorted(
        str(transfer.id) for transfer in transfers
    )


def _transfers_of_two_requests(alice, sources, destination) -> dict[str, str]:
    """Two transfers, each created by its own request: transfer id -> request id."""
    created = {}
    for source, request_id in zip(sources[:2], ("request-a", "request-b"), strict=True):
        with request_id_bound(request_id):
            created[str(_transfers(alice, [source], destination)[0].id)] = request_id
    return created


def _request_ids_by_transfer(model, using: str, task: str) -> dict[str, str]:
    rows = model.objects.using(using).filter(task=task)
    return {row.payload["transfer_id"]: row.request_id for row in rows}


def test_the_replies_of_one_batch_each_carry_their_own_commands_request_id(
    alice, sources, destination
):
    created = _transfers_of_two_requests(alice, sources, destination)

    _apply(DebitAccount.name, _envelope(_debit_commands()))

    assert _request_ids_by_transfer(AccountsOutbox, "accounts", AccountDebited.name) == created


def test_the_commands_of_one_batch_of_replies_each_carry_their_own_replys_request_id(
    alice, sources, destination
):
    created = _transfers_of_two_requests(alice, sources, destination)
    _apply(DebitAccount.name, _envelope(_debit_commands()))
    replies = AccountsOutbox.objects.using("accounts").filter(task=AccountDebited.name)

    _apply(AccountDebited.name, _envelope(replies))

    assert _request_ids_by_transfer(LedgerOutbox, "ledger", CreditAccount.name) == created


def test_the_acknowledgements_of_one_batch_of_deposits_each_carry_their_deposits_request_id(
    sources,
):
    """The deposits of ``sources`` were made outside any request; two more, each in its own."""
    made = {}
    for source, request_id in zip(sources[:2], ("deposit-a", "deposit-b"), strict=True):
        with request_id_bound(request_id):
            deposit(source, "1.00")
        made[request_id] = AccountsOutbox.objects.using("accounts").get(
            task=DepositApplied.name, request_id=request_id
        )

    _apply(DepositApplied.name, _envelope(made.values()))

    acknowledgements = LedgerOutbox.objects.using("ledger").filter(
        task=DepositJournaled.name, request_id__in=list(made)
    )
    assert {row.payload["deposit_id"]: row.request_id for row in acknowledgements} == {
        row.payload["deposit_id"]: request_id for request_id, row in made.items()
    }


def test_a_message_twice_in_one_batch_is_applied_once(alice, sources, destination):
    transfer = _transfers(alice, sources[:1], destination)[0]
    command = _envelope(_debit_commands())[0]

    _apply(DebitAccount.name, [command, dict(command)])

    assert balance(sources[0]) == 9000
    assert _debits() == [(transfer.id, True)]
    assert AccountsOutbox.objects.using("accounts").filter(task=AccountDebited.name).count() == 1


def test_a_command_sent_again_with_a_new_id_in_the_same_batch_is_answered_not_applied(
    alice, sources, destination
):
    """A watchdog's re-drive next to the original in one batch: one debit, two answers."""
    transfer = _transfers(alice, sources[:1], destination)[0]
    command = _envelope(_debit_commands())[0]

    _apply(DebitAccount.name, [command, {**command, "message_id": str(uuid.uuid4())}])

    assert balance(sources[0]) == 9000
    assert _debits() == [(transfer.id, True)]
    assert AccountsOutbox.objects.using("accounts").filter(task=AccountDebited.name).count() == 2


def test_a_whole_batch_delivered_again_does_nothing(alice, sources, destination):
    _transfers(alice, sources, destination)
    batch = _envelope(_debit_commands())
    _apply(DebitAccount.name, batch)
    replies_before = AccountsOutbox.objects.using("accounts").count()
    ignored_before = _sample(inbox_redeliveries_ignored, consumer="debit")

    _apply(DebitAccount.name, batch)

    assert [balance(source) for source in sources] == [9000, 9000, 9000]
    assert len(_debits()) == 3
    assert AccountsOutbox.objects.using("accounts").count() == replies_before
    ignored = _sample(inbox_redeliveries_ignored, consumer="debit")
    assert ignored - ignored_before == 3


def test_a_poison_message_is_parked_and_the_good_ones_of_its_batch_are_applied(
    alice, sources, destination
):
    transfers = _transfers(alice, sources, destination)
    batch = _envelope(_debit_commands())
    poison = {key: value for key, value in batch[1].items() if key != "amount"}
    parked_before = _sample(messages_parked, consumer="debit")

    _apply(DebitAccount.name, [batch[0], poison, batch[2]])

    assert [balance(source) for source in sources] == [9000, 10000, 9000]
    assert _debits() == sorted([(transfers[0].id, True), (transfers[2].id, True)])
    parked = AccountsParkedMessage.objects.using("accounts").get()
    assert (parked.message_id, parked.consumer, parked.task) == (
        poison["message_id"],
        "debit",
        DebitAccount.name,
    )
    assert parked.reason.startswith("MessageMalformed")
    assert _sample(messages_parked, consumer="debit") - parked_before == 1


def test_a_reply_for_a_transfer_the_ledger_does_not_know_is_parked_not_retried_forever(
    alice, sources, destination
):
    transfers = _transfers(alice, sources[:2], destination)
    _apply(DebitAccount.name, _envelope(_debit_commands()))
    replies = _envelope(AccountsOutbox.objects.using("accounts").filter(task=AccountDebited.name))
    stranger = {"transfer_id": str(uuid.uuid4()), "message_id": str(uuid.uuid4())}

    _apply(AccountDebited.name, [replies[0], stranger, replies[1]])

    assert [refreshed(transfer).state for transfer in transfers] == [State.DEBITED] * 2
    parked = LedgerParkedMessage.objects.using("ledger").get()
    assert parked.message_id == stranger["message_id"]
    assert parked.reason.startswith("TransferNotFound")


@pytest.fixture
def broker_purged_after():
    """The test sends a delayed copy to the broker: no later worker may pick it up."""
    yield
    broker_purge()


def test_a_refund_ahead_of_its_debit_is_sent_again_and_applies_once_the_debit_is_there(
    alice, sources, destination, broker_purged_after
):
    """Compensation is retried until done: the refund waiting for its debit is deferred (not
    parked), the other refund of its batch applies, and the copy sent again applies later."""
    early, ready = _transfers(alice, sources[:2], destination)
    debits = {item["transfer_id"]: item for item in _envelope(_debit_commands())}
    _apply(DebitAccount.name, [debits[str(ready.id)]])
    refunds = [
        {
            **RefundAccount(
                transfer_id=str(transfer.id), account_id=source.id, amount=1000, currency="EUR"
            ).to_payload(),
            "message_id": str(uuid.uuid4()),
        }
        for transfer, source in ((early, sources[0]), (ready, sources[1]))
    ]
    retried_before = _sample(messages_retried, consumer="refund")

    _apply(RefundAccount.name, refunds)

    assert _sample(messages_retried, consumer="refund") - retried_before == 1
    assert not AccountsParkedMessage.objects.using("accounts").exists()
    assert _refunds() == [ready.id]
    _apply(DebitAccount.name, [debits[str(early.id)]])
    _apply(RefundAccount.name, [{**refunds[0], "attempt": 1}])
    assert sorted(_refunds()) == sorted([early.id, ready.id])
    assert [balance(source) for source in sources[:2]] == [10000, 10000]


def _refunds() -> list:
    return list(
        AccountOperation.objects.using("accounts")
        .filter(kind="refund", applied=True)
        .values_list("transfer_id", flat=True)
    )


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_concurrent_batches_of_opposite_transfers_lock_in_one_order_and_never_deadlock():
    """Two batches at once, each debiting both accounts, naming them in opposite orders: the
    rows are locked in id order, so neither waits for the other in a cycle (a deadlock would
    make Postgres abort one, and the consumer fall back to item by item)."""
    owner = UserFactory()
    first, second = AccountFactory(owner_id=owner.pk), AccountFactory(owner_id=owner.pk)
    for account in (first, second):
        deposit(account, "1000.00")
    deliver_all()
    rounds = 15
    for _ in range(2 * rounds):
        for source, destination in ((first, second), (second, first)):
            transfer_create(
                user_id=owner.pk,
                source_id=source.id,
                destination_id=destination.id,
                amount="1.00",
                currency="EUR",
            )
    commands = {first.id: [], second.id: []}
    for item in _envelope(_debit_commands()):
        commands[item["account_id"]].append(item)
    # Round n: one batch debits first then second, the other second then first.
    plans = [
        [[commands[first.id][2 * n], commands[second.id][2 * n]] for n in range(rounds)],
        [[commands[second.id][2 * n + 1], commands[first.id][2 * n + 1]] for n in range(rounds)],
    ]
    fallbacks_before = _sample(batch_fallbacks, consumer="debit")
    start = threading.Barrier(2)
    failures = []

    def apply(batches: list[list[dict]]) -> None:
        try:
            for batch in batches:
                start.wait(timeout=30)
                _apply(DebitAccount.name, batch)
        except Exception as error:  # reported by the assertion below
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=apply, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures
    assert _sample(batch_fallbacks, consumer="debit") == fallbacks_before
    applied = AccountOperation.objects.using("accounts").filter(kind="debit", applied=True)
    assert applied.count() == 4 * rounds
    assert (balance(first), balance(second)) == (100000 - 2 * rounds * 100,) * 2
