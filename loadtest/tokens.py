"""One log-in per demo user and Locust process (without importing Locust, which patches the
standard library with gevent on import)."""

from __future__ import annotations

from collections.abc import Callable

from gevent.lock import Semaphore

_tokens: dict[str, str] = {}
_tokens_lock = Semaphore()


def token_shared(username: str, log_in: Callable[[], str]) -> str:
    """The API token of ``username``, logged in for once per process: the service gives one
    token per user, and a swarm logging in user by user would meet the log-in throttle
    (``STATELAB_THROTTLE_AUTH``, 30/min) long before it had started."""
    with _tokens_lock:
        if username not in _tokens:
            _tokens[username] = log_in()
        return _tokens[username]
