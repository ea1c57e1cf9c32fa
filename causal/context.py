"""The causal context a client carries between a read and its next write (``X-Causal-Context``).

Opaque to the client, as Riak's vclock: a URL-safe base64 of a compact JSON clock, followed by
an HMAC-SHA256 tag under a server key, so that a client can drop its context (and get
siblings) but cannot forge one that claims to have seen writes it never read, which would let
its write silently delete other clients' values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from causal.clocks import ClockError, VectorClock

MAX_HEADER_CHARS = 4096
TAG_BYTES = 16


class ContextError(ValueError):
    """The header is malformed, too large, or its tag does not verify."""


def _tag(key: bytes, scope: str, body: bytes) -> bytes:
    return hmac.new(key, scope.encode() + b"\0" + body, hashlib.sha256).digest()[:TAG_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def context_encode(clock: VectorClock, *, key: bytes, scope: str) -> str:
    """The header value for `clock`, valid only for `scope` (e.g. "regions:mv:cart-7")."""
    body = json.dumps(clock.as_dict(), separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(body)}.{_b64(_tag(key, scope, body))}"


def context_decode(header: str | None, *, key: bytes, scope: str) -> VectorClock:
    """The clock in `header` (empty when there is none); ContextError when it is not one this
    server issued for `scope`."""
    if header is None or header == "":
        return VectorClock()
    if len(header) > MAX_HEADER_CHARS:
        raise ContextError(f"the causal context is longer than {MAX_HEADER_CHARS} characters")
    body_text, dot, tag_text = header.partition(".")
    if not dot:
        raise ContextError("the causal context is not one this service issued")
    try:
        body, tag = _unb64(body_text), _unb64(tag_text)
    except (binascii.Error, ValueError):
        raise ContextError("the causal context is not valid base64") from None
    if not hmac.compare_digest(tag, _tag(key, scope, body)):
        raise ContextError("the causal context was not issued for this key by this service")
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ClockError("a clock is an object")
        return VectorClock.of(data)
    except (ValueError, ClockError) as error:
        raise ContextError(f"the causal context holds no valid clock: {error}") from None
