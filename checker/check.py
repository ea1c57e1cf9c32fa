"""Checking a history against a model by name: the one entry point the CLI and callers share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from checker.causal import check_causal
from checker.convergence import check_convergence
from checker.history import History, HistoryError, parse_history, read_history
from checker.session import (
    MONOTONIC_READS,
    MONOTONIC_WRITES,
    READ_YOUR_WRITES,
    SESSION,
    WRITES_FOLLOW_READS,
    check_session,
)
from checker.total_order import check_linearizable, check_sequential
from checker.verdict import INVALID, Verdict

DEFAULT_BUDGET = 1_000_000

_CHECKS: dict[str, Callable[[History, int], Verdict]] = {
    "linearizable": lambda history, budget: check_linearizable(history, budget=budget),
    "sequential": lambda history, budget: check_sequential(history, budget=budget),
    "causal": lambda history, budget: check_causal(history),
    READ_YOUR_WRITES: lambda history, budget: check_session(history, READ_YOUR_WRITES),
    MONOTONIC_READS: lambda history, budget: check_session(history, MONOTONIC_READS),
    MONOTONIC_WRITES: lambda history, budget: check_session(history, MONOTONIC_WRITES),
    WRITES_FOLLOW_READS: lambda history, budget: check_session(history, WRITES_FOLLOW_READS),
    SESSION: lambda history, budget: check_session(history, SESSION),
    "convergence": lambda history, budget: check_convergence(history),
}
MODELS: tuple[str, ...] = tuple(_CHECKS)

HistoryLike = History | str | Path | IO[str] | Iterable[dict[str, Any]]


def load(history: HistoryLike) -> History:
    """A History from a History, a path (``-``: stdin), an open file, or event dicts."""
    if isinstance(history, History):
        return history
    if isinstance(history, str | Path) or hasattr(history, "read"):
        return read_history(history)  # type: ignore[arg-type]
    return parse_history(history)


def check(history: HistoryLike, model: str, *, budget: int = DEFAULT_BUDGET) -> Verdict:
    """Check one model; raises HistoryError when the history is malformed for it.

    ``budget`` bounds the linearizable and sequential searches: the most search
    configurations each key's search may visit. The other models are decided in polynomial
    time and ignore it.
    """
    if model not in _CHECKS:
        raise ValueError(f"unknown model {model!r}; the models: {', '.join(MODELS)}")
    if budget < 1:
        raise ValueError("the budget is at least 1")
    return _CHECKS[model](load(history), budget)


def check_all(history: HistoryLike, *, budget: int = DEFAULT_BUDGET) -> dict[str, Verdict]:
    """Every model's verdict; a model the history is malformed for gets an ``invalid`` row."""
    loaded = load(history)
    verdicts = {}
    for model in MODELS:
        try:
            verdicts[model] = check(loaded, model, budget=budget)
        except HistoryError as exc:
            verdicts[model] = Verdict(model=model, outcome=INVALID, reason=str(exc))
    return verdicts
