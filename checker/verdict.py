"""What a check returns: a verdict, and when a model is violated, the operations that show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checker.history import Op

HOLDS = "holds"
VIOLATED = "violated"
UNKNOWN = "unknown"  # cannot decide: the search budget ran out, or the history lacks what it needs
INVALID = "invalid"  # the history is malformed for this model (only in check_all's rows)
EXIT_INVALID = 3  # the history (or the command line) is malformed
EXIT_CODES = {HOLDS: 0, VIOLATED: 1, UNKNOWN: 2, INVALID: EXIT_INVALID}


@dataclass
class Counterexample:
    """The operations involved in a violation and one sentence on why they violate the model.

    ``minimal`` is true when no single operation can be dropped with the rest still violating
    (the searches shrink to that), or when the operations are exactly one pattern's (a pair or
    a chain for the session and causal models).
    """

    kind: str
    explanation: str
    ops: list[Op]
    key: Any = None
    minimal: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "explanation": self.explanation,
            "minimal": self.minimal,
            "operations": [op.to_dict() for op in sorted(self.ops, key=_order)],
        }

    def render(self) -> str:
        lines = [f"  {self.explanation}"]
        if not self.minimal:
            lines.append("  (not shrunk to a minimal set: the shrinking ran out of budget)")
        lines.extend(f"    {op.describe()}" for op in sorted(self.ops, key=_order))
        return "\n".join(lines)


def _order(op: Op) -> tuple[int, int]:
    return op.invoke_pos, op.id


@dataclass
class Verdict:
    model: str
    outcome: str
    reason: str
    counterexample: Counterexample | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    @property
    def holds(self) -> bool:
        return self.outcome == HOLDS

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "verdict": self.outcome,
            "reason": self.reason,
            "counterexample": self.counterexample.to_dict() if self.counterexample else None,
            "stats": self.stats,
        }

    def render(self) -> str:
        text = f"{self.model}: {self.outcome.upper()}: {self.reason}"
        if self.counterexample is not None:
            text += "\n" + self.counterexample.render()
        return text
