"""Transactional outbox and inbox, shared by every app that talks through Celery.

A service writes an outbox row in the same local transaction as its state change
(``outbox_put``); the row is published to Celery right after commit and, should the process
die between commit and publish, by the periodic sweep (``outbox_relay``),
which takes unpublished rows oldest first with ``FOR UPDATE SKIP LOCKED`` so that several
relays never block each other.
Delivery is at least once: a row can be published twice (a crash after the send, before the
row is marked). Consumers therefore call ``inbox_accept`` inside the transaction that applies
their effect: the message id is inserted in the inbox, unique, so a redelivery does nothing.

Each app defines concrete tables in its own database (subclasses of ``OutboxMessage`` and
``InboxMessage``) and registers its outbox with ``outbox_register``. Crash points of this
module (``OUTBOX_CRASH_POINTS``) and of consumers (``consumer_crash_point``) are named here and
registered by the app that owns them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, ClassVar, Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, models, transaction
from django.db.models import F
from django.utils import timezone

from core.faults import crash_point
from core.metrics import inbox_redeliveries_ignored
from core.request_id import MAX_LENGTH as MAX_REQUEST_ID_LENGTH
from core.request_id import MESSAGE_KEY as REQUEST_ID_KEY
from core.request_id import request_id_bound, request_id_or_blank

logger = logging.getLogger(__name__)

RELAY_BATCH = 200
# The sweep leaves rows younger than this to the publish right after their commit.
SWEEP_GRACE_S = 2.0

CRASH_BEFORE_PUBLISH = "before_outbox_publish"
CRASH_AFTER_SEND = "after_outbox_send"
OUTBOX_CRASH_POINTS = (CRASH_BEFORE_PUBLISH, CRASH_AFTER_SEND)


def consumer_crash_point(consumer: str) -> str:
    """The crash point a consumer arms with ``crash_after_commit``: right after the commit of
    its effect, before the publish of its reply and the ack of its message."""
    return f"after_{consumer}_commit"


class Publishable(Protocol):
    """A message type (``contracts.base.Message``): the consuming task's name and a payload."""

    name: ClassVar[str]

    def to_payload(self) -> dict[str, Any]: ...


class OutboxMessage(models.Model):
    """A message to publish: a Celery task name and its keyword arguments."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.CharField(max_length=200)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_count = models.PositiveIntegerField(default=0)
    # The id of the request (or task) that wrote the row: the message is published under it,
    # whoever publishes it (core.request_id).
    request_id = models.CharField(
        max_length=MAX_REQUEST_ID_LENGTH, blank=True, default=request_id_or_blank, editable=False
    )

    class Meta:
        abstract = True
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="%(app_label)s_outbox_unpub",
                condition=models.Q(published_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.id}"


class InboxMessage(models.Model):
    """A message id a consumer has applied; the primary key makes a second apply impossible."""

    message_id = models.UUIDField(primary_key=True)
    consumer = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.consumer} {self.message_id}"


@dataclass(frozen=True)
class _Outbox:
    model: type[OutboxMessage]
    using: str


_outboxes: dict[str, _Outbox] = {}


TRANSIENT_ERRORS = (OperationalError, InterfaceError)


def consumer_retry(*, max_retries: int | None = 12, also: tuple = ()) -> dict[str, Any]:
    """Celery options of an outbox consumer: transient errors (a lost connection, a deadlock
    victim, a serialization failure, and ``also``) retry with capped exponential backoff and
    jitter; ``max_retries=None`` retries until it succeeds (compensation)."""
    return {
        "autoretry_for": (*TRANSIENT_ERRORS, *also),
        "retry_backoff": 1,
        "retry_backoff_max": settings.STATELAB_TASK_MAX_COUNTDOWN_S,
        "retry_jitter": True,
        "max_retries": max_retries,
    }


def outbox_register(model: type[OutboxMessage], *, using: str) -> None:
    _outboxes[using] = _Outbox(model=model, using=using)


def outbox_databases() -> list[str]:
    return sorted(_outboxes)


def outbox_put(
    *, using: str, task: str, kwargs: dict[str, Any], message_id: uuid.UUID | None = None
) -> OutboxMessage:
    """Write a message in the caller's transaction on ``using``; publish it after commit.

    Must run inside ``transaction.atomic(using=using)``: the message exists if and only if the
    caller's state change does. ``message_id`` (default: a new one) lets a producer find the
    message of an effect again without searching payloads."""
    outbox = _outboxes[using]
    _in_transaction(using)
    message = outbox.model.objects.using(using).create(
        id=message_id or uuid.uuid4(), task=task, payload=kwargs
    )
    _publish_on_commit(using, [message])
    return message


def outbox_message_put(
    *, using: str, message: Publishable, message_id: uuid.UUID | None = None
) -> OutboxMessage:
    """``outbox_put`` of a typed message: its name is the task, its payload the kwargs."""
    return outbox_put(
        using=using, task=message.name, kwargs=message.to_payload(), message_id=message_id
    )


def outbox_messages_put(
    *, using: str, messages: list[Publishable], request_ids: list[str] | None = None
) -> list[OutboxMessage]:
    """Many typed messages in one statement, in the caller's transaction (a batch's replies
    and commands); published together after commit. ``request_ids``, one per message, are
    the ids their rows record (a batch answers many requests); without them, or where one is
    blank, the current id."""
    if not messages:
        return []
    outbox = _outboxes[using]
    _in_transaction(using)
    now = timezone.now()
    ids = request_ids if request_ids is not None else [""] * len(messages)
    rows: list[OutboxMessage] = []
    for message, request_id in zip(messages, ids, strict=True):
        # A row's request id defaults to the current one when the row is made.
        with request_id_bound(request_id):
            rows.append(
                outbox.model(
                    id=uuid.uuid4(), task=message.name, payload=message.to_payload(), created_at=now
                )
            )
    outbox.model.objects.using(using).bulk_create(rows)
    _publish_on_commit(using, rows)
    return rows


def _in_transaction(using: str) -> None:
    if not connections[using].in_atomic_block:
        raise RuntimeError("outbox_put must run inside the transaction that changes the state")


class _Collector(threading.local):
    """Rows committed inside ``outbox_publishing_deferred``, per thread, waiting to go out."""

    rows: list[tuple[str, OutboxMessage]] | None = None


_collector = _Collector()


def _publish_on_commit(using: str, rows: list[OutboxMessage]) -> None:
    if settings.OUTBOX_PUBLISH_ON_COMMIT:
        transaction.on_commit(partial(_committed, using=using, rows=rows), using=using, robust=True)


def _committed(*, using: str, rows: list[OutboxMessage]) -> None:
    """After the commit of rows: publish them now, or hand them to the enclosing
    ``outbox_publishing_deferred`` block (collected here, after commit, so that rows of a
    rolled-back savepoint are never published: Django drops their callbacks)."""
    if _collector.rows is not None:
        _collector.rows.extend((using, row) for row in rows)
    else:
        _publish_after_commit(using=using, rows=rows)


@contextmanager
def outbox_publishing_deferred() -> Iterator[None]:
    """Rows committed inside the block are published when it ends, together: one broker
    message per consumer (a batch's replies leave in one round trip, not one per reply).
    Published even if the block raises: what committed must go out."""
    outer = _collector.rows
    _collector.rows = collected = []
    try:
        yield
    finally:
        _collector.rows = outer
        by_database: dict[str, list[OutboxMessage]] = {}
        for using, row in collected:
            by_database.setdefault(using, []).append(row)
        for using, rows in by_database.items():
            if outer is not None:
                outer.extend((using, row) for row in rows)
            else:
                _publish_after_commit(using=using, rows=rows)


def _envelopes(rows: list[OutboxMessage]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by consumer task, in order, at most ``RELAY_BATCH`` to an envelope."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        item = {**row.payload, "message_id": str(row.id)}
        if row.request_id:
            item[REQUEST_ID_KEY] = row.request_id
        groups.setdefault(row.task, []).append(item)
    for task, items in groups.items():
        for start in range(0, len(items), RELAY_BATCH):
            yield task, items[start : start + RELAY_BATCH]


def _send(rows: list[OutboxMessage]) -> None:
    """Hand rows to the broker, one envelope (``core.consumers``) per consumer task: the row's
    id is the message id the consumer's inbox records, and each item carries the request id
    the row was written under."""
    from config.celery import app

    for task, items in _envelopes(rows):
        app.send_task(task, kwargs={"messages": items})


def _publish_after_commit(*, using: str, rows: list[OutboxMessage]) -> None:
    """The fast path right after commit: send the rows just written, then mark them. A crash
    between the two leaves them unmarked, and the sweep sends them again after
    ``SWEEP_GRACE_S``: duplicates that the consumer's inbox ignores, never a loss.

    Nothing here may raise: the caller's transaction has committed (a request must still get
    its answer), and Django's report of a failing robust on_commit callback itself fails on a
    ``partial``. Even reading the crash point's switch (a query on ``default``) can fail."""
    try:
        crash_point(CRASH_BEFORE_PUBLISH)
        _send(rows)
        crash_point(CRASH_AFTER_SEND)
        _mark_published_unflushed(using=using, ids=[row.id for row in rows])
    except Exception:
        # The rows are committed; the sweep publishes them. Never fail the caller for this.
        logger.warning("outbox publish after commit failed; the sweep will retry", exc_info=True)


def _mark_published_unflushed(*, using: str, ids: list[uuid.UUID]) -> None:
    """Mark rows published in one statement whose commit does not wait for its WAL flush
    (``set_config(.., true)`` is local to that statement's transaction): losing the mark in a
    crash only makes the sweep send the rows again. One round trip instead of BEGIN, SET,
    UPDATE and COMMIT on every saga step."""
    connection = connections[using]
    table = connection.ops.quote_name(_outboxes[using].model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET published_at = %s, publish_count = publish_count + 1 "  # noqa: S608 - table name from the model
            "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed "
            "WHERE id = ANY(%s) AND published_at IS NULL",
            [timezone.now(), ids],
        )


def outbox_relay(*, using: str, limit: int = RELAY_BATCH, grace_s: float | None = None) -> int:
    """The sweep: publish unpublished rows older than ``grace_s`` (default ``SWEEP_GRACE_S``;
    younger ones are still being published after their commit), oldest first; returns how many.

    Rows are locked with SKIP LOCKED (concurrent sweeps never block or double-send each
    other), sent, then marked in the same transaction: a crash after the send and before the
    commit publishes them again later (at least once, never zero)."""
    outbox = _outboxes[using]
    grace = SWEEP_GRACE_S if grace_s is None else grace_s
    with transaction.atomic(using=using):
        rows = list(
            outbox.model.objects.using(using)
            .select_for_update(skip_locked=True)
            .filter(
                published_at__isnull=True,
                created_at__lte=timezone.now() - timedelta(seconds=grace),
            )
            .order_by("created_at")[:limit]
        )
        _send(rows)
        if rows:
            crash_point(CRASH_AFTER_SEND)
            outbox.model.objects.using(using).filter(id__in=[row.id for row in rows]).update(
                published_at=timezone.now(), publish_count=F("publish_count") + 1
            )
    return len(rows)


def outbox_resend(*, using: str, ids: list[uuid.UUID]) -> int:
    """Send rows again although they were published, for a watchdog that found their effect
    missing: a worker killed while holding a message keeps it from every other worker until
    the broker's visibility timeout. The same message id, so the consumer's inbox applies it
    at most once whichever copy arrives first."""
    outbox = _outboxes[using]
    with transaction.atomic(using=using):
        rows = list(
            outbox.model.objects.using(using).select_for_update(skip_locked=True).filter(id__in=ids)
        )
        _send(rows)
        outbox.model.objects.using(using).filter(id__in=[row.id for row in rows]).update(
            published_at=timezone.now(), publish_count=F("publish_count") + 1
        )
    return len(rows)


def outbox_relay_all(*, grace_s: float | None = None) -> dict[str, int]:
    """The periodic sweep over every registered outbox (a few batches each per call)."""
    published = {}
    for using in outbox_databases():
        total = 0
        for _ in range(5):
            count = outbox_relay(using=using, grace_s=grace_s)
            total += count
            if count < RELAY_BATCH:
                break
        published[using] = total
    return published


def outbox_backlog(*, using: str) -> tuple[int, float]:
    """(unpublished rows, age in seconds of the oldest one) of one database's outbox."""
    outbox = _outboxes[using]
    unpublished = outbox.model.objects.using(using).filter(published_at__isnull=True)
    stats = unpublished.aggregate(count=models.Count("id"), oldest=models.Min("created_at"))
    age = (timezone.now() - stats["oldest"]).total_seconds() if stats["oldest"] else 0.0
    return stats["count"], max(age, 0.0)


def inbox_accept(
    model: type[InboxMessage], *, using: str, message_id: uuid.UUID | str, consumer: str
) -> bool:
    """Record ``message_id`` in the caller's transaction; False when it was already applied
    (counted in ``statelab_inbox_redeliveries_ignored_total{consumer}``).

    ``INSERT .. ON CONFLICT DO NOTHING``: two concurrent deliveries of one message serialize on
    the primary key, and the loser sees False once the winner commits."""
    if not connections[using].in_atomic_block:
        raise RuntimeError("inbox_accept must run inside the transaction that applies the effect")
    table = connections[using].ops.quote_name(model._meta.db_table)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (message_id, consumer, received_at) VALUES (%s, %s, %s) "  # noqa: S608 - table name from the model
            "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            [str(message_id), consumer, timezone.now()],
        )
        accepted = cursor.fetchone() is not None
    if not accepted:
        inbox_redeliveries_ignored.labels(consumer=consumer).inc()
    return accepted


def inbox_accept_many(
    model: type[InboxMessage], *, using: str, messages: list[tuple[str, str]]
) -> set[str]:
    """Record many (message id, consumer) pairs in the caller's transaction, in one
    statement; the ids not applied before. Inserted in id order, so that two batches sharing
    messages wait for each other in one order (no deadlock)."""
    if not connections[using].in_atomic_block:
        raise RuntimeError("inbox_accept must run inside the transaction that applies the effect")
    if not messages:
        return set()
    table = connections[using].ops.quote_name(model._meta.db_table)
    ordered = sorted(
        {str(uuid.UUID(str(message_id))): consumer for message_id, consumer in messages}.items()
    )
    now = timezone.now()
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (message_id, consumer, received_at) "  # noqa: S608 - table name from the model
            "SELECT message_id, consumer, %s FROM unnest(%s::uuid[], %s::text[]) "
            "AS incoming (message_id, consumer) ORDER BY message_id "
            "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            [now, [message_id for message_id, _ in ordered], [consumer for _, consumer in ordered]],
        )
        accepted = {str(row[0]) for row in cursor.fetchall()}
    for message_id, consumer in ordered:
        if message_id not in accepted:
            inbox_redeliveries_ignored.labels(consumer=consumer).inc()
    return accepted


def crash_after_commit(name: str, *, using: str) -> None:
    """Arm crash point ``name`` to fire right after the current transaction commits, before
    anything that follows it (the outbox publish, the task's ack). Call it before outbox_put."""
    transaction.on_commit(partial(crash_point, name), using=using)
