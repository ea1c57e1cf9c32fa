"""The six types: what a PUT body may say for each, and, for the merged types, how a state is
built, changed and read (regions.crdts). Pure: no database."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from regions import crdts
from regions.conf import KINDS, option
from regions.errors import InvalidBody, UnknownKind, ValueTooLarge

MAX_AMOUNT = 1_000_000_000
MAX_ELEMENT_BYTES = 1024
MAX_DOC_TEXT = 4096

REGISTERS = ("lww", "mv")


@dataclass(frozen=True)
class Operation:
    kind: str
    name: str  # write | increment | decrement | add | remove | insert | delete | update
    argument: Any

    def history_f(self) -> str:
        """The operation's name in a history (checker format)."""
        return {"write": "write", "add": "add", "remove": "remove"}.get(self.name, "increment")


@dataclass(frozen=True)
class StateKind:
    empty: Callable[[], dict]
    merge: Callable[[Mapping, Mapping], dict]
    value: Callable[[Mapping], Any]


STATE_KINDS: dict[str, StateKind] = {
    "counter": StateKind(crdts.pncounter_empty, crdts.pncounter_merge, crdts.pncounter_value),
    "gcounter": StateKind(crdts.gcounter_empty, crdts.gcounter_merge, crdts.gcounter_value),
    "orset": StateKind(crdts.orset_empty, crdts.orset_merge, crdts.orset_value),
    "doc": StateKind(crdts.doc_empty, crdts.doc_merge, crdts.doc_value),
}


def kind_check(kind: str) -> str:
    if kind not in KINDS:
        raise UnknownKind(kind=kind)
    return kind


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def _one_field(kind: str, body: Any, allowed: tuple[str, ...]) -> tuple[str, Any]:
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in allowed:
        fields = " or ".join(f'{{"{name}": ...}}' for name in allowed)
        raise InvalidBody(f"A {kind} write is one object: {fields}.", expected=list(allowed))
    name = next(iter(body))
    return name, body[name]


def _amount(kind: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_AMOUNT:
        raise InvalidBody(f"{kind} {name} is an integer in 1..{MAX_AMOUNT}.")
    return value


def operation_parse(kind: str, body: Any) -> Operation:
    """The operation a PUT body asks for; InvalidBody (400) or ValueTooLarge (413) if none."""
    kind_check(kind)
    if kind in REGISTERS:
        _name, value = _one_field(kind, body, ("value",))
        if json_size(value) > option("max_value_bytes"):
            raise ValueTooLarge(
                f"The value is larger than {option('max_value_bytes')} bytes of JSON."
            )
        return Operation(kind, "write", value)
    if kind == "counter":
        name, value = _one_field(kind, body, ("increment", "decrement"))
        return Operation(kind, name, _amount(kind, name, value))
    if kind == "gcounter":
        name, value = _one_field(kind, body, ("increment",))
        return Operation(kind, name, _amount(kind, name, value))
    if kind == "orset":
        name, value = _one_field(kind, body, ("add", "remove"))
        if isinstance(value, dict | list) or value is None:
            raise InvalidBody("An orset element is a string, a number or a boolean.")
        if json_size(value) > MAX_ELEMENT_BYTES:
            raise ValueTooLarge(f"An orset element is at most {MAX_ELEMENT_BYTES} bytes of JSON.")
        return Operation(kind, name, value)
    name, value = _one_field(kind, body, ("insert", "delete", "update"))
    return Operation(kind, name, _doc_argument(name, value))


def _doc_argument(name: str, value: Any) -> Any:
    if name == "update":
        if not isinstance(value, str) or not value:
            raise InvalidBody("update is a Yjs update, base64-encoded.")
        if len(value) > option("max_value_bytes") * 2:
            raise ValueTooLarge("The Yjs update is too large.")
        return value
    expected = ("index", "text") if name == "insert" else ("index", "length")
    if not isinstance(value, dict) or set(value) != set(expected):
        raise InvalidBody(f"{name} is {{{', '.join(repr(f) for f in expected)}}}.")
    index, other = value[expected[0]], value[expected[1]]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise InvalidBody("index is an integer >= 0.")
    if name == "insert":
        if not isinstance(other, str) or not other:
            raise InvalidBody("text is a non-empty string.")
        if len(other) > MAX_DOC_TEXT:
            raise ValueTooLarge(f"An insert is at most {MAX_DOC_TEXT} characters.")
    elif isinstance(other, bool) or not isinstance(other, int) or other < 1:
        raise InvalidBody("length is an integer >= 1.")
    return (index, other)


def state_apply(operation: Operation, state: Mapping, region: str) -> dict:
    """The state after `operation`, applied by `region`; InvalidBody when the state refuses
    it (a delete outside the text, an update that is not Yjs)."""
    kind, name, argument = operation.kind, operation.name, operation.argument
    try:
        if kind == "counter":
            delta = argument if name == "increment" else -argument
            new = crdts.pncounter_change(state, region, delta)
        elif kind == "gcounter":
            new = crdts.gcounter_increment(state, region, argument)
        elif kind == "orset":
            new = (
                crdts.orset_add(state, region, argument)
                if name == "add"
                else crdts.orset_remove(state, argument)
            )
        elif name == "update":
            new = crdts.doc_apply_update(state, argument)
        elif name == "insert":
            new = crdts.doc_edit(state, insert=argument)
        else:
            new = crdts.doc_edit(state, delete=argument)
    except crdts.StateError as error:
        raise InvalidBody(str(error)) from None
    if json_size(new) > option("max_state_bytes"):
        raise ValueTooLarge(f"The {kind} would be larger than {option('max_state_bytes')} bytes.")
    return new


def state_fold(kind: str, states: list[Mapping]) -> dict:
    merged = STATE_KINDS[kind].empty()
    for state in states:
        merged = STATE_KINDS[kind].merge(merged, state)
    return merged
