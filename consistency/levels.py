"""The consistency levels a request may ask for, and reading one off a request."""

from __future__ import annotations

from typing import Any

from core.errors import DomainError

STRONG = "strong"
SESSION = "session"
EVENTUAL = "eventual"
LEVELS = (STRONG, SESSION, EVENTUAL)
PRIMARY = "default"


class ConsistencyInvalid(DomainError):
    code = "consistency_invalid"
    status = 400
    title = "Bad Request"


def requested_level(request: Any) -> str:
    """``X-Consistency``, else ``?consistency=``, else ``session``; given but not exactly one
    of the levels (empty included) is ``ConsistencyInvalid``."""
    value = request.headers.get("X-Consistency")
    if value is None:
        value = request.GET.get("consistency", SESSION)
    if value not in LEVELS:
        raise ConsistencyInvalid(
            f"Unknown consistency {value!r}; use one of {', '.join(LEVELS)}.",
            allowed=list(LEVELS),
        )
    return value
