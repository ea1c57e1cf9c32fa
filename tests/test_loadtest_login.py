"""Load-test users log in once per demo user and process, not once each: a swarm of them must
not run into the log-in throttle (30/min) before it has started."""

from __future__ import annotations

import gevent

from loadtest import tokens


def test_users_starting_together_share_one_log_in_per_username(monkeypatch):
    monkeypatch.setattr(tokens, "_tokens", {})
    log_ins = []

    def log_in(username: str) -> str:
        log_ins.append(username)
        gevent.sleep(0.01)  # the request's round trip: the others start meanwhile
        return f"token-of-{username}"

    users = [("alice" if n % 2 else "bob") for n in range(40)]
    greenlets = [
        gevent.spawn(tokens.token_shared, name, lambda name=name: log_in(name)) for name in users
    ]
    gevent.joinall(greenlets, raise_error=True)

    assert sorted(log_ins) == ["alice", "bob"]
    assert [greenlet.value for greenlet in greenlets] == [f"token-of-{name}" for name in users]
