"""What the clients did and saw: one record per operation, Jepsen style.

``outcome`` is ``ok`` (the service acknowledged), ``fail`` (it refused: nothing happened) or
``unknown`` (timeout, connection error, 5xx: it may or may not have happened). Checkers must
treat ``unknown`` as either.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


@dataclass
class Operation:
    client: str
    kind: str
    started: float
    ended: float
    outcome: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultRecord:
    kind: str
    started: float
    healed: float | None = None
    detail: str = ""


class History:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.operations: list[Operation] = []
        self.faults: list[FaultRecord] = []
        self.checks: list[dict[str, Any]] = []
        self.origin = time.monotonic()

    def now(self) -> float:
        return round(time.monotonic() - self.origin, 4)

    def record(self, operation: Operation) -> None:
        with self._lock:
            self.operations.append(operation)

    def fault(self, kind: str, detail: str = "") -> FaultRecord:
        record = FaultRecord(kind=kind, started=self.now(), detail=detail)
        with self._lock:
            self.faults.append(record)
        return record

    def check(self, at: str, results: dict[str, Any]) -> None:
        with self._lock:
            self.checks.append({"at": at, "time": self.now(), **results})

    def of_kind(self, kind: str) -> list[Operation]:
        with self._lock:
            return [operation for operation in self.operations if operation.kind == kind]

    def write(self, path: Path) -> None:
        with self._lock:
            document = {
                "operations": [asdict(operation) for operation in self.operations],
                "faults": [asdict(fault) for fault in self.faults],
                "checks": self.checks,
            }
        path.write_text(json.dumps(document, indent=1, default=str))
