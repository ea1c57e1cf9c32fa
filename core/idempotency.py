"""``Idempotency-Key`` handling as in the IETF draft (draft-ietf-httpapi-idempotency-key-header).

- no key: 400 ``idempotency_key_missing``; a malformed key: 400 ``idempotency_key_invalid``;
- the same key and the same request again: the stored response, with ``Idempotent-Replayed: true``;
- the same key with another request body: 422 ``idempotency_key_reused``;
- the same key while the first request is still running: 409 ``idempotency_key_in_progress``.

Keys are scoped per user and kept for ``IDEMPOTENCY_KEY_TTL_S`` (at least 24 h).

How "at most once" is kept: the key row lives in the database of the effect, and one
transaction holds everything: a transaction-scoped advisory lock on the key, the key row, the
effect and the stored response. So the key, the effect and the response commit together or not
at all; a concurrent request with the same key fails to take the lock and gets 409 while the
first runs (however long it stalls), and the stored response once it has committed; a request
that dies (its connection lost, its process killed) rolls back with its lock released, leaving
the key free and nothing done. No time window, no clock compared across hosts.

Chosen over a claim committed in its own transaction (what this module did before): a claim
that outlives its request needs a staleness rule to be taken over, and any such rule lets a
stalled first request and its retry both commit (issue 13 item 1). A fenced completion (a
claim with a token checked at commit) would also be safe, but needs a second round of commits
per request and still leaves abandoned claims to clean; an advisory lock costs one statement.

The transaction's lock waits and statements are bounded (``IDEMPOTENCY_LOCK_TIMEOUT_S``,
``IDEMPOTENCY_STATEMENT_TIMEOUT_S``): past them the request answers 503 ``database_timeout``,
having done nothing, and may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, OperationalError, connections, models, transaction
from django.utils import timezone
from rest_framework import status

from core.errors import DomainError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyMissing(DomainError):
    code = "idempotency_key_missing"
    title = "Idempotency-Key header is required"


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    title = "Idempotency-Key header is malformed"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = status.HTTP_422_UNPROCESSABLE_ENTITY
    title = "Idempotency-Key was already used for another request"


class IdempotencyKeyInProgress(DomainError):
    code = "idempotency_key_in_progress"
    status = status.HTTP_409_CONFLICT
    title = "A request with this Idempotency-Key is still being processed"


class DatabaseTimeout(DomainError):
    code = "database_timeout"
    status = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "The database did not answer in time"


class IdempotencyKey(models.Model):
    """One key of one user: the request's fingerprint and, once done, its response."""

    user_id = models.BigIntegerField()
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key"], name="%(app_label)s_idem_user_key")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


@dataclass(frozen=True)
class IdempotentResponse:
    status: int
    body: Any
    replayed: bool

    @property
    def headers(self) -> dict[str, str]:
        return {REPLAYED_HEADER: "true"} if self.replayed else {}


def idempotency_key_parse(value: str | None) -> str:
    if value is None:
        raise IdempotencyKeyMissing(f"send a unique {HEADER} header with every POST")
    key = value.strip().strip('"')
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyKeyInvalid(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters")
    return key


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps(
        {"method": method, "path": path, "body": body}, sort_keys=True, cls=DjangoJSONEncoder
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent_call(
    *,
    model: type[IdempotencyKey],
    using: str,
    user_id: int,
    key: str,
    fingerprint: str,
    call: Callable[[], tuple[int, Any]],
) -> IdempotentResponse:
    """Run ``call`` at most once per (user, key), in one transaction on ``using`` with the key
    (see the module's docstring). A domain error raised by ``call`` rolls everything back,
    so the key is free again."""
    manager = model.objects.using(using)
    try:
        with transaction.atomic(using=using):
            _waits_bound(using)
            if not _key_lock_try(using, model=model, user_id=user_id, key=key):
                raise IdempotencyKeyInProgress("retry once the first request has finished")
            existing = manager.filter(user_id=user_id, key=key).first()
            if existing is not None and existing.expires_at > timezone.now():
                return _stored(existing, fingerprint=fingerprint)
            row = _key_row_claim(
                manager, existing, user_id=user_id, key=key, fingerprint=fingerprint
            )
            status_code, body = call()
            stored = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
            manager.filter(pk=row.pk).update(
                response_status=status_code, response_body=stored, completed_at=timezone.now()
            )
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) in _TIMEOUT_SQLSTATES:
            raise DatabaseTimeout(
                "the request waited too long for the database and did nothing; retry with the "
                f"same {HEADER}"
            ) from error
        raise
    return IdempotentResponse(status=status_code, body=stored, replayed=False)


# lock_not_available (lock_timeout), query_canceled (statement_timeout)
_TIMEOUT_SQLSTATES = {"55P03", "57014"}


def _waits_bound(using: str) -> None:
    """Bound this transaction's lock waits and statements: a request never stalls for good."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true), "
            "set_config('statement_timeout', %s, true)",
            [
                f"{round(settings.IDEMPOTENCY_LOCK_TIMEOUT_S * 1000)}ms",
                f"{round(settings.IDEMPOTENCY_STATEMENT_TIMEOUT_S * 1000)}ms",
            ],
        )


def _key_lock_try(using: str, *, model: type[IdempotencyKey], user_id: int, key: str) -> bool:
    """Take the key's transaction-scoped advisory lock, without waiting. Its 64-bit id is a
    hash of the table, user and key: a collision can only answer 409 to an unrelated request
    running at the same instant, never run an effect twice."""
    digest = hashlib.sha256(f"{model._meta.db_table}\0{user_id}\0{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        return cursor.fetchone()[0]


def _stored(existing: IdempotencyKey, *, fingerprint: str) -> IdempotentResponse:
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"this {HEADER} was used with a different request; use a new key"
        )
    if existing.completed_at is None:
        # Written by a request of the earlier two-transaction scheme, which may still be
        # running: kept as in progress until it expires rather than risk a second effect.
        raise IdempotencyKeyInProgress("retry once the first request has finished")
    return IdempotentResponse(
        status=existing.response_status, body=existing.response_body, replayed=True
    )


def _key_row_claim(manager, existing, *, user_id: int, key: str, fingerprint: str):
    """The key's row in the caller's transaction: a new one, or the expired one reused. The
    unique (user, key) constraint backs the lock up: a duplicate insert is a 409."""
    now = timezone.now()
    values = {
        "fingerprint": fingerprint,
        "response_status": None,
        "response_body": None,
        "completed_at": None,
        "created_at": now,
        "expires_at": now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S),
    }
    if existing is not None:
        for name, value in values.items():
            setattr(existing, name, value)
        existing.save(using=manager.db)
        return existing
    try:
        with transaction.atomic(using=manager.db):
            return manager.create(user_id=user_id, key=key, **values)
    except IntegrityError:
        raise IdempotencyKeyInProgress("retry once the first request has finished") from None


def idempotency_keys_purge(*, model: type[IdempotencyKey], using: str) -> int:
    """Delete expired keys (kept at least ``IDEMPOTENCY_KEY_TTL_S``)."""
    deleted, _ = model.objects.using(using).filter(expires_at__lte=timezone.now()).delete()
    return deleted
