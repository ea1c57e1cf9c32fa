"""The two models that ask for one total order of the operations: linearizable, sequential.

Both are checked per key. For linearizability that is exact: it is local (Herlihy and Wing),
so a history is linearizable iff each key's subhistory is, and each key is searched on its
own (P-compositionality). Sequential consistency is not local: a history whose every key is
sequentially consistent may have no single order for all keys together. What this module
checks is sequential consistency per key (each key's operations have one order that keeps
every process's program order and the datatype's semantics), which is what single-key
registers promise; the report says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checker.history import History, Op
from checker.search import linearizable, sequential
from checker.shrink import shrink
from checker.verdict import HOLDS, UNKNOWN, VIOLATED, Counterexample, Verdict

Search = Callable[[list[Op], str, int], bool | None]


def check_linearizable(history: History, *, budget: int) -> Verdict:
    return _check(
        history,
        model="linearizable",
        search=linearizable,
        prefix_closed=True,
        budget=budget,
        explanation=(
            "no order of these {count} operations on key {key} respects real time (an "
            "operation that completed before another was invoked comes first) and explains "
            "every result of the {datatype}"
        ),
    )


def check_sequential(history: History, *, budget: int) -> Verdict:
    return _check(
        history,
        model="sequential",
        search=sequential,
        prefix_closed=False,
        budget=budget,
        explanation=(
            "no order of these {count} operations on key {key} keeps each process's program "
            "order and explains every result of the {datatype} (checked per key)"
        ),
    )


def _check(
    history: History,
    *,
    model: str,
    search: Search,
    prefix_closed: bool,
    budget: int,
    explanation: str,
) -> Verdict:
    failing: list[Any] = []
    undecided: list[Any] = []
    by_key = history.by_key()
    for key, ops in by_key.items():
        outcome = search(ops, history.datatypes[key], budget)
        if outcome is False:
            failing.append(key)
        elif outcome is None:
            undecided.append(key)
    stats = {
        "keys": len(by_key),
        "operations": len(history.ops),
        "failing_keys": failing,
        "undecided_keys": undecided,
        "budget_per_key": budget,
    }
    if failing:
        key = failing[0]
        datatype = history.datatypes[key]

        def fails(candidate: list[Op]) -> bool | None:
            outcome = search(candidate, datatype, budget)
            return None if outcome is None else not outcome

        subset, minimal = shrink(by_key[key], datatype, fails, prefix_closed=prefix_closed)
        originals = [history.ops[op.id] for op in subset]
        others = f" (and {len(failing) - 1} more keys)" if len(failing) > 1 else ""
        return Verdict(
            model=model,
            outcome=VIOLATED,
            reason=f"key {key!r} is not {model}{others}",
            counterexample=Counterexample(
                kind=f"not-{model}",
                explanation=explanation.format(
                    count=len(originals), key=repr(key), datatype=datatype
                ),
                ops=originals,
                key=key,
                minimal=minimal,
            ),
            stats=stats,
        )
    if undecided:
        return Verdict(
            model=model,
            outcome=UNKNOWN,
            reason=(
                f"{len(undecided)} of {len(by_key)} keys undecided within the budget of "
                f"{budget} search configurations per key (first: {undecided[0]!r})"
            ),
            stats=stats,
        )
    scope = " (per key)" if model == "sequential" else ""
    return Verdict(
        model=model,
        outcome=HOLDS,
        reason=f"all {len(by_key)} keys are {model}{scope}",
        stats=stats,
    )
