"""The session's positions travel with the tasks a request sends.

A task published during a request carries the session's level and positions in a message
header; the worker opens the same context around the task, so a task that reads what the
request wrote reads it from a replica that has it, or the primary. The receivers are
connected by ``ConsistencyConfig.ready``.
"""

from __future__ import annotations

import contextvars
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from consistency.context import (
    ConsistencyContext,
    consistency_context_enter,
    consistency_context_exit,
    consistency_current,
)
from consistency.levels import EVENTUAL, LEVELS, SESSION, STRONG
from consistency.state import SessionState

TASK_HEADER = "statelab_consistency"

_task_contexts: dict[str, contextvars.Token | None] = {}


def task_headers_add(headers: dict[str, Any]) -> None:
    """``before_task_publish``: add the current context's level and positions."""
    context = consistency_current()
    if context is None or context.level == EVENTUAL:
        return
    state = context.session_state()
    headers[TASK_HEADER] = {
        "level": context.level,
        "state": state.as_json() if state is not None else None,
    }


def task_context_enter(request: Any) -> contextvars.Token | None:
    """``task_prerun``: open the context a task's publisher sent (if any)."""
    carried = getattr(request, TASK_HEADER, None)
    if not isinstance(carried, dict):
        return None
    level = carried.get("level") if carried.get("level") in LEVELS else STRONG
    raw_state = carried.get("state")
    # A publisher whose positions were unreadable sends none: only the primary is safe then.
    if raw_state is None and level == SESSION:
        level = STRONG
    state = SessionState.from_json(raw_state)
    return consistency_context_enter(
        ConsistencyContext(level=level, state=state, state_loaded=True)
    )


def task_context_exit(token: contextvars.Token | None) -> None:
    if token is not None:
        consistency_context_exit(token)


def _on_publish(headers: dict | None = None, **kwargs: Any) -> None:
    if headers is not None:
        task_headers_add(headers)


def _on_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task is not None and task_id is not None:
        _task_contexts[task_id] = task_context_enter(task.request)


def _on_postrun(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id is not None:
        task_context_exit(_task_contexts.pop(task_id, None))


def task_signals_connect() -> None:
    before_task_publish.connect(_on_publish, weak=False, dispatch_uid="consistency.publish")
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="consistency.prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="consistency.postrun")
