"""Reconciliation: what a region does with the concurrent versions replication brought it.

Run by one region per connected group (the first by name), after anti-entropy: so that two
regions never fold the same rows into two new rows that would then need folding again. Per key
holding more than one row:
- ``mv``: rows another row's context covers are tombstoned; concurrent siblings stay until a
  client (or the admin) writes with a context covering them: they need manual resolution.
- ``lww``: the latest clock wins; the concurrent older rows are tombstoned as
  ``lww_discarded`` (acknowledged writes lost, counted), the rest as overwritten.
- ``counter``, ``gcounter``, ``orset``, ``doc``: merged into one new row (regions.crdts).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from causal.clocks import joined_context, siblings
from regions import metrics
from regions.db import region_connection
from regions.kinds import state_fold
from regions.store import (
    REASON_FOLDED,
    REASON_LWW_DISCARDED,
    REASON_OVERWRITTEN,
    Row,
    dot_next,
    key_lock,
    lww_discard_detail,
    lww_split,
    row_insert,
    rows_held,
    tombstones_insert,
)


@dataclass
class ReconcileReport:
    region: str
    keys_examined: int = 0
    conflicts: Counter = field(default_factory=Counter)
    merged: Counter = field(default_factory=Counter)
    lww_discarded: int = 0
    siblings_open: int = 0
    cleaned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "keys_examined": self.keys_examined,
            "conflicts": dict(self.conflicts),
            "merged": dict(self.merged),
            "lww_discarded": self.lww_discarded,
            "siblings_open": self.siblings_open,
            "cleaned": self.cleaned,
        }


def _first_seen(conn, kind: str, key: str, rows: list[Row]) -> bool:
    marker = ",".join(f"{row.dot.replica}:{row.dot.counter}" for row in rows)
    inserted = conn.execute(
        "INSERT INTO regions_conflict_seen (kind, key, siblings) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        (kind, key, marker),
    ).fetchone()
    return inserted is not None


def _reconcile_key(conn, region: str, kind: str, key: str, report: ReconcileReport) -> None:
    key_lock(conn, kind, key)
    rows = rows_held(conn, kind, key)
    if len(rows) < 2:
        return
    current = {version.dot for version in siblings(row.version for row in rows)}
    concurrent = [row for row in rows if row.dot in current]
    dominated = [row for row in rows if row.dot not in current]
    if kind == "mv":
        tombstones_insert(conn, dominated, by_region=region, reason=REASON_OVERWRITTEN)
        report.cleaned += len(dominated)
        if len(concurrent) > 1:
            report.siblings_open += 1
            if _first_seen(conn, kind, key, concurrent):
                report.conflicts[kind] += 1
                metrics.conflicts_detected_total.labels(kind).inc()
        return
    if len(concurrent) > 1:
        report.conflicts[kind] += 1
        metrics.conflicts_detected_total.labels(kind).inc()
    if kind == "lww":
        winner, discarded, overwritten = lww_split(rows)
        assert winner is not None  # rows holds two or more
        tombstones_insert(conn, overwritten, by_region=region, reason=REASON_OVERWRITTEN)
        tombstones_insert(
            conn,
            discarded,
            by_region=region,
            reason=REASON_LWW_DISCARDED,
            detail=lww_discard_detail(winner, discarded),
        )
        report.lww_discarded += len(discarded)
        report.cleaned += len(overwritten)
        metrics.lww_discarded_total.inc(len(discarded))
        return
    context = joined_context(row.version for row in rows)
    dot = dot_next(conn, region, context, rows)
    merged = state_fold(kind, [row.value for row in rows])
    tombstones_insert(conn, rows, by_region=region, reason=REASON_FOLDED)
    row_insert(conn, Row(kind, key, dot, context, None, merged))
    report.merged[kind] += 1
    metrics.merges_total.labels(kind).inc()


def region_reconcile(*, region: str, key_prefix: str | None = None) -> ReconcileReport:
    """Resolve, in `region`, every key that holds more than one row (one transaction per key)."""
    report = ReconcileReport(region=region)
    with region_connection(region) as conn:
        with conn.transaction():
            candidates = conn.execute(
                "SELECT kind, key FROM regions_row WHERE key LIKE %s "
                "GROUP BY kind, key HAVING count(*) > 1 ORDER BY kind, key",
                ((key_prefix or "").replace("%", r"\%").replace("_", r"\_") + "%",),
            ).fetchall()
        for kind, key in candidates:
            report.keys_examined += 1
            with conn.transaction():
                _reconcile_key(conn, region, kind, key, report)
    return report
