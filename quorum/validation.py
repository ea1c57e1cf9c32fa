"""Checks of what a client asks for, before any node is contacted."""

from __future__ import annotations

import re

from quorum.conf import QuorumConf
from quorum.errors import QuorumKeyInvalid, QuorumParameterInvalid

KEY_MAX_LENGTH = 128
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*", re.ASCII)


def key_validate(key: object) -> str:
    """Keys are 1-128 ASCII letters, digits and ``_.:@-``, starting with a letter or digit."""
    if not isinstance(key, str) or not key:
        raise QuorumKeyInvalid("A key is required.", field="key")
    if len(key) > KEY_MAX_LENGTH:
        raise QuorumKeyInvalid(
            f"A key has at most {KEY_MAX_LENGTH} characters.", field="key", max_length=128
        )
    if not KEY_PATTERN.fullmatch(key):
        raise QuorumKeyInvalid(
            "A key uses only ASCII letters, digits and _ . : @ -, and starts with a letter "
            "or digit.",
            field="key",
            pattern=KEY_PATTERN.pattern,
        )
    return key


def quorum_parameters_validate(
    settings: QuorumConf,
    *,
    key: str,
    n: int,
    w: int | None = None,
    r: int | None = None,
) -> None:
    """1 <= N <= nodes, 1 <= W <= N, 1 <= R <= N; a clear 400 naming the parameter otherwise."""
    key_validate(key)
    nodes = len(settings.nodes)
    for name, value in (("n", n), ("w", w), ("r", r)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise QuorumParameterInvalid(f"{name} must be an integer.", field=name)
    if not 1 <= n <= nodes:
        raise QuorumParameterInvalid(
            f"n must be between 1 and the number of nodes ({nodes}); got {n}.",
            field="n",
            nodes=nodes,
        )
    for name, value in (("w", w), ("r", r)):
        if value is not None and not 1 <= value <= n:
            raise QuorumParameterInvalid(
                f"{name} must be between 1 and n ({n}); got {value}.", field=name, n=n
            )


def quorum_parameters_resolve(
    settings: QuorumConf, *, n: int | None, w: int | None, r: int | None
) -> tuple[int, int, int]:
    """N, W and R with the defaults filled in (W and R no larger than the N asked for)."""
    n = settings.default_n if n is None else n
    w = min(settings.default_w, n) if w is None else w
    r = min(settings.default_r, n) if r is None else r
    return n, w, r
