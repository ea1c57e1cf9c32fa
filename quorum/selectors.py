"""Reads that do not touch the nodes' data: the ring and a key's place on it."""

from __future__ import annotations

from typing import Any

from quorum.conf import conf
from quorum.ring import RING_SIZE, ring_position
from quorum.validation import key_validate, quorum_parameters_resolve, quorum_parameters_validate


def ring_describe(*, key: str | None = None, n: int | None = None) -> dict[str, Any]:
    """The ring's virtual nodes (positions as fractions of the ring), each node's share, and
    for `key` its position, preference list (N) and fallbacks."""
    settings = conf()
    ring = settings.ring()
    document: dict[str, Any] = {
        "nodes": settings.node_names,
        "vnodes": settings.vnodes,
        "tokens": [[round(token / RING_SIZE, 6), owner] for token, owner in ring.tokens()],
        "shares": {node: round(share, 4) for node, share in ring.shares().items()},
        "defaults": {"n": settings.default_n, "w": settings.default_w, "r": settings.default_r},
        "key": None,
    }
    if key is not None:
        key_validate(key)
        n, _, _ = quorum_parameters_resolve(settings, n=n, w=None, r=None)
        quorum_parameters_validate(settings, key=key, n=n)
        walk = ring.walk(key)
        document["key"] = {
            "key": key,
            "position": round(ring_position(key) / RING_SIZE, 6),
            "n": n,
            "preference_list": walk[:n],
            "fallbacks": walk[n:],
        }
    return document
