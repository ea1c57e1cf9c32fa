"""The three sequential datatypes a key can be: register, set, counter.

A register holds one JSON value (``null`` before its first write) and knows ``read``,
``write v`` and ``cas [expected, new]`` (succeeds only when the register holds ``expected``).
A set starts empty and knows ``add e``, ``remove e`` and ``read`` (returns the elements as a
list, in any order). A counter starts at 0 and knows ``increment d`` (``d`` an integer,
default 1, negative allowed) and ``read`` (``null`` reads as 0).

The searches work on frozen values (hashable, and ``true`` never equal to ``1``) and on ops
compiled to ``(code, argument)`` pairs: :func:`apply` is the whole sequential specification.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from checker.history import Op

READ = "read"
REGISTER = "register"
SET = "set"
COUNTER = "counter"
FUNCTIONS = ("read", "write", "cas", "add", "remove", "increment")
_DATATYPE_OF = {"write": REGISTER, "cas": REGISTER, "add": SET, "remove": SET, "increment": COUNTER}

CODE_READ, CODE_WRITE, CODE_CAS, CODE_ADD, CODE_REMOVE, CODE_INCREMENT = range(6)
_CODES = {
    "write": CODE_WRITE,
    "cas": CODE_CAS,
    "add": CODE_ADD,
    "remove": CODE_REMOVE,
    "increment": CODE_INCREMENT,
}

FAIL = object()  # what apply() returns when the operation cannot happen in that state


def datatype_of_function(f: str) -> str | None:
    """The datatype an update function belongs to; None for ``read`` (any datatype)."""
    return _DATATYPE_OF.get(f)


def freeze(value: Any) -> Any:
    """A hashable stand-in for a JSON value, equal only to the same JSON value."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, list):
        return ("list", tuple(freeze(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((key, freeze(item)) for key, item in value.items())))
    return value


def initial_state(datatype: str) -> Any:
    if datatype == SET:
        return frozenset()
    if datatype == COUNTER:
        return 0
    return None


def read_state(datatype: str, result: Any) -> Any:
    """The state a read's result says the object was in."""
    if datatype == SET:
        return frozenset(freeze(item) for item in (result or ()))
    if datatype == COUNTER:
        return 0 if result is None else result
    return freeze(result)


def compile_op(op: Op, datatype: str) -> tuple[int, Any]:
    if op.is_read:
        return CODE_READ, read_state(datatype, op.result)
    code = _CODES[op.f]
    if code == CODE_CAS:
        expected, new = op.value
        return code, (freeze(expected), freeze(new))
    if code == CODE_INCREMENT:
        return code, op.value
    return code, freeze(op.value)


def apply(state: Any, code: int, argument: Any) -> Any:
    """The state after the operation, or FAIL when it cannot happen in ``state``."""
    if code == CODE_READ:
        return state if state == argument else FAIL
    if code == CODE_WRITE:
        return argument
    if code == CODE_CAS:
        return argument[1] if state == argument[0] else FAIL
    if code == CODE_ADD:
        return state | {argument}
    if code == CODE_REMOVE:
        return state - {argument}
    return state + argument


def written_state(op: Op) -> Any:
    """For a register update: the frozen value it writes."""
    return freeze(op.value[1] if op.f == "cas" else op.value)


def implausible_reads(ops: Iterable[Op], datatype: str) -> set[int]:
    """Ids of reads (and ok cas) whose result no update in ``ops`` could produce, in any order.

    Used by the shrinker: dropping an operation must not leave a read unexplained (a lone
    read of 5 is non-linearizable, and useless as a counterexample).
    """
    ops = [op for op in ops if op.status != "fail"]
    updates = [op for op in ops if op.is_update]
    bad: set[int] = set()
    if datatype == REGISTER:
        produced = {None} | {written_state(op) for op in updates}
        for op in ops:
            if op.status != "ok" or op.f == "write":
                continue
            seen = op.result if op.is_read else op.value[0]  # a cas reads its expected value
            if freeze(seen) not in produced:
                bad.add(op.id)
    elif datatype == SET:
        added = {freeze(op.value) for op in updates if op.f == "add"}
        for op in ops:
            if op.is_read and op.status == "ok" and not read_state(SET, op.result) <= added:
                bad.add(op.id)
    else:
        low = sum(min(0, op.value) for op in updates)
        high = sum(max(0, op.value) for op in updates)
        for op in ops:
            if (
                op.is_read
                and op.status == "ok"
                and not low <= read_state(COUNTER, op.result) <= high
            ):
                bad.add(op.id)
    return bad
