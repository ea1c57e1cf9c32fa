"""The consistency context of one request (or task), in a context variable.

Threads, asyncio tasks and sync views under ASGI each see their own; ``sync_to_async`` copies
it, so a view running in a thread changes the same context object its middleware opened.

- ``strong``: every routed read goes to the primary.
- ``session`` (default): read-your-writes and monotonic reads, from the session's positions
  (``consistency.state.SessionState``) kept in its store (``consistency.store``).
- ``eventual``: any replica in rotation, stale on purpose.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import DatabaseError, transaction

from consistency.faults import POSITION_SAVE_FAILURE_SWITCH
from consistency.levels import LEVELS, PRIMARY, SESSION, requested_level
from consistency.metrics import position_saves_failed_total
from consistency.replicas import WalPosition, write_position
from consistency.state import SessionState
from consistency.store import PositionStore, store_for_request
from core.faults import fault_roll

logger = logging.getLogger(__name__)


class PositionSaveFailed(DatabaseError):
    """A write's WAL position was not saved (raised by the fault switch, as a real failure)."""


@dataclass
class ConsistencyContext:
    """One request's (or task's) consistency level, session state, what served its routed
    read, and the response headers contributed while it ran."""

    level: str = SESSION
    store: PositionStore | None = None
    state: SessionState | None = None
    state_loaded: bool = False
    served_by: str | None = None
    last_reason: str = ""
    unread_state: SessionState | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def session_state(self) -> SessionState | None:
        """The session's state, loaded on first use; None when its store is unavailable."""
        if self.store is not None and not self.state_loaded:
            self.state = self.store.load()
            self.state_loaded = True
        return self.state

    def note_write(self, key: str, version: int) -> None:
        """Record this session's write of ``key``, which made ``version``. Call it inside the
        write's transaction on the primary.

        The version floor is saved in that transaction: it commits with the write or not at
        all, so no write is acknowledged without it (an error here fails the write). The WAL
        position is saved right after the commit; if that save fails, the floor still keeps
        read-your-writes (a cached or replica answer older than the floor is not served: it
        is read again on the primary), only routing loses its precision for this write.
        If the stored positions cannot be read, the write's own are still saved, while reads
        in this request keep treating the state as unavailable (primary only)."""
        state = self.session_state()
        if state is None:
            state = self.unread_state = self.unread_state or SessionState()
        state.raise_seen(key, version)
        if self.store is not None:
            self.store.save_seen(key, version)
            state.raised_seen.discard(key)
        transaction.on_commit(partial(self._write_position_save, key, state), using=PRIMARY)

    def _write_position_save(self, key: str, state: SessionState) -> None:
        try:
            if fault_roll(POSITION_SAVE_FAILURE_SWITCH):
                raise PositionSaveFailed("fault switch " + POSITION_SAVE_FAILURE_SWITCH)
            store = self.store
            position = write_position() if store is None else store.save_write_position(key)
        except DatabaseError as error:
            position_saves_failed_total.inc()
            logger.warning("write position of %s not saved (its version floor is): %s", key, error)
            return
        state.raise_write(key, position)
        if self.store is not None:
            state.raised_writes.discard(key)

    def note_seen(self, key: str, version: int) -> None:
        state = self.session_state()
        if state is not None:
            state.raise_seen(key, version)

    def forget_caught_up(self, key: str, held_by_all: WalPosition) -> None:
        """Stickiness ends when every replica holds the write."""
        if self.state is not None:
            self.state.forget_write(key, held_by_all)

    def flush(self) -> None:
        """Save what this request's reads raised (versions seen) or forgot. Best effort: a
        failure is logged and counted, the answer is already made."""
        if self.store is None:
            return
        for state in (self.state, self.unread_state):
            if state is not None and state.has_changes():
                try:
                    self.store.save(state)
                except DatabaseError as error:
                    position_saves_failed_total.inc()
                    logger.warning("positions of a session not saved: %s", error)
                state.changes_saved()


_context: contextvars.ContextVar[ConsistencyContext | None] = contextvars.ContextVar(
    "statelab_consistency", default=None
)
_pinned: contextvars.ContextVar[int] = contextvars.ContextVar("statelab_pinned", default=0)


def consistency_current() -> ConsistencyContext | None:
    return _context.get()


@contextlib.contextmanager
def consistency_context(
    level: str = SESSION, *, store: PositionStore | None = None, state: SessionState | None = None
) -> Iterator[ConsistencyContext]:
    """Run a block (a request, a task, a test) under one consistency context."""
    if level not in LEVELS:
        raise ValueError(f"unknown consistency level {level!r}")
    context = ConsistencyContext(
        level=level, store=store, state=state, state_loaded=state is not None or store is None
    )
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def consistency_context_enter(context: ConsistencyContext) -> contextvars.Token:
    """Make ``context`` current until ``consistency_context_exit`` (for hooks that open and
    close around code they do not wrap, such as Celery's task signals)."""
    return _context.set(context)


def consistency_context_exit(token: contextvars.Token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def pin_to_primary() -> Iterator[None]:
    """Every routed read inside the block goes to the primary (nestable, per task/thread)."""
    token = _pinned.set(_pinned.get() + 1)
    try:
        yield
    finally:
        _pinned.reset(token)


def is_pinned() -> bool:
    return _pinned.get() > 0


def served_by_set(alias: str) -> None:
    """Report what served this request's routed read (``X-Served-By``, with the level)."""
    context = _context.get()
    if context is not None:
        context.served_by = alias


def response_header_set(name: str, value: str) -> None:
    """Contribute a header to the current request's response (set by the middleware after the
    view); outside a request, nothing. The hook through which other apps report what their
    read did (e.g. ``X-Cache``) without the middleware knowing them."""
    context = _context.get()
    if context is not None:
        context.response_headers[name] = value


def consistency_bind_request(request: Any) -> None:
    """Attach the caller's position store to the current context: its token's positions for
    token clients, its browser session's for session-authenticated callers."""
    context = _context.get()
    if context is None or context.store is not None:
        return
    store = store_for_request(request)
    if store is not None:
        context.store = store
        context.state_loaded = False


def consistency_honour_request(request: Any) -> None:
    """For code whose reads honour ``X-Consistency``: take the level the request asks for
    (``ConsistencyInvalid``, a 400, when it names none) and bind the caller's positions."""
    level = requested_level(request)
    context = _context.get()
    if context is None:
        return
    context.level = level
    consistency_bind_request(request)
