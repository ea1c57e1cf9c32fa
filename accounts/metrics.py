"""Metrics of the accounts service (its saga steps share ``core.metrics.step_timer``)."""

from __future__ import annotations

from prometheus_client import Counter

deposit_resends = Counter(
    "statelab_deposit_event_resends_total",
    "Deposit events sent again because the ledger had not acknowledged their journal entry",
)
