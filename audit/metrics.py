"""``statelab_reconciliation_ok{check}``: the reconciliation's verdicts, for alerting.

The report reads every balance and operation of both services, so a scrape reuses a verdict
younger than ``MAX_AGE_S`` rather than recomputing it every few seconds."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MAX_AGE_S = 30.0
CHECKS = (
    "money_conserved",
    "transfer_operations",
    "journal_matches_balances",
    "operations_explain_balances",
)


class ReconciliationCollector(Collector):
    """One gauge per check (1 ok, 0 not ok), plus ``check="all"``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._report: dict[str, Any] | None = None
        self._taken_at = 0.0

    def describe(self):
        return []

    def collect(self):
        report = self._report_fresh()
        if report is None:
            return
        family = GaugeMetricFamily(
            "statelab_reconciliation_ok",
            "Reconciliation check holds (1) or not (0); journal_matches_balances only when quiet",
            labels=["check"],
        )
        for check in CHECKS:
            family.add_metric([check], float(bool(report[check]["ok"])))
        family.add_metric(["all"], float(bool(report["ok"])))
        yield family

    def _report_fresh(self) -> dict[str, Any] | None:
        from audit.reconciliation import reconciliation_report

        with self._lock:
            if self._report is None or time.monotonic() - self._taken_at > MAX_AGE_S:
                try:
                    self._report = reconciliation_report()
                except Exception:  # a failing collector drops its family, never the scrape
                    logger.warning("reconciliation: not collected", exc_info=True)
                    return None
                self._taken_at = time.monotonic()
            return self._report
