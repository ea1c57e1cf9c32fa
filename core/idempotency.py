"""``Idempotency-Key`` handling as in the IETF draft (draft-ietf-httpapi-idempotency-key-header).

- no key: 400 ``idempotency_key_missing``; a malformed key: 400 ``idempotency_key_invalid``;
- the same key and the same request again: the stored response, with ``Idempotent-Replayed: true``;
- the same key with another request body: 422 ``idempotency_key_reused``;
- the same key while the first request is still running: 409 ``idempotency_key_in_progress``.

Keys are scoped per user and kept for ``IDEMPOTENCY_KEY_TTL_S`` (at least 24 h). The key row
lives in the database of the effect, so the effect and the stored response commit together:
either both exist, or neither (and the key is free again).
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
from django.db import IntegrityError, models, transaction
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
    """Run ``call`` once per (user, key): claim the key (its own short transaction, so that a
    concurrent duplicate sees it and gets 409), then run ``call`` and store its response in one
    transaction. A domain error releases the key."""
    now = timezone.now()
    manager = model.objects.using(using)
    try:
        with transaction.atomic(using=using):
            claimed = manager.create(
                user_id=user_id,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S),
            )
    except IntegrityError:
        claimed = _existing_or_takeover(manager, user_id=user_id, key=key, fingerprint=fingerprint)
        if isinstance(claimed, IdempotentResponse):
            return claimed

    try:
        with transaction.atomic(using=using):
            status_code, body = call()
            stored = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
            manager.filter(pk=claimed.pk).update(
                response_status=status_code, response_body=stored, completed_at=timezone.now()
            )
    except BaseException:
        manager.filter(pk=claimed.pk, completed_at__isnull=True).delete()
        raise
    return IdempotentResponse(status=status_code, body=stored, replayed=False)


def _existing_or_takeover(manager, *, user_id: int, key: str, fingerprint: str):
    now = timezone.now()
    with transaction.atomic(using=manager.db):
        existing = manager.select_for_update().filter(user_id=user_id, key=key).first()
        if existing is None:
            raise IdempotencyKeyInProgress("the key was released just now; retry")
        if existing.expires_at <= now:
            existing.fingerprint = fingerprint
            existing.response_status = existing.response_body = existing.completed_at = None
            existing.created_at = now
            existing.expires_at = now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S)
            existing.save()
            return existing
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"this {HEADER} was used with a different request; use a new key"
            )
        if existing.completed_at is not None:
            return IdempotentResponse(
                status=existing.response_status, body=existing.response_body, replayed=True
            )
        # A request whose key is "in progress" for longer than this died between its two
        # transactions; the key may then be taken over.
        if (now - existing.created_at).total_seconds() > settings.IDEMPOTENCY_STALE_IN_PROGRESS_S:
            existing.created_at = now
            existing.save(update_fields=["created_at"])
            return existing
        raise IdempotencyKeyInProgress("retry once the first request has finished")


def idempotency_keys_purge(*, model: type[IdempotencyKey], using: str) -> int:
    """Delete expired keys (kept at least ``IDEMPOTENCY_KEY_TTL_S``)."""
    deleted, _ = model.objects.using(using).filter(expires_at__lte=timezone.now()).delete()
    return deleted
