"""Talking to storage nodes: a small connection pool per node, every call bounded by a deadline.

A node may be slow (its route delays every packet), stopped (connections are refused or reset
at once) or frozen (SIGSTOP: the kernel still accepts connections, nothing ever answers). The
last case is why a server-side ``statement_timeout`` is not enough and libpq's own timeouts do
not help once a query is sent: a frozen server never sends anything back. So every call runs
in a worker thread of this module's pool and is registered with a *reaper*: when the call's
deadline passes, the reaper shuts the connection's socket down (``shutdown(2)`` wakes the
thread blocked on it, which gets a closed connection and throws it away). Connecting is bounded
by libpq's ``connect_timeout`` (2 s at least: libpq's floor).

Per process: the pools, the executor and the reaper are rebuilt after a fork (gunicorn and
Celery fork after importing), and ``NodeHealth`` remembers, per node, when it last failed (a
node that failed within ``suspect_s`` is *suspected*: a sloppy write sends its replica to a
fallback at once, a read asks it last) and an exponentially weighted average of its answer
times (the coordinator lets the fastest healthy replica issue a write's dot).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from quorum.conf import NodeAddress, conf

logger = logging.getLogger(__name__)

T = TypeVar("T")
EXECUTOR_THREADS = 64
REAPER_TICK_S = 0.01
EWMA_WEIGHT = 0.3


class NodeCallFailed(Exception):
    """A call to a node did not answer: ``reason`` is refused (stopped, or its route cut),
    timeout (slow or frozen past the deadline), or error (the node answered with an error)."""

    def __init__(self, node: str, reason: str, detail: str) -> None:
        super().__init__(f"{node}: {reason}: {detail}")
        self.node = node
        self.reason = reason
        self.detail = detail


@dataclass(eq=False)
class _Call:
    deadline: float
    connection: psycopg.Connection | None = None
    finished: bool = False
    aborted: bool = False

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def attach(self, connection: psycopg.Connection) -> None:
        with self.lock:
            self.connection = connection

    def finish(self) -> None:
        with self.lock:
            self.finished = True
            self.connection = None

    def abort(self) -> None:
        """Shut the socket down under the call's lock, so a connection already handed back to
        the pool (and maybe to another call) is never touched."""
        with self.lock:
            if self.finished or self.connection is None:
                return
            self.aborted = True
            with suppress(OSError, psycopg.Error):
                duplicate = socket.socket(fileno=os.dup(self.connection.fileno()))
                try:
                    duplicate.shutdown(socket.SHUT_RDWR)
                finally:
                    duplicate.close()


class _Reaper:
    """One thread per process that aborts the calls whose deadline passed."""

    def __init__(self) -> None:
        self._calls: set[_Call] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="quorum-reaper", daemon=True)
        self._thread.start()

    def watch(self, call: _Call) -> None:
        with self._lock:
            self._calls.add(call)

    def forget(self, call: _Call) -> None:
        with self._lock:
            self._calls.discard(call)

    def _run(self) -> None:
        while True:
            time.sleep(REAPER_TICK_S)
            now = time.monotonic()
            with self._lock:
                expired = [call for call in self._calls if call.deadline <= now]
            for call in expired:
                call.abort()


class _Pool:
    """At most ``size`` connections to one node; idle ones are reused (last in, first out)."""

    def __init__(self, address: NodeAddress, size: int, connect_timeout_s: int) -> None:
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    def acquire(self, timeout_s: float) -> psycopg.Connection:
        if not self._slots.acquire(timeout=max(0.0, timeout_s)):
            raise NodeCallFailed(self.address.name, "timeout", "no free connection in time")
        try:
            connection = self._idle_alive()
            if connection is None:
                connection = psycopg.connect(
                    **self.address.conninfo(),
                    autocommit=True,
                    connect_timeout=self.connect_timeout_s,
                    application_name="statelab-quorum",
                )
            return connection
        except BaseException:
            self._slots.release()
            raise

    def _idle_alive(self) -> psycopg.Connection | None:
        """An idle connection the server has not closed meanwhile: an idle connection whose
        socket is readable was ended by the other side (a node restarted, a route cut); it is
        dropped here rather than failing the next call."""
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return None
            try:
                readable, _, _ = select.select([connection.fileno()], [], [], 0)
            except (OSError, ValueError, psycopg.Error):
                readable = [True]
            if not readable:
                return connection
            with suppress(psycopg.Error, OSError):
                connection.close()

    def release(self, connection: psycopg.Connection, *, reusable: bool) -> None:
        try:
            if reusable and not connection.closed and not connection.broken:
                with self._lock:
                    self._idle.append(connection)
            else:
                with suppress(psycopg.Error, OSError):
                    connection.close()
        finally:
            self._slots.release()

    def close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            with suppress(psycopg.Error, OSError):
                connection.close()


class NodeHealth:
    """This process's view of each node: last failure, and a moving average of answer times."""

    def __init__(self) -> None:
        self._failed_at: dict[str, float] = {}
        self._latency: dict[str, float] = {}
        self._lock = threading.Lock()

    def succeeded(self, node: str, seconds: float) -> None:
        with self._lock:
            self._failed_at.pop(node, None)
            previous = self._latency.get(node)
            self._latency[node] = (
                seconds if previous is None else previous + EWMA_WEIGHT * (seconds - previous)
            )

    def failed(self, node: str) -> None:
        """Suspect the node for ``suspect_s``, and count the failure as an answer as slow as
        the node timeout, so that it is the last choice to coordinate for a while after."""
        penalty = conf().node_timeout_s
        with self._lock:
            self._failed_at[node] = time.monotonic()
            self._latency[node] = max(self._latency.get(node, 0.0), penalty)

    def forget_node(self, node: str) -> None:
        with self._lock:
            self._failed_at.pop(node, None)
            self._latency.pop(node, None)

    def suspected(self, node: str) -> bool:
        with self._lock:
            failed_at = self._failed_at.get(node)
        return failed_at is not None and time.monotonic() - failed_at < conf().suspect_s

    def latency(self, node: str) -> float:
        """Average answer time in seconds (0 for a node not heard from yet)."""
        with self._lock:
            return self._latency.get(node, 0.0)

    def forget(self) -> None:
        with self._lock:
            self._failed_at.clear()
            self._latency.clear()


class _ProcessState:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.executor = ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="quorum")
        self.reaper = _Reaper()
        self.pools: dict[NodeAddress, _Pool] = {}
        self.health = NodeHealth()
        self.lock = threading.Lock()


_state: _ProcessState | None = None
_state_lock = threading.Lock()


def _process_state() -> _ProcessState:
    global _state  # noqa: PLW0603 - per-process singletons, rebuilt after a fork
    state = _state
    if state is None or state.pid != os.getpid():
        with _state_lock:
            if _state is None or _state.pid != os.getpid():
                _state = _ProcessState()
            state = _state
    return state


def health() -> NodeHealth:
    return _process_state().health


def _pool(address: NodeAddress) -> _Pool:
    state = _process_state()
    with state.lock:
        pool = state.pools.get(address)
        if pool is None:
            settings = conf()
            pool = _Pool(address, settings.pool_size, settings.connect_timeout_s)
            state.pools[address] = pool
        return pool


def _classify(error: Exception, call: _Call) -> str:
    if call.aborted or isinstance(error, psycopg.errors.ConnectionTimeout):
        return "timeout"
    if isinstance(error, psycopg.errors.QueryCanceled):
        return "timeout"
    if isinstance(error, psycopg.OperationalError):
        return "refused"
    return "error"


def _with_schema(connection: psycopg.Connection, operation: Callable[[psycopg.Connection], T]) -> T:
    """Run `operation`; on a node that lacks the schema (started after ``quorum_setup``, or
    emptied), create it and run the operation once more."""
    try:
        return operation(connection)
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction):
        from quorum.storage import schema_create

        logger.warning("quorum node without schema: creating it")
        schema_create(connection)
        return operation(connection)


def node_call(
    address: NodeAddress,
    operation: Callable[[psycopg.Connection], T],
    *,
    timeout_s: float,
) -> T:
    """Run `operation` on a pooled connection to the node, in the calling thread, aborted at
    the deadline. Raises NodeCallFailed; records the outcome in this process's NodeHealth."""
    state = _process_state()
    started = time.monotonic()
    call = _Call(deadline=started + timeout_s)
    pool = _pool(address)
    state.reaper.watch(call)
    connection = None
    reusable = False
    try:
        connection = pool.acquire(timeout_s)
        if time.monotonic() >= call.deadline:
            # A connection that took the whole deadline to open (many round trips on a slow
            # route) is healthy: it goes to the pool for the next call.
            reusable = True
            raise NodeCallFailed(address.name, "timeout", "connecting took the whole deadline")
        call.attach(connection)
        result = _with_schema(connection, operation)
        reusable = True
    except NodeCallFailed:
        state.health.failed(address.name)
        raise
    except (psycopg.Error, OSError) as error:
        reason = _classify(error, call)
        if reason != "error":
            state.health.failed(address.name)
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise NodeCallFailed(address.name, reason, detail) from None
    finally:
        call.finish()
        state.reaper.forget(call)
        if connection is not None:
            pool.release(connection, reusable=reusable and not call.aborted)
    state.health.succeeded(address.name, time.monotonic() - started)
    return result


def node_submit(
    address: NodeAddress,
    operation: Callable[[psycopg.Connection], T],
    *,
    timeout_s: float,
) -> Future[T]:
    """``node_call`` in this process's executor: the future fails with NodeCallFailed."""
    return _process_state().executor.submit(node_call, address, operation, timeout_s=timeout_s)


def submit(function: Callable[..., T], *args, **kwargs) -> Future[T]:
    """Any function in this process's executor (a replica's write with its fallback, ...)."""
    return _process_state().executor.submit(function, *args, **kwargs)


def pool_warm(address: NodeAddress, count: int, *, timeout_s: float = 10.0) -> int:
    """Open up to `count` connections to the node now and keep them in the pool (a coordinator
    keeps its connections: on a slow route, opening one costs several round trips)."""
    pool = _pool(address)
    opened = []
    try:
        for _ in range(count):
            opened.append(pool.acquire(timeout_s))
    except (NodeCallFailed, psycopg.Error, OSError):
        pass
    for connection in opened:
        pool.release(connection, reusable=True)
    return len(opened)


def pools_close() -> None:
    """Close every idle connection of this process (tests, after dropping a database)."""
    state = _process_state()
    with state.lock:
        pools = list(state.pools.values())
        state.pools.clear()
    for pool in pools:
        pool.close_idle()
    state.health.forget()
