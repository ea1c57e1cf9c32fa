"""The request id: one id per request, on every log line the request causes, in every Celery
task it publishes and in every outbox row it writes, so that the saga's later steps (published
by the relay or the sweep long after the request) carry it too. One grep follows a transfer.

- The web tier takes the caller's ``X-Request-ID`` when it is a plain token (letters, digits,
  ``._:-``, at most ``MAX_LENGTH`` characters), else makes one; it is never logged raw.
- A task published while an id is current carries it in the message header ``TASK_HEADER``; the
  worker makes it current around the task (a task published by no request, such as the beat's,
  gets an id of its own).
- An outbox row records the id current when it was written (``OutboxMessage.request_id``) and is
  published under that id, whoever publishes it.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import uuid
from collections.abc import Iterator
from typing import Any

HEADER = "X-Request-ID"
TASK_HEADER = "statelab_request_id"
MAX_LENGTH = 64
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")

# The field of a batched message (``core.consumers``' envelope items) that carries its id.
MESSAGE_KEY = "request_id"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "statelab_request_id", default=None
)


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_parse(raw: object) -> str | None:
    """``raw`` when it is an acceptable id, else None (the caller then makes a new one)."""
    if not isinstance(raw, str) or not 0 < len(raw) <= MAX_LENGTH:
        return None
    return raw if _TOKEN.fullmatch(raw) else None


def request_id_current() -> str | None:
    return _current.get()


def request_id_or_blank() -> str:
    """The current id or "" (the default of model fields that record it)."""
    return _current.get() or ""


def request_id_enter(value: str | None) -> contextvars.Token:
    """Make ``value`` current until ``request_id_exit`` (for hooks that open and close around
    code they do not wrap: middleware, Celery's task signals)."""
    return _current.set(value)


def request_id_exit(token: contextvars.Token) -> None:
    _current.reset(token)


@contextlib.contextmanager
def request_id_bound(value: str | None) -> Iterator[None]:
    """Run a block under ``value``; a blank or invalid value leaves the current id in force."""
    parsed = request_id_parse(value)
    if parsed is None:
        yield
        return
    token = _current.set(parsed)
    try:
        yield
    finally:
        _current.reset(token)


# --- Celery: the id travels in a message header ------------------------------------------------

_task_tokens: dict[str, contextvars.Token] = {}


def _on_publish(headers: dict | None = None, **_kwargs: Any) -> None:
    request_id = _current.get()
    if headers is not None and request_id is not None:
        headers[TASK_HEADER] = request_id


def _on_prerun(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    if task_id is None:
        return
    carried = getattr(task.request, TASK_HEADER, None) if task is not None else None
    _task_tokens[task_id] = _current.set(request_id_parse(carried) or request_id_new())


def _on_postrun(task_id: str | None = None, **_kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        _current.reset(token)


def task_signals_connect() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(_on_publish, weak=False, dispatch_uid="core.request_id.publish")
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="core.request_id.prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="core.request_id.postrun")
