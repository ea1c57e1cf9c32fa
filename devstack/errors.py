"""The one error the stack raises: which component, what failed, the command and the log tail."""

import shlex
from pathlib import Path

LOG_TAIL_LINES = 20


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file; empty when there is no such file."""
    try:
        return tail(path.read_text(errors="replace"), lines)
    except FileNotFoundError:
        return ""


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


class StackError(RuntimeError):
    """A step of the stack failed; the message is meant for a human, without traceback."""

    def __init__(
        self,
        component: str,
        problem: str,
        *,
        command: list[str] | None = None,
        log_path: Path | None = None,
        output: str = "",
    ) -> None:
        parts = [f"{component}: {problem}"]
        if command:
            parts.append(f"  command: {shlex.join(command)}")
        if output.strip():
            parts.append("  output:\n" + _indent(tail(output)))
        if log_path is not None:
            parts.append(f"  log: {log_path}")
            if log_path.exists():
                parts.append(
                    f"  last {LOG_TAIL_LINES} lines of the log:\n" + _indent(log_tail(log_path))
                )
        super().__init__("\n".join(parts))
        self.component = component
