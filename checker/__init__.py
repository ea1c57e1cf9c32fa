"""A history checker for the consistency spectrum (see docs/patterns/checker.md).

Record a history with :class:`Recorder`, check it with :func:`check` (one model) or
:func:`check_all`; or from a shell: ``python -m checker HISTORY --model MODEL [--json]``.
Pure Python, standard library only.
"""

from checker.check import DEFAULT_BUDGET, MODELS, check, check_all, load
from checker.history import History, HistoryError, Op, parse_history, read_history
from checker.recorder import Pending, Recorder, Session, merge_recordings
from checker.verdict import HOLDS, INVALID, UNKNOWN, VIOLATED, Counterexample, Verdict

__all__ = [
    "DEFAULT_BUDGET",
    "HOLDS",
    "INVALID",
    "MODELS",
    "UNKNOWN",
    "VIOLATED",
    "Counterexample",
    "History",
    "HistoryError",
    "Op",
    "Pending",
    "Recorder",
    "Session",
    "Verdict",
    "check",
    "check_all",
    "load",
    "merge_recordings",
    "parse_history",
    "read_history",
]
