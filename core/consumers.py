"""Batching consumers: Celery tasks whose messages a worker applies many at a time.

Why: a saga step is a few small statements; run as one Celery task per message, the task's
own overhead and one WAL flush per message set the pace, not the statements. A batching
consumer applies many messages in one transaction (one inbox insert, one lock of the rows in
id order, one statement per kind of write), and its replies leave in one broker message.

How a message travels. The outbox relay (``core.outbox``) sends each group of rows bound for
one consumer as one broker message, an *envelope*: ``{"messages": [{..fields.., "message_id":
..}, ..]}``. In the worker, a consumer's strategy (``BatchStrategy``) does not run a task per
envelope: it gathers envelopes in a buffer and hands the buffer to the pool as one batch when
it holds ``CONSUMER_BATCH_MAX`` messages, or ``CONSUMER_BATCH_WINDOW_S`` after the first one
arrived, whichever comes first; while every pool process is busy with a batch it keeps
gathering (it has nothing to gain by handing over sooner), and hands over when one finishes. So
a lone message waits a few milliseconds at most, and a busy consumer takes large batches.

Guarantees, each kept by the batch as by a single message:
- acknowledged late: a batch's messages are acknowledged once the batch has been applied (or
  its failures handed on, below); a pool process that dies (a crash point, a SIGKILL) or
  overruns the time limit has every message of its batch requeued at once;
- a message seen twice in one batch is applied once (the copies are dropped before the batch
  runs); one seen before, in an earlier batch, is dropped by the consumer's inbox;
- a batch that fails is applied again item by item, each in its own transaction, so one bad
  message never holds back the others; an item that fails with an error the consumer retries
  (``retry_on``: lost connections, deadlocks, and the consumer's own, such as a refund whose
  debit is not there yet) is sent again with capped exponential backoff and jitter, up to
  ``max_retries`` times (None: until it succeeds); any other failure, or retries exhausted,
  *parks* the message: a row in the consumer's ``ParkedMessage`` table with the reason, the
  metric ``statelab_messages_parked_total{consumer}``, an error in the log. Parked messages are
  never applied by themselves; an operator reads the reason and sends them again.

A consumer is declared with ``batch_consumer``; its ``apply_batch(deliveries)`` runs one
transaction and may return the message ids it could not apply yet (with the error to retry
them with). Calling the task object (``task(messages=[..])``) applies an envelope in the
calling process, as tests and the retries' delayed copies do.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypedDict

import structlog
from celery import Task, current_app, shared_task, signals
from django.conf import settings
from django.db import models
from django.utils import timezone
from prometheus_client import Counter, Histogram

from core.faults import crash_point
from core.metrics import inbox_redeliveries_ignored
from core.request_id import MESSAGE_KEY as REQUEST_ID_KEY
from core.request_id import request_id_bound

logger = logging.getLogger(__name__)

ENVELOPE_KEY = "messages"
ATTEMPT_KEY = "attempt"
MESSAGE_ID_KEY = "message_id"
# A batch job's answer to the worker: acknowledge its messages, or put them back in the queue.
_ACK, _REQUEUE = "ack", "requeue"

batch_messages = Histogram(
    "statelab_consumer_batch_messages",
    "Messages applied by one batch of a batching consumer",
    ["consumer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
batch_fallbacks = Counter(
    "statelab_consumer_batch_fallbacks_total",
    "Batches that failed as a whole and were applied again item by item",
    ["consumer"],
)
messages_retried = Counter(
    "statelab_consumer_retries_total",
    "Messages sent again later after a failure the consumer retries",
    ["consumer"],
)
messages_parked = Counter(
    "statelab_messages_parked_total",
    "Messages a consumer could not apply and set aside, with their reason (ParkedMessage)",
    ["consumer"],
)


class ParkedMessage(models.Model):
    """A message its consumer could not apply (a poison message, or retries exhausted), kept
    with the reason. Not unique per message: each time it comes back and fails, a row."""

    message_id = models.CharField(max_length=100, db_index=True)
    consumer = models.CharField(max_length=100)
    task = models.CharField(max_length=200)
    payload = models.JSONField()
    reason = models.CharField(max_length=500)
    attempts = models.PositiveIntegerField(default=1)
    parked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-parked_at"]

    def __str__(self) -> str:
        return f"{self.consumer} {self.message_id}: {self.reason}"


@dataclass(frozen=True)
class Delivery:
    """One message of a batch: its id (the outbox row's), its fields, and how many times it
    was tried before (0 the first time)."""

    message_id: str
    payload: Mapping[str, Any] = field(hash=False, compare=False)
    attempt: int = field(default=0, hash=False, compare=False)
    request_id: str = field(default="", hash=False, compare=False)

    def wire(self, *, attempt: int | None = None) -> dict[str, Any]:
        """The message as an envelope carries it."""
        wired = {**self.payload, MESSAGE_ID_KEY: self.message_id, ATTEMPT_KEY: attempt or 0}
        if self.request_id:
            wired[REQUEST_ID_KEY] = self.request_id
        return wired


class MessageIdMissing(ValueError):
    """An envelope item without a message id: no inbox can tell its copies apart."""


def deliveries_read(items: Iterable[Mapping[str, Any]]) -> list[Delivery]:
    """The envelope's items as deliveries (an item without a message id gets a made-up one, so
    that it can be parked)."""
    deliveries = []
    for item in items:
        payload = {
            key: value
            for key, value in item.items()
            if key not in (MESSAGE_ID_KEY, ATTEMPT_KEY, REQUEST_ID_KEY)
        }
        message_id = item.get(MESSAGE_ID_KEY)
        deliveries.append(
            Delivery(
                message_id=str(message_id) if message_id else f"missing-{uuid.uuid4()}",
                payload=payload,
                attempt=int(item.get(ATTEMPT_KEY) or 0),
                request_id=str(item.get(REQUEST_ID_KEY) or ""),
            )
        )
    return deliveries


# apply_batch's answer: message ids it could not apply yet, each with the error to retry with.
Deferred = Mapping[str, Exception]


class BatchConsumer(Task):
    """Base class of the batching consumer tasks (declare them with ``batch_consumer``)."""

    typing = False
    consumer: str = ""
    parked_model: type[ParkedMessage] | None = None
    using: str = ""
    retry_on: tuple[type[BaseException], ...] = ()
    max_retries: int | None = 12
    crash_points: tuple[str, ...] = ()

    def apply_batch(self, deliveries: list[Delivery]) -> Deferred | None:
        raise NotImplementedError

    def Strategy(self, task: BatchConsumer, app, consumer, **_kwargs):
        return BatchStrategy(task, consumer)

    def consume(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Apply one batch: as a whole, else item by item; retry or park what failed.
        Raises only when a failure could not be handed on (a retry not sent, a message not
        parked): then the batch's messages must come back.

        Each message's request id is current wherever that message alone is concerned: a
        batch of one is applied under it, an item applied by itself too, and so are the line
        saying a message is done, its retry (which carries the id on) and its parking.
        Inside a larger batch the consumer's services write each message's outbox rows under
        its id (``Delivery.request_id``)."""
        deliveries = self._unique(deliveries_read(items))
        if not deliveries:
            return
        batch_messages.labels(consumer=self.consumer).observe(len(deliveries))
        alone = deliveries[0].request_id if len(deliveries) == 1 else None
        with request_id_bound(alone):
            setbacks = self._setbacks(deliveries)
        for delivery in deliveries:
            with request_id_bound(delivery.request_id):
                if delivery in setbacks:
                    self._hand_on(delivery, setbacks[delivery])
                else:
                    logger.info("%s: message %s done", self.consumer, delivery.message_id)

    def _setbacks(self, deliveries: list[Delivery]) -> dict[Delivery, Exception]:
        """The batch applied as a whole, else item by item: what failed, with its error."""
        try:
            return self._apply(deliveries)
        except Exception as error:
            if len(deliveries) == 1:
                return {deliveries[0]: error}
            batch_fallbacks.labels(consumer=self.consumer).inc()
            logger.warning(
                "%s: a batch of %d failed (%r); applying it item by item",
                self.consumer,
                len(deliveries),
                error,
            )
        setbacks: dict[Delivery, Exception] = {}
        for delivery in deliveries:
            try:
                with request_id_bound(delivery.request_id):
                    setbacks.update(self._apply([delivery]))
            except Exception as item_error:
                setbacks[delivery] = item_error
        return setbacks

    def _unique(self, deliveries: list[Delivery]) -> list[Delivery]:
        seen: dict[str, Delivery] = {}
        for delivery in deliveries:
            if delivery.message_id in seen:
                inbox_redeliveries_ignored.labels(consumer=self.consumer).inc()
                continue
            seen[delivery.message_id] = delivery
        return list(seen.values())

    def _apply(self, deliveries: list[Delivery]) -> dict[Delivery, Exception]:
        deferred = self.apply_batch(deliveries) or {}
        by_id = {delivery.message_id: delivery for delivery in deliveries}
        return {by_id[message_id]: error for message_id, error in deferred.items()}

    def _hand_on(self, delivery: Delivery, error: Exception) -> None:
        retries_left = self.max_retries is None or delivery.attempt < self.max_retries
        if isinstance(error, self.retry_on) and retries_left:
            countdown = min(settings.STATELAB_TASK_MAX_COUNTDOWN_S, 2**delivery.attempt)
            self.apply_async(
                kwargs={ENVELOPE_KEY: [delivery.wire(attempt=delivery.attempt + 1)]},
                countdown=random.uniform(countdown / 2, countdown),  # noqa: S311 - jitter
            )
            messages_retried.labels(consumer=self.consumer).inc()
            logger.info("%s: %s retried later (%r)", self.consumer, delivery.message_id, error)
            return
        self._park(delivery, error)

    def _park(self, delivery: Delivery, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"[:500]
        if self.parked_model is not None:
            self.parked_model._default_manager.using(self.using).create(
                message_id=delivery.message_id[:100],
                consumer=self.consumer,
                task=self.name,
                payload=dict(delivery.payload),
                reason=reason,
                attempts=delivery.attempt + 1,
            )
        messages_parked.labels(consumer=self.consumer).inc()
        logger.error("%s: message %s parked: %s", self.consumer, delivery.message_id, reason)


def _envelope_apply(self: BatchConsumer, messages: list[dict] | None = None, **single: Any) -> None:
    """The task's body when called directly or run from a single broker message: the
    envelope's messages (an old-style message of one, its fields as keyword arguments, too)."""
    self.consume(messages if messages is not None else [single])


class ConsumerSide(TypedDict):
    """The arguments of ``batch_consumer`` shared by every consumer of one service."""

    using: str
    parked_model: type[ParkedMessage]


def batch_consumer(
    *,
    name: str,
    consumer: str,
    using: str,
    parked_model: type[ParkedMessage],
    retry_on: tuple[type[BaseException], ...] = (),
    max_retries: int | None = 12,
) -> Callable[[Callable[[list[Delivery]], Deferred | None]], BatchConsumer]:
    """Declare the batching consumer task ``name``: the decorated function applies a batch
    of deliveries in one transaction on ``using`` and returns what it deferred (or None).
    Failures of ``retry_on`` (and transient database errors) are retried, the rest parked in
    ``parked_model``."""
    from core.outbox import TRANSIENT_ERRORS

    def register(apply: Callable[[list[Delivery]], Deferred | None]) -> BatchConsumer:
        return shared_task(
            base=BatchConsumer,
            name=name,
            bind=True,
            consumer=consumer,
            using=using,
            parked_model=parked_model,
            retry_on=(*TRANSIENT_ERRORS, *retry_on),
            max_retries=max_retries,
            apply_batch=staticmethod(apply),
        )(_envelope_apply)

    return register


CRASH_BEFORE_ACK = "consumer_batch_before_ack"


def _batch_run(task_name: str, items: list[dict]) -> str:
    """In a pool process: apply one batch; tell the worker to acknowledge its messages or to
    put them back (when a failure could not be handed on). Never raises: with the solo pool an
    exception here would reach the worker's event loop.

    The batch is no Celery task run, so Celery's current task is not it: its log lines name
    their task and the batch's id through the log pipeline's context (``core.logs``)."""
    task = current_app.tasks[task_name]
    batch_id = str(uuid.uuid4())
    signals.task_prerun.send(sender=task, task_id=batch_id, task=task, args=(), kwargs={})
    answer = _ACK
    try:
        with structlog.contextvars.bound_contextvars(task=task_name, task_id=batch_id):
            task.consume(items)
        crash_point(CRASH_BEFORE_ACK)
    except Exception:
        logger.exception("%s: a batch could not be handed on; its messages come back", task_name)
        answer = _REQUEUE
    finally:
        signals.task_postrun.send(
            sender=task, task_id=batch_id, task=task, args=(), kwargs={}, retval=None, state=answer
        )
    return answer


@dataclass
class _Envelope:
    items: list[dict]
    ack: Callable[..., Any]
    reject: Callable[..., Any]


class BatchStrategy:
    """The worker side of one batching consumer (its Celery "strategy"): gathers envelopes,
    hands batches to the pool, acknowledges or requeues them when the pool answers. Runs in
    the worker's event loop, one thread: no locks."""

    # Batches handed to the pool and not answered yet, over every batching consumer of this
    # worker process (they share its pool).
    in_flight = 0
    # By task name: the worker makes its strategies anew when it reconnects to the broker.
    strategies: dict[str, BatchStrategy] = {}

    def __init__(self, task: BatchConsumer, consumer) -> None:
        self.task = task
        self.pool = consumer.pool
        self.timer = consumer.timer
        self.consumer = consumer
        self.connection_errors = consumer.connection_errors
        self.buffer: list[_Envelope] = []
        self.buffered = 0
        self.window_entry = None
        self.batch_max = settings.CONSUMER_BATCH_MAX
        self.window_s = settings.CONSUMER_BATCH_WINDOW_S
        BatchStrategy.strategies[task.name] = self

    def __call__(self, message, body, ack, reject, callbacks, **_kwargs) -> None:
        kwargs = self._kwargs(message, body)
        items = kwargs.get(ENVELOPE_KEY, [kwargs])
        envelope = _Envelope(items=items, ack=ack, reject=reject)
        eta = message.headers.get("eta")
        if eta:
            # A retry's delayed copy: held (as the default strategy holds one) until it is due.
            self.consumer.qos.increment_eventually()
            delay_s = datetime.fromisoformat(eta).timestamp() - time.time()
            self.timer.call_after(max(0.0, delay_s), self._due, (envelope,))
            return
        self._add(envelope)

    @staticmethod
    def _kwargs(message, body) -> dict:
        if body is None:
            body = message.decode()
        if isinstance(body, dict):  # protocol 1
            return body.get("kwargs") or {}
        _args, kwargs, _embed = body
        return kwargs or {}

    def _due(self, envelope: _Envelope) -> None:
        self.consumer.qos.decrement_eventually()
        self._add(envelope)

    def _add(self, envelope: _Envelope) -> None:
        self.buffer.append(envelope)
        self.buffered += len(envelope.items)
        if self.buffered >= self.batch_max:
            self.flush()
        elif self.window_entry is None:
            self.window_entry = self.timer.call_after(self.window_s, self._window_over)

    def _window_over(self) -> None:
        self.window_entry = None
        if self.buffer and BatchStrategy.in_flight < self._slots():
            self.flush()

    def _slots(self) -> int:
        return max(1, getattr(self.pool, "num_processes", 1) or 1)

    def flush(self) -> None:
        if self.window_entry is not None:
            self.window_entry.cancel()
            self.window_entry = None
        batch, self.buffer, self.buffered = self.buffer, [], 0
        if not batch:
            return
        BatchStrategy.in_flight += 1
        items = [item for envelope in batch for item in envelope.items]
        self.pool.apply_async(
            _batch_run,
            args=(self.task.name, items),
            callback=partial(self._answered, batch),
            error_callback=partial(self._lost, batch),
            timeout=self.task.time_limit or current_app.conf.task_time_limit,
            soft_timeout=self.task.soft_time_limit or current_app.conf.task_soft_time_limit,
        )

    def _answered(self, batch: list[_Envelope], answer: str) -> None:
        BatchStrategy.in_flight -= 1
        for envelope in batch:
            if answer == _ACK:
                envelope.ack(logger, self.connection_errors)
            else:
                envelope.reject(logger, self.connection_errors, True)
        self._flush_waiting()

    def _lost(self, batch: list[_Envelope], _exc_info: Any) -> None:
        """The pool process died with the batch, or it overran its time limit: nothing of the
        batch committed after its last commit, so every message comes back (the inbox drops
        those already applied)."""
        BatchStrategy.in_flight -= 1
        logger.error(
            "%s: a batch of %d messages was lost with its process; requeued",
            self.task.name,
            sum(len(envelope.items) for envelope in batch),
        )
        for envelope in batch:
            envelope.reject(logger, self.connection_errors, True)
        self._flush_waiting()

    @classmethod
    def _flush_waiting(cls) -> None:
        """A pool process is free: hand over the buffers that waited for one, fullest first."""
        waiting = sorted(
            (strategy for strategy in cls.strategies.values() if strategy.buffer),
            key=lambda strategy: -strategy.buffered,
        )
        for strategy in waiting:
            if cls.in_flight >= strategy._slots():
                break
            strategy.flush()
