"""``python -m checker HISTORY --model MODEL [--json] [--budget N]``.

Exit codes: 0 the history satisfies the model, 1 it does not (a counterexample is printed),
2 the checker cannot decide (the search budget ran out, or the history lacks what the model
needs, e.g. final reads for convergence), 3 the history or the command line is malformed
(the reason on stderr). With ``--model all``, one row per model; the exit code is 1 if any
model is violated, else 3 if any row is invalid, else 2 if any is unknown, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

from checker.check import DEFAULT_BUDGET, MODELS, check, check_all
from checker.history import HistoryError, read_history
from checker.verdict import EXIT_CODES, EXIT_INVALID, INVALID, UNKNOWN, VIOLATED, Verdict


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m checker",
        description="Check a JSON-lines history against a consistency model.",
        epilog="Exit codes: 0 holds, 1 violated, 2 cannot decide, 3 malformed input.",
    )
    parser.add_argument("history", help="a JSON-lines history file, or - for stdin")
    parser.add_argument(
        "--model", required=True, choices=[*MODELS, "all"], help="the model to check, or all"
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument(
        "--budget",
        type=_positive,
        default=DEFAULT_BUDGET,
        help=(
            "the most search configurations (distinct placed-operations/state pairs) the "
            "linearizable and sequential searches may visit per key "
            f"(default {DEFAULT_BUDGET}); the other models ignore it"
        ),
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("the budget is at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        history = read_history(args.history)
        if args.model == "all":
            return _report_all(check_all(history, budget=args.budget), as_json=args.json)
        verdict = check(history, args.model, budget=args.budget)
    except HistoryError as exc:
        print(f"malformed history: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, default=str))
    else:
        print(verdict.render())
    return verdict.exit_code


def _report_all(verdicts: dict[str, Verdict], *, as_json: bool) -> int:
    if as_json:
        print(
            json.dumps({model: v.to_dict() for model, v in verdicts.items()}, indent=2, default=str)
        )
    else:
        width = max(len(model) for model in verdicts)
        for model, verdict in verdicts.items():
            print(f"{model:<{width}}  {verdict.outcome:<8}  {verdict.reason}")
        for verdict in verdicts.values():
            if verdict.counterexample is not None:
                print(f"\n{verdict.model}:\n{verdict.counterexample.render()}")
    outcomes = {verdict.outcome for verdict in verdicts.values()}
    for outcome in (VIOLATED, INVALID, UNKNOWN):
        if outcome in outcomes:
            return EXIT_CODES[outcome]
    return 0
