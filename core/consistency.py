"""Per-request read consistency over streaming replicas (DESIGN section 4).

A request (or a Celery task) carries a ``ConsistencyContext`` in a context variable, so that
threads, asyncio tasks and sync views under ASGI each see their own:

- ``strong``: every routed read goes to the primary.
- ``session`` (default): read-your-writes and monotonic reads. The session keeps, per object it
  wrote, the WAL position of that write (``SessionState.writes``) and, per object it read, the
  highest version it saw (``SessionState.seen``). A read goes to a replica whose replayed LSN
  has reached the session's position for that object, else to the primary.
- ``eventual``: any replica in rotation, stale on purpose.

Replica positions come from ``ReplicaPool``: one probe (primary insert LSN + each replica's
replay LSN) per ``CONSISTENCY_POSITIONS_MAX_AGE_S`` per process at most, never a query per read,
and none while the last snapshot (at most ``CONSISTENCY_HEALTH_MAX_AGE_S`` old) already shows a
replica at the session's position. A cached replay LSN only ever under-states the replica's real
position, so a stale cache can send a read to the primary needlessly but never to a replica that
lacks the write. Replicas down, or staler than ``CONSISTENCY_MAX_STALENESS_S``, leave the
rotation until a probe finds them healthy again; a read that fails on a replica fails over to
the primary and takes the replica out at once.

Where the session's positions live: a browser session keeps them in its Django session; a
token client's are kept server-side in Redis under a hash of its token. The client never
sends a position, so it cannot forge one (it can only lose it by dropping its token).
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import hashlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

from core.errors import problem_response
from core.redis import guarded_redis_call, is_unavailable, redis_key
from core.replicas import parse_lsn, probe_replica

logger = logging.getLogger(__name__)

STRONG = "strong"
SESSION = "session"
EVENTUAL = "eventual"
LEVELS = (STRONG, SESSION, EVENTUAL)
PRIMARY = "default"
TASK_HEADER = "statelab_consistency"
SESSION_KEY = "statelab_consistency"
MAX_TRACKED_OBJECTS = 128


# --- Session state ---------------------------------------------------------------------------
@dataclass
class SessionState:
    """What one session wrote (object key -> WAL position of its last write) and saw (object
    key -> highest version read). Changes are also kept as deltas, so that a store shared by
    concurrent requests can merge them (positions only ever rise) instead of overwriting."""

    writes: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    raised_writes: set[str] = field(default_factory=set, compare=False)
    raised_seen: set[str] = field(default_factory=set, compare=False)
    forgotten: dict[str, int] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"w": self.writes, "s": self.seen}

    @classmethod
    def from_json(cls, data: Any) -> SessionState:
        if not isinstance(data, dict):
            return cls()
        writes = data.get("w") if isinstance(data.get("w"), dict) else {}
        seen = data.get("s") if isinstance(data.get("s"), dict) else {}
        return cls(
            writes={str(k): int(v) for k, v in writes.items()},
            seen={str(k): int(v) for k, v in seen.items()},
        )

    def required_lsn(self, key: str | None) -> int:
        if key is None:
            return max(self.writes.values(), default=0)
        return self.writes.get(key, 0)

    def version_floor(self, key: str) -> int:
        return self.seen.get(key, 0)

    def raise_write(self, key: str, lsn: int) -> bool:
        if _bounded_put(self.writes, key, lsn):
            self.raised_writes.add(key)
            self.forgotten.pop(key, None)
            return True
        return False

    def raise_seen(self, key: str, version: int) -> bool:
        if _bounded_put(self.seen, key, version):
            self.raised_seen.add(key)
            return True
        return False

    def forget_write(self, key: str, replayed_by_all: int) -> bool:
        if 0 < self.writes.get(key, 0) <= replayed_by_all:
            del self.writes[key]
            self.raised_writes.discard(key)
            self.forgotten[key] = replayed_by_all
            return True
        return False

    def has_changes(self) -> bool:
        return bool(self.raised_writes or self.raised_seen or self.forgotten)

    def changes_saved(self) -> None:
        self.raised_writes.clear()
        self.raised_seen.clear()
        self.forgotten.clear()


def _bounded_put(mapping: dict[str, int], key: str, value: int) -> bool:
    """Raise ``mapping[key]`` to ``value``; keep the newest ``MAX_TRACKED_OBJECTS`` keys."""
    if mapping.get(key, -1) >= value:
        return False
    mapping.pop(key, None)
    mapping[key] = value
    while len(mapping) > MAX_TRACKED_OBJECTS:
        mapping.pop(next(iter(mapping)))
    return True


class StateStore:
    """Where a session's positions live. ``through_breaker``: a write's own positions are
    read and saved even while this process's Redis circuit breaker is open (see
    ``core.redis.guarded_redis_call``)."""

    def load(self, *, through_breaker: bool = False) -> SessionState | None:
        raise NotImplementedError

    def save(self, state: SessionState, *, through_breaker: bool = False) -> None:
        raise NotImplementedError


class DjangoSessionStore(StateStore):
    """Browser sessions: the positions live in the (server-side) Django session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def load(self, *, through_breaker: bool = False) -> SessionState:
        return SessionState.from_json(self.session.get(SESSION_KEY))

    def save(self, state: SessionState, *, through_breaker: bool = False) -> None:
        self.session[SESSION_KEY] = state.as_json()


_LSN_WIDTH = 16  # fixed-width hex: Lua compares the strings in LSN order, without floats

# KEYS[1]: the hash. ARGV: ttl, max fields, then triples (kind, object key, value): kind "w"
# raises a write position, "s" a seen version, "f" forgets a write replayed everywhere.
_STATE_MERGE = """
for i = 3, #ARGV, 3 do
  local kind, field, value = ARGV[i], ARGV[i] .. ':' .. ARGV[i + 1], ARGV[i + 2]
  local current = redis.call('HGET', KEYS[1], kind == 'f' and 'w:' .. ARGV[i + 1] or field)
  if kind == 'w' then
    if not current or current < value then redis.call('HSET', KEYS[1], field, value) end
  elseif kind == 's' then
    if not current or tonumber(current) < tonumber(value) then
      redis.call('HSET', KEYS[1], field, value)
    end
  elseif current and current <= value then
    redis.call('HDEL', KEYS[1], 'w:' .. ARGV[i + 1])
  end
end
local excess = redis.call('HLEN', KEYS[1]) - tonumber(ARGV[2])
if excess > 0 then
  for _, name in ipairs(redis.call('HRANDFIELD', KEYS[1], excess)) do
    if string.sub(name, 1, 2) == 's:' then redis.call('HDEL', KEYS[1], name) end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


class TokenStore(StateStore):
    """Token clients: the positions live in Redis (a hash under a digest of the token).

    Concurrent requests of one token each save only what they changed, merged by a script in
    which positions and versions only rise, so a slow read cannot erase a write's position."""

    def __init__(self, token_key: str) -> None:
        digest = hashlib.sha256(token_key.encode()).hexdigest()[:40]
        self.key = redis_key("consistency", "token", "v2", digest)

    def load(self, *, through_breaker: bool = False) -> SessionState | None:
        return self.load_with(through_breaker=through_breaker)[0]

    def load_with(
        self, *commands: tuple, through_breaker: bool = False
    ) -> tuple[SessionState | None, list | None]:
        """Load the state and run ``commands`` in the same round trip (a pipeline)."""

        def run(client: redis.Redis) -> list:
            pipeline = client.pipeline(transaction=False)
            pipeline.hgetall(self.key)
            for command in commands:
                pipeline.execute_command(*command)
            return pipeline.execute()

        replies = guarded_redis_call("state_load", run, through_breaker=through_breaker)
        if is_unavailable(replies):
            return None, None
        fields, *extra = replies
        state = SessionState()
        for name, value in fields.items():
            kind, _, key = name.decode().partition(":")
            if kind == "w":
                state.writes[key] = int(value, 16)
            elif kind == "s":
                state.seen[key] = int(value)
        return state, extra

    def save(self, state: SessionState, *, through_breaker: bool = False) -> None:
        arguments: list[Any] = [settings.CONSISTENCY_TOKEN_STATE_TTL_S, 4 * MAX_TRACKED_OBJECTS]
        for key in state.raised_writes:
            arguments += ["w", key, f"{state.writes[key]:0{_LSN_WIDTH}x}"]
        for key in state.raised_seen:
            arguments += ["s", key, state.seen[key]]
        for key, replayed in state.forgotten.items():
            arguments += ["f", key, f"{replayed:0{_LSN_WIDTH}x}"]
        guarded_redis_call(
            "state_save",
            lambda client: client.eval(_STATE_MERGE, 1, self.key, *arguments),
            through_breaker=through_breaker,
        )


# --- Context ----------------------------------------------------------------------------------
@dataclass
class ConsistencyContext:
    """One request's (or task's) consistency level, session state and what served it."""

    level: str = SESSION
    store: StateStore | None = None
    state: SessionState | None = None
    state_loaded: bool = False
    served_by: str | None = None
    cache: str | None = None
    last_reason: str = ""
    wrote: bool = False
    unread_state: SessionState | None = None

    def session_state(self, *, through_breaker: bool = False) -> SessionState | None:
        """The session's state, loaded on first use; None when its store is unavailable."""
        if self.store is not None and (
            not self.state_loaded or (self.state is None and through_breaker)
        ):
            self.state = self.store.load(through_breaker=through_breaker)
            self.state_loaded = True
        return self.state

    def session_state_with(self, *commands: tuple) -> tuple[SessionState | None, list | None]:
        """The session's state plus the replies to Redis ``commands`` sent in the same round
        trip when the state comes from Redis; replies are None when they were not sent."""
        if not self.state_loaded and isinstance(self.store, TokenStore):
            self.state, replies = self.store.load_with(*commands)
            self.state_loaded = True
            return self.state, replies
        return self.session_state(), None

    def note_write(self, key: str, lsn: int, version: int) -> None:
        """Record this session's write. If the stored positions cannot be read, the write's
        own is still saved by ``flush`` (the save merges: positions only rise), while reads in
        this request keep treating the state as unavailable (primary only)."""
        self.wrote = True
        state = self.session_state(through_breaker=True)
        if state is None:
            state = self.unread_state = self.unread_state or SessionState()
        state.raise_write(key, lsn)
        state.raise_seen(key, version)

    def note_seen(self, key: str, version: int) -> None:
        state = self.session_state()
        if state is not None:
            state.raise_seen(key, version)

    def forget_caught_up(self, key: str, replayed_by_all: int) -> None:
        """Stickiness ends when every replica has replayed the write."""
        if self.state is not None:
            self.state.forget_write(key, replayed_by_all)

    def flush(self) -> None:
        if self.store is None:
            return
        for state in (self.state, self.unread_state):
            if state is not None and state.has_changes():
                self.store.save(state, through_breaker=self.wrote)
                state.changes_saved()


_context: contextvars.ContextVar[ConsistencyContext | None] = contextvars.ContextVar(
    "statelab_consistency", default=None
)
_pinned: contextvars.ContextVar[int] = contextvars.ContextVar("statelab_pinned", default=0)


def consistency_current() -> ConsistencyContext | None:
    return _context.get()


@contextlib.contextmanager
def consistency_context(
    level: str = SESSION, *, store: StateStore | None = None, state: SessionState | None = None
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


@contextlib.contextmanager
def pin_to_primary() -> Iterator[None]:
    """Every routed read inside the block goes to the primary (nestable, per task/thread)."""
    token = _pinned.set(_pinned.get() + 1)
    try:
        yield
    finally:
        _pinned.reset(token)


def consistency_bind_request(request: Any) -> None:
    """Attach the caller's position store to the current context: the Django session for
    session-authenticated callers, the token's server-side record for token clients."""
    context = _context.get()
    if context is None or context.store is not None:
        return
    auth = getattr(request, "auth", None)
    token_key = getattr(auth, "key", None)
    if isinstance(token_key, str) and token_key:
        context.store = TokenStore(token_key)
    else:
        session = getattr(request, "session", None)
        if session is None:
            return
        context.store = DjangoSessionStore(session)
    context.state_loaded = False


# --- Replica pool -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaState:
    alias: str
    up: bool
    replay_lsn: int = 0
    staleness_s: float = float("inf")
    error: str = ""

    @property
    def in_rotation(self) -> bool:
        return self.up and self.staleness_s <= settings.CONSISTENCY_MAX_STALENESS_S


class ReplicaPool:
    """Replica positions per process, probed at most every ``max_age_s``.

    Staleness of a replica is how long ago the primary was last seen at (or below) the
    position the replica has replayed: it is measured against this process's own samples of
    the primary's LSN, so an idle primary does not make a caught-up replica look late.
    """

    SAMPLE_WINDOW_S = 60.0
    PRIMARY_SAMPLE_INTERVAL_S = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, ReplicaState] = {}
        self._probed_at = -float("inf")
        self._primary_sampled_at = -float("inf")
        self._down_until: dict[str, float] = {}
        self._sample_times: deque[float] = deque()
        self._sample_lsns: deque[int] = deque()

    def reset(self) -> None:
        with self._lock:
            self._states = {}
            self._probed_at = -float("inf")
            self._primary_sampled_at = -float("inf")
            self._down_until.clear()
            self._sample_times.clear()
            self._sample_lsns.clear()

    def states(self, *, required_lsn: int | None = None) -> dict[str, ReplicaState]:
        """Every replica's state, probed at most ``CONSISTENCY_POSITIONS_MAX_AGE_S`` ago; or,
        given ``required_lsn``, up to ``CONSISTENCY_HEALTH_MAX_AGE_S`` ago when a replica in
        rotation had already replayed it then. Replay positions only rise, so such a snapshot still
        proves that replica has the write: a read that needs nothing newer (another user's
        object, a write every replica has replayed) costs no probe."""
        now = time.monotonic()
        age = now - self._probed_at
        if age <= settings.CONSISTENCY_POSITIONS_MAX_AGE_S:
            return self._states
        if (
            required_lsn is not None
            and age <= settings.CONSISTENCY_HEALTH_MAX_AGE_S
            and any(
                state.in_rotation and state.replay_lsn >= required_lsn
                for state in self._states.values()
            )
        ):
            return self._states
        # One prober at a time; others use the previous snapshot, which is a safe lower bound.
        if not self._lock.acquire(blocking=not self._states):
            return self._states
        try:
            if time.monotonic() - self._probed_at > settings.CONSISTENCY_POSITIONS_MAX_AGE_S:
                self._probe()
        finally:
            self._lock.release()
        return self._states

    @property
    def probed_at(self) -> float:
        """``time.monotonic()`` of the last probe (``-inf`` before the first)."""
        return self._probed_at

    def mark_down(self, alias: str, error: str) -> None:
        with self._lock:
            self._down_until[alias] = time.monotonic() + settings.CONSISTENCY_DOWN_RETRY_S
            states = dict(self._states)
            states[alias] = ReplicaState(alias=alias, up=False, error=error)
            self._states = states

    def _probe(self) -> None:
        now = time.monotonic()
        primary_lsn: int | None = None
        # The primary's position only dates replay positions (staleness): sampled less often.
        if now - self._primary_sampled_at >= self.PRIMARY_SAMPLE_INTERVAL_S:
            try:
                primary_lsn = write_position()
            except DatabaseError:
                connections[PRIMARY].close()
            else:
                self._sample(now, primary_lsn)
                self._primary_sampled_at = now
        states = {}
        for alias in settings.REPLICA_ALIASES:
            if self._down_until.get(alias, 0) > now:
                states[alias] = self._states.get(alias) or ReplicaState(alias=alias, up=False)
                continue
            position = probe_replica(alias, primary_lsn)
            if not position.up or position.replay_lsn is None:
                self._down_until[alias] = now + settings.CONSISTENCY_DOWN_RETRY_S
                states[alias] = ReplicaState(alias=alias, up=False, error=position.error)
                continue
            states[alias] = ReplicaState(
                alias=alias,
                up=True,
                replay_lsn=position.replay_lsn,
                staleness_s=self._staleness(now, position.replay_lsn, position.lag_seconds),
            )
        self._states = states
        self._probed_at = time.monotonic()

    def _sample(self, now: float, lsn: int) -> None:
        if self._sample_lsns and self._sample_lsns[-1] == lsn:
            self._sample_times[-1] = now
        elif not self._sample_lsns or lsn > self._sample_lsns[-1]:
            self._sample_times.append(now)
            self._sample_lsns.append(lsn)
        while self._sample_times and now - self._sample_times[0] > self.SAMPLE_WINDOW_S:
            self._sample_times.popleft()
            self._sample_lsns.popleft()

    def _staleness(self, now: float, replay_lsn: int, lag_seconds: float | None) -> float:
        index = bisect.bisect_right(self._sample_lsns, replay_lsn)
        if index == 0:
            # Behind every sample this process has (e.g. just started): fall back on the age
            # of the last replayed commit, an upper bound.
            return lag_seconds if lag_seconds is not None else float("inf")
        return max(0.0, now - self._sample_times[index - 1])


replica_pool = ReplicaPool()


@dataclass(frozen=True)
class ReadDecision:
    alias: str
    reason: str


def read_decision(key: str | None = None) -> ReadDecision:
    """Where a routed read of ``key`` goes now; the reason is kept on the context."""
    decision = _decide(key)
    context = _context.get()
    if context is not None:
        context.last_reason = decision.reason
    return decision


def _decide(key: str | None) -> ReadDecision:  # noqa: PLR0911 - one return per reason
    """Where a routed read of ``key`` goes under the current context, and why.

    Reasons: ``pinned``, ``no_context``, ``strong``, ``eventual``, ``caught_up`` (a replica has
    the session's write), ``behind`` (no replica has it yet: a stale read prevented),
    ``no_replica`` (none in rotation), ``state_unavailable`` (the session's positions cannot be
    read, so only the primary is safe).
    """
    context = _context.get()
    if _pinned.get():
        return ReadDecision(PRIMARY, "pinned")
    if context is None:
        return ReadDecision(PRIMARY, "no_context")
    if context.level == STRONG:
        return ReadDecision(PRIMARY, "strong")
    if context.level == EVENTUAL:
        states = replica_pool.states(required_lsn=0)
        in_rotation = [state for state in states.values() if state.in_rotation]
        if not in_rotation:
            return ReadDecision(PRIMARY, "no_replica")
        return ReadDecision(random.choice(in_rotation).alias, "eventual")  # noqa: S311
    state = context.session_state()
    if state is None:
        return ReadDecision(PRIMARY, "state_unavailable")
    required = state.required_lsn(key)
    states = replica_pool.states(required_lsn=required)
    in_rotation = [replica for replica in states.values() if replica.in_rotation]
    if not in_rotation:
        return ReadDecision(PRIMARY, "no_replica")
    eligible = [replica for replica in in_rotation if replica.replay_lsn >= required]
    if not eligible:
        return ReadDecision(PRIMARY, "behind")
    if key is not None and required and len(eligible) == len(states):
        context.forget_caught_up(key, min(replica.replay_lsn for replica in eligible))
    return ReadDecision(random.choice(eligible).alias, "caught_up")  # noqa: S311


def write_position() -> int:
    """The primary's WAL insert position now: after a commit, at or past that commit."""
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


# --- HTTP middleware --------------------------------------------------------------------------
class InvalidConsistency(ValueError):
    pass


def requested_level(request: HttpRequest) -> str:
    """``X-Consistency``, else ``?consistency=``, else ``session``; given but not exactly one
    of the levels (empty included) is an error."""
    value = request.headers.get("X-Consistency")
    if value is None:
        value = request.GET.get("consistency", SESSION)
    if value not in LEVELS:
        raise InvalidConsistency(value)
    return value


def _invalid_level(request: HttpRequest, value: str) -> HttpResponse:
    return problem_response(
        request,
        status_code=400,
        code="consistency_invalid",
        title="Bad Request",
        detail=f"Unknown consistency {value!r}; use one of {', '.join(LEVELS)}.",
        allowed=list(LEVELS),
    )


def _finish(response: HttpResponse, context: ConsistencyContext) -> HttpResponse:
    context.flush()
    if context.served_by:
        response["X-Served-By"] = context.served_by
        response["X-Consistency"] = context.level
    if context.cache:
        response["X-Cache"] = context.cache
    return response


class ConsistencyMiddleware:
    """Opens a ``ConsistencyContext`` for each request (``X-Consistency`` or
    ``?consistency=``; 400 ``consistency_invalid`` otherwise), saves the session's positions
    after the view, and reports ``X-Served-By`` / ``X-Cache``. Must run inside
    ``SessionMiddleware`` so that a browser session's change is saved."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        try:
            level = requested_level(request)
        except InvalidConsistency as error:
            return _invalid_level(request, str(error))
        with consistency_context(level) as context:
            return _finish(self.get_response(request), context)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        from asgiref.sync import sync_to_async

        try:
            level = requested_level(request)
        except InvalidConsistency as error:
            return _invalid_level(request, str(error))
        with consistency_context(level) as context:
            response = await self.get_response(request)
            return await sync_to_async(_finish)(response, context)


# --- Celery: the write positions travel with the task ------------------------------------------
def task_headers_add(headers: dict[str, Any]) -> None:
    """``before_task_publish``: a task sent by a request carries the session's positions, so a
    task that reads what the request wrote reads it from a replica that has it, or the primary."""
    context = _context.get()
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
    return _context.set(ConsistencyContext(level=level, state=state, state_loaded=True))


def task_context_exit(token: contextvars.Token | None) -> None:
    if token is not None:
        _context.reset(token)
