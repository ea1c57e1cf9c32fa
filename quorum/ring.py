"""Consistent hashing with virtual nodes: which nodes hold a key, in which order.

Each physical node owns ``vnodes`` tokens on a ring of 2**64 positions (token = blake2b of
``"<node>#<i>"``, the same in every process and release: Python's ``hash()`` is salted per
process). A key hashes to a position; walking clockwise from it, the first N distinct physical
nodes are the key's *preference list*, and the nodes after them are its fallbacks (a sloppy
quorum's stand-ins). Virtual nodes spread each node's share of the ring over many small arcs,
so that the load is even and a node that joins or leaves moves keys from or to every other node
a little, instead of from one neighbour a lot.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

RING_BITS = 64
RING_SIZE = 2**RING_BITS


def ring_position(text: str) -> int:
    """A stable position on the ring for a key or a virtual node's name."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Ring:
    nodes: tuple[str, ...]
    vnodes: int
    _tokens: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _owners: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("a ring needs at least one node")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"node names must be unique: {self.nodes}")
        if self.vnodes < 1:
            raise ValueError("a node needs at least one virtual node")
        pairs = sorted(
            (ring_position(f"{node}#{index}"), node)
            for node in self.nodes
            for index in range(self.vnodes)
        )
        object.__setattr__(self, "_tokens", tuple(token for token, _ in pairs))
        object.__setattr__(self, "_owners", tuple(node for _, node in pairs))

    @classmethod
    def of(cls, nodes: Sequence[str], vnodes: int) -> Ring:
        return cls(tuple(nodes), vnodes)

    def walk(self, key: str) -> list[str]:
        """Every physical node once, in the order met walking clockwise from the key's
        position (the first token at or after it, wrapping around)."""
        start = bisect.bisect_left(self._tokens, ring_position(key))
        seen: dict[str, None] = {}
        count = len(self._tokens)
        for step in range(count):
            owner = self._owners[(start + step) % count]
            if owner not in seen:
                seen[owner] = None
                if len(seen) == len(self.nodes):
                    break
        return list(seen)

    def preference_list(self, key: str, n: int) -> list[str]:
        """The first `n` distinct nodes of the key's walk (ValueError when n is out of 1..nodes)."""
        if not 1 <= n <= len(self.nodes):
            raise ValueError(f"n must be in 1..{len(self.nodes)}, got {n}")
        return self.walk(key)[:n]

    def tokens(self) -> list[tuple[int, str]]:
        """(position, owner) of every virtual node, in ring order."""
        return list(zip(self._tokens, self._owners, strict=True))

    def shares(self) -> dict[str, float]:
        """Each node's fraction of the ring (the arcs that end at its tokens)."""
        owned = dict.fromkeys(self.nodes, 0)
        previous = self._tokens[-1] - RING_SIZE
        for token, owner in zip(self._tokens, self._owners, strict=True):
            owned[owner] += token - previous
            previous = token
        return {node: arc / RING_SIZE for node, arc in owned.items()}
