"""Where a session's positions live between its requests.

A browser session keeps them in its Django session; a token client's are kept server-side in
Redis under a digest of its token. The client never sends a position, so it cannot forge one
(it can only lose it by dropping its token).
"""

from __future__ import annotations

import hashlib
from typing import Any

import redis
from django.conf import settings

from consistency.state import MAX_TRACKED_OBJECTS, SessionState
from core.redis import guarded_redis_call, is_unavailable, redis_key

SESSION_KEY = "statelab_consistency"


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


def store_for_request(request: Any) -> StateStore | None:
    """The caller's position store: its token's server-side record for token clients, its
    Django session for session-authenticated callers, None without either."""
    token_key = getattr(getattr(request, "auth", None), "key", None)
    if isinstance(token_key, str) and token_key:
        return TokenStore(token_key)
    session = getattr(request, "session", None)
    return DjangoSessionStore(session) if session is not None else None
