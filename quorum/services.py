"""The quorum store's services: a value written or read through the coordinator, with the
causal context carried by the client (``X-Causal-Context``) decoded and issued here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from causal.clocks import VectorClock
from causal.context import ContextError, context_decode, context_encode
from quorum.client import NodeCallFailed, node_call
from quorum.conf import conf
from quorum.coordinator import value_read, value_write
from quorum.documents import read_document, write_document
from quorum.errors import (
    QuorumContextInvalid,
    QuorumKeyNotFound,
    QuorumReadUnavailable,
    QuorumWriteUnavailable,
)
from quorum.storage import schema_create
from quorum.validation import (
    key_validate,
    quorum_parameters_resolve,
    quorum_parameters_validate,
)

SETUP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Answer:
    document: dict[str, Any]
    context_header: str
    siblings: int


def _scope(key: str) -> str:
    return f"quorum:{key}"


def causal_context_decode(*, key: str, header: str | None) -> VectorClock:
    """The clock a client sent for `key`; QuorumContextInvalid (400) when forged or malformed."""
    key_validate(key)
    try:
        return context_decode(header, key=conf().context_key, scope=_scope(key))
    except ContextError as error:
        raise QuorumContextInvalid(str(error), header="X-Causal-Context") from None


def causal_context_encode(*, key: str, clock: VectorClock) -> str:
    return context_encode(clock, key=conf().context_key, scope=_scope(key))


def quorum_value_put(
    *,
    key: str,
    value: Any,
    context_header: str | None,
    n: int | None = None,
    w: int | None = None,
    r: int | None = None,
    sloppy: bool = False,
) -> Answer:
    """Write through the coordinator. The answer's context covers the new version, so the
    client's next write with it replaces this one. QuorumWriteUnavailable (503) with what
    acknowledged when fewer than W did (the version may still be on those nodes)."""
    n, w, r = quorum_parameters_resolve(conf(), n=n, w=w, r=r)
    quorum_parameters_validate(conf(), key=key, n=n, w=w, r=r)
    context = causal_context_decode(key=key, header=context_header)
    result = value_write(key=key, value=value, context=context, n=n, w=w, sloppy=sloppy)
    document = write_document(result, r=r)
    if result.counted < result.w:
        raise QuorumWriteUnavailable(
            f"{result.counted} of the {result.w} acknowledgements needed arrived in time. The "
            "write is not rolled back: it may have landed on the nodes listed in acknowledged "
            "(fewer than W) or land later on pending ones, so a later read may or may not "
            "return it.",
            **document,
        )
    return Answer(document, causal_context_encode(key=key, clock=result.context), 1)


def quorum_value_get(
    *, key: str, n: int | None = None, r: int | None = None, w: int | None = None
) -> Answer:
    """Read through the coordinator; siblings when concurrent versions survive.
    QuorumReadUnavailable (503) when fewer than R answered, QuorumKeyNotFound (404) when the
    R answers hold no version."""
    n, w, r = quorum_parameters_resolve(conf(), n=n, w=w, r=r)
    quorum_parameters_validate(conf(), key=key, n=n, w=w, r=r)
    result = value_read(key=key, n=n, r=r)
    document = read_document(result, w=w)
    if len(result.answered) < result.r:
        raise QuorumReadUnavailable(
            f"{len(result.answered)} of the {result.r} answers needed arrived in time.",
            **document,
        )
    if not result.siblings:
        raise QuorumKeyNotFound(f"No version of {key!r} on the nodes that answered.", **document)
    return Answer(
        document,
        causal_context_encode(key=key, clock=result.context),
        len(result.siblings),
    )


def quorum_schema_setup(*, timeout_s: float = SETUP_TIMEOUT_S) -> dict[str, str]:
    """Create or update the schema on every storage node: node -> "ok" or why it failed."""
    outcome = {}
    for node in conf().nodes:
        try:
            node_call(node, schema_create, timeout_s=timeout_s)
            outcome[node.name] = "ok"
        except NodeCallFailed as error:
            outcome[node.name] = f"{error.reason}: {error.detail}"
    return outcome
