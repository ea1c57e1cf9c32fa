"""The state of each automatically merged type and its merge, as pure functions over JSON
states (no Django, no database): what a region stores in a row and how two rows combine.

Every ``*_merge`` is commutative, associative and idempotent (the laws a state-based CRDT needs
so that regions receiving rows in any order, any number of times, agree); tests/regions check
them with hypothesis over states reached by operations.

- ``gcounter``: ``{"counts": {region: n}}``, merged by the pointwise maximum.
- ``counter`` (PN): ``{"p": {region: n}, "n": {region: n}}``, two G-Counters.
- ``orset``: an add-wins observed-remove set without tombstones (ORSWOT, Bieniusa et al.
  2012): ``{"entries": {element: [dot, ...]}, "clock": {region: n}}``. An add tags the element
  with a new dot; a remove drops the element's dots it has seen; a merge keeps a dot that both
  sides hold, or that one side holds and the other's clock has not seen: a remove never
  cancels an add it did not observe, so a concurrent add wins.
- ``doc``: a Yjs document (``{"update": base64}``), merged by pycrdt (the Yrs engine), never
  by hand.

Hand-written (except ``doc``) because the counters and the set are the application's data over
rows replicated by Postgres; the text CRDT is a real library's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from pycrdt import Doc, Text

from causal.clocks import Dot, VectorClock

DOC_TEXT = "text"


class StateError(ValueError):
    """A state or an operation that the type cannot hold (bad element, undecodable update)."""


# ---- G-Counter and PN-Counter ------------------------------------------------------------


def _max_map(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return {name: max(a.get(name, 0), b.get(name, 0)) for name in sorted({*a, *b})}


def gcounter_empty() -> dict[str, Any]:
    return {"counts": {}}


def gcounter_increment(state: Mapping[str, Any], region: str, amount: int) -> dict[str, Any]:
    counts = dict(state["counts"])
    counts[region] = counts.get(region, 0) + amount
    return {"counts": counts}


def gcounter_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {"counts": _max_map(a["counts"], b["counts"])}


def gcounter_value(state: Mapping[str, Any]) -> int:
    return sum(state["counts"].values())


def pncounter_empty() -> dict[str, Any]:
    return {"p": {}, "n": {}}


def pncounter_change(state: Mapping[str, Any], region: str, delta: int) -> dict[str, Any]:
    side = "p" if delta >= 0 else "n"
    counts = dict(state[side])
    counts[region] = counts.get(region, 0) + abs(delta)
    return {**state, side: counts}


def pncounter_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {"p": _max_map(a["p"], b["p"]), "n": _max_map(a["n"], b["n"])}


def pncounter_value(state: Mapping[str, Any]) -> int:
    return sum(state["p"].values()) - sum(state["n"].values())


# ---- add-wins OR-Set (ORSWOT) --------------------------------------------------------------


def element_key(element: Any) -> str:
    """An element's identity: its canonical JSON (so 1 and "1" are different elements)."""
    return json.dumps(element, sort_keys=True, separators=(",", ":"))


def orset_empty() -> dict[str, Any]:
    return {"entries": {}, "clock": {}}


def _dots(values: list) -> set[Dot]:
    return {Dot.from_list(value) for value in values}


def _dot_lists(dots: set[Dot]) -> list[list]:
    return [dot.as_list() for dot in sorted(dots)]


def orset_add(state: Mapping[str, Any], region: str, element: Any) -> dict[str, Any]:
    clock = VectorClock.of(state["clock"])
    dot = Dot(region, clock.get(region) + 1)
    entries = dict(state["entries"])
    entries[element_key(element)] = [dot.as_list()]
    return {"entries": entries, "clock": clock.with_dot(dot).as_dict()}


def orset_remove(state: Mapping[str, Any], element: Any) -> dict[str, Any]:
    entries = dict(state["entries"])
    entries.pop(element_key(element), None)
    return {"entries": entries, "clock": dict(state["clock"])}


def orset_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    clock_a, clock_b = VectorClock.of(a["clock"]), VectorClock.of(b["clock"])
    entries: dict[str, list] = {}
    for element in sorted({*a["entries"], *b["entries"]}):
        dots_a = _dots(a["entries"].get(element, []))
        dots_b = _dots(b["entries"].get(element, []))
        kept = (
            (dots_a & dots_b)
            | {dot for dot in dots_a - dots_b if not clock_b.covers(dot)}
            | {dot for dot in dots_b - dots_a if not clock_a.covers(dot)}
        )
        if kept:
            entries[element] = _dot_lists(kept)
    return {"entries": entries, "clock": clock_a.merge(clock_b).as_dict()}


def orset_value(state: Mapping[str, Any]) -> list[Any]:
    return [json.loads(element) for element in sorted(state["entries"])]


# ---- text document (Yjs through pycrdt) ----------------------------------------------------


def doc_empty() -> dict[str, Any]:
    return {"update": _b64(Doc().get_update())}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise StateError("a Yjs update is standard base64") from None


def _doc(*updates: bytes) -> Doc[Text]:
    doc: Doc[Text] = Doc()
    for update in updates:
        try:
            doc.apply_update(update)
        except Exception as error:  # pycrdt raises ValueError, or a Rust panic on garbage
            raise StateError(f"not a Yjs update: {error}") from None
    return doc


def _doc_state(doc: Doc[Text]) -> dict[str, Any]:
    return {"update": _b64(doc.get_update())}


def doc_apply_update(state: Mapping[str, Any], update_b64: str) -> dict[str, Any]:
    """The state after a client's own Yjs update (as a Yjs client sends it)."""
    return _doc_state(_doc(_unb64(state["update"]), _unb64(update_b64)))


def doc_edit(
    state: Mapping[str, Any], *, insert: tuple[int, str] | None = None, delete=None
) -> dict[str, Any]:
    """Insert ``(index, text)`` or delete ``(index, length)`` in the text, as a Yjs edit made
    by a new client of this region (a random client id, as Yjs gives every editor)."""
    doc = _doc(_unb64(state["update"]))
    text = doc.get(DOC_TEXT, type=Text)
    length = len(str(text))
    if insert is not None:
        index, content = insert
        if not 0 <= index <= length:
            raise StateError(f"insert index {index} is outside 0..{length}")
        text.insert(index, content)
    if delete is not None:
        index, count = delete
        if not (index >= 0 and count >= 0 and index + count <= length):
            raise StateError(f"delete [{index}, {index}+{count}) is outside the text (0..{length})")
        del text[index : index + count]
    return _doc_state(doc)


def doc_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return _doc_state(_doc(_unb64(a["update"]), _unb64(b["update"])))


def doc_value(state: Mapping[str, Any]) -> str:
    return str(_doc(_unb64(state["update"])).get(DOC_TEXT, type=Text))
