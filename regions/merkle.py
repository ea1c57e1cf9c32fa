"""Merkle anti-entropy between regions.

Every key hashes (md5 of type and key, first 32 bits, a generated column) into one of
``LEAVES`` key ranges; a leaf's hash is the md5 of the sorted digests of every row and
tombstone in its range, computed by Postgres in one query per region. The tree above the
leaves is built here. Two regions compare roots, then walk down only where hashes differ, and
repair only the keys of the differing leaves: missing tombstones and rows are copied (both are
insert-only, so a repair is idempotent and a copied row that its tombstone already removed is
skipped by the trigger), and a row whose content differs from the same dot elsewhere (changed
by hand) is set back to the content most regions hold (the origin's on a tie). Repairs are
written under the replication origin ``regions_repair``, so subscriptions with
``origin = none`` do not publish them again.

What logical replication alone cannot fix and this does: a subscription recreated after its
slot was lost (its publisher's changes in between never travel), a row changed or deleted by
hand, a region restored from an old backup.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from core.db import row_one
from regions import metrics
from regions.db import region_connect, region_connection

LEAF_BITS = 10
LEAVES = 1 << LEAF_BITS
SHIFT = 32 - LEAF_BITS
DEPTH = LEAF_BITS

ROW_DIGEST = (
    "md5(concat_ws('|', 'v', kind, key, origin, counter::text, context::text, "
    "coalesce(hlc::text, ''), value::text))"
)
TOMBSTONE_DIGEST = (
    "md5(concat_ws('|', 't', kind, key, origin, counter::text, by_region, reason, "
    "coalesce(detail::text, '')))"
)
LEAF_QUERY = f"""
SELECT key_hash >> {SHIFT} AS leaf, md5(string_agg(digest, ',' ORDER BY digest)), count(*)
FROM (
    SELECT key_hash, {ROW_DIGEST} AS digest FROM regions_row
    WHERE key_hash >= %(lo)s AND key_hash < %(hi)s
    UNION ALL
    SELECT key_hash, {TOMBSTONE_DIGEST} FROM regions_tombstone
    WHERE key_hash >= %(lo)s AND key_hash < %(hi)s
) items
GROUP BY 1
"""  # noqa: S608 - built from constants only


def leaf_hashes(region: str, first: int = 0, last: int = LEAVES) -> dict[int, str]:
    """Leaf -> hash for the leaves first..last-1 (absent: empty), one query."""
    with region_connection(region) as conn:
        rows = conn.execute(LEAF_QUERY, {"lo": first << SHIFT, "hi": last << SHIFT}).fetchall()
    return {leaf: digest for leaf, digest, _count in rows}


def keys_held(region: str) -> int:
    with region_connection(region) as conn:
        (count,) = row_one(
            conn.execute("SELECT count(*) FROM (SELECT DISTINCT kind, key FROM regions_row) k")
        )
    return count


def _node(left: str, right: str) -> str:
    if not left and not right:
        return ""
    return hashlib.md5(f"{left},{right}".encode(), usedforsecurity=False).hexdigest()


@dataclass
class MerkleTree:
    """levels[0] are the leaves, levels[DEPTH] == [root]."""

    levels: list[list[str]]

    @classmethod
    def from_leaves(cls, leaves: dict[int, str]) -> MerkleTree:
        level = [leaves.get(index, "") for index in range(LEAVES)]
        levels = [level]
        while len(level) > 1:
            level = [_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            levels.append(level)
        return cls(levels)

    @property
    def root(self) -> str:
        return self.levels[-1][0]


def tree_of(region: str) -> MerkleTree:
    return MerkleTree.from_leaves(leaf_hashes(region))


def trees_compare(a: MerkleTree, b: MerkleTree) -> tuple[list[int], int]:
    """(leaves that differ, hashes compared), walking down from the root only where the
    two trees differ."""
    differing: list[int] = []
    compared = 0
    pending = [(DEPTH, 0)]
    while pending:
        level, index = pending.pop()
        compared += 1
        if a.levels[level][index] == b.levels[level][index]:
            continue
        if level == 0:
            differing.append(index)
        else:
            pending += [(level - 1, 2 * index + 1), (level - 1, 2 * index)]
    return sorted(differing), compared


ROW_FIELDS = "kind, key, origin, counter, context, hlc, value, written_at"
TOMBSTONE_FIELDS = "kind, key, origin, counter, by_region, reason, detail, decided_at"


def _leaf_contents(region: str, leaves: list[int]) -> tuple[dict, dict]:
    """(rows, tombstones) of `leaves`: primary key -> (digest, fields)."""
    with region_connection(region) as conn:
        rows = {
            record[:4]: (record[-1], record[:-1])
            for record in conn.execute(
                f"SELECT {ROW_FIELDS}, {ROW_DIGEST} FROM regions_row "  # noqa: S608
                f"WHERE key_hash >> {SHIFT} = ANY(%s)",
                (leaves,),
            )
        }
        tombstones = {
            record[:5]: (record[-1], record[:-1])
            for record in conn.execute(
                f"SELECT {TOMBSTONE_FIELDS}, {TOMBSTONE_DIGEST} FROM regions_tombstone "  # noqa: S608
                f"WHERE key_hash >> {SHIFT} = ANY(%s)",
                (leaves,),
            )
        }
    return rows, tombstones


def _jsonb(record: tuple, indexes: tuple[int, ...]) -> tuple:
    return tuple(
        Jsonb(value) if index in indexes and value is not None else value
        for index, value in enumerate(record)
    )


@dataclass
class RepairPlan:
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    tombstones: dict[str, list[tuple]] = field(default_factory=dict)
    corrections: dict[str, list[tuple]] = field(default_factory=dict)
    removals: dict[str, list[tuple]] = field(default_factory=dict)
    keys: set[tuple[str, str]] = field(default_factory=set)


def repair_plan(group: list[str], leaves: list[int]) -> RepairPlan:
    """What each region of `group` lacks (or holds wrongly) in `leaves`."""
    contents = {region: _leaf_contents(region, leaves) for region in group}
    plan = RepairPlan()
    all_tombstones: dict[tuple, tuple] = {}
    for _rows, tombstones in contents.values():
        for pk, (_digest, fields) in tombstones.items():
            all_tombstones.setdefault(pk, fields)
    tombstoned = {pk[:4] for pk in all_tombstones}
    for region in group:
        stale = sorted(pk for pk in contents[region][0] if pk in tombstoned)
        if stale:
            plan.removals[region] = stale
            plan.keys.update(pk[:2] for pk in stale)
    for region in group:
        held = contents[region][1]
        missing = [fields for pk, fields in all_tombstones.items() if pk not in held]
        if missing:
            plan.tombstones[region] = missing
            plan.keys.update((fields[0], fields[1]) for fields in missing)
    row_keys = {pk for rows, _ in contents.values() for pk in rows} - tombstoned
    for pk in sorted(row_keys):
        holders = {region: contents[region][0][pk] for region in group if pk in contents[region][0]}
        votes = Counter(digest for digest, _fields in holders.values())
        top = max(votes.values())
        best = [digest for digest, count in votes.items() if count == top]
        origin = pk[2]
        if len(best) > 1 and origin in holders and holders[origin][0] in best:
            chosen = holders[origin][0]
        else:
            chosen = min(best)
        fields = next(f for d, f in holders.values() if d == chosen)
        for region in group:
            if region not in holders:
                plan.rows.setdefault(region, []).append(fields)
                plan.keys.add(pk[:2])
            elif holders[region][0] != chosen:
                plan.corrections.setdefault(region, []).append(fields)
                plan.keys.add(pk[:2])
    return plan


def _apply_plan(region: str, plan: RepairPlan) -> None:
    from regions.schema import REPAIR_ORIGIN

    rows = plan.rows.get(region, [])
    tombstones = plan.tombstones.get(region, [])
    corrections = plan.corrections.get(region, [])
    removals = plan.removals.get(region, [])
    if not (rows or tombstones or corrections or removals):
        return
    with region_connect(region, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(7471002)")
        conn.execute("SELECT pg_replication_origin_session_setup(%s)", (REPAIR_ORIGIN,))
        try:
            with conn.cursor() as cursor:
                if tombstones:
                    cursor.executemany(
                        f"INSERT INTO regions_tombstone ({TOMBSTONE_FIELDS}) "  # noqa: S608
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [_jsonb(t, (6,)) for t in tombstones],
                    )
                if rows:
                    cursor.executemany(
                        f"INSERT INTO regions_row ({ROW_FIELDS}) "  # noqa: S608
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [_jsonb(r, (4, 5, 6)) for r in rows],
                    )
                if removals:
                    cursor.executemany(
                        "DELETE FROM regions_row WHERE kind = %s AND key = %s AND origin = %s "
                        "AND counter = %s",
                        removals,
                    )
                if corrections:
                    cursor.executemany(
                        "UPDATE regions_row SET context = %s, hlc = %s, value = %s, "
                        "written_at = %s WHERE kind = %s AND key = %s AND origin = %s "
                        "AND counter = %s",
                        [(*_jsonb(r, (4, 5, 6))[4:8], *r[:4]) for r in corrections],
                    )
            conn.commit()
        finally:
            if not conn.closed:
                conn.rollback()
                conn.execute("SELECT pg_replication_origin_session_reset()")
                conn.commit()


@dataclass
class AntiEntropyReport:
    groups: list[list[str]]
    pairs: list[dict[str, Any]] = field(default_factory=list)
    hashes_compared: int = 0
    keys_held: dict[str, int] = field(default_factory=dict)
    leaves_differing: int = 0
    keys_repaired: int = 0
    rows_copied: int = 0
    tombstones_copied: int = 0
    rows_corrected: int = 0
    rows_removed: int = 0
    roots_before: dict[str, str] = field(default_factory=dict)
    reconciled: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "pairs": self.pairs,
            "hashes_compared": self.hashes_compared,
            "keys_held": self.keys_held,
            "leaves_differing": self.leaves_differing,
            "keys_repaired": self.keys_repaired,
            "rows_copied": self.rows_copied,
            "tombstones_copied": self.tombstones_copied,
            "rows_corrected": self.rows_corrected,
            "rows_removed": self.rows_removed,
            "roots_before": self.roots_before,
            "reconciled": self.reconciled,
            "duration_s": round(self.duration_s, 3),
        }


def group_anti_entropy(group: list[str], report: AntiEntropyReport) -> None:
    """Compare every pair of `group` (regions that can reach each other), repair the union of
    the leaves that differ in every region of the group."""
    trees = {region: tree_of(region) for region in group}
    for region in group:
        report.roots_before[region] = trees[region].root
        report.keys_held[region] = keys_held(region)
    differing: set[int] = set()
    for index, a in enumerate(group):
        for b in group[index + 1 :]:
            leaves, compared = trees_compare(trees[a], trees[b])
            report.pairs.append(
                {"regions": [a, b], "hashes_compared": compared, "leaves_differing": len(leaves)}
            )
            report.hashes_compared += compared
            differing.update(leaves)
    report.leaves_differing += len(differing)
    if not differing:
        return
    plan = repair_plan(group, sorted(differing))
    for region in group:
        _apply_plan(region, plan)
    report.keys_repaired += len(plan.keys)
    copied_rows = sum(len(rows) for rows in plan.rows.values())
    copied_tombstones = sum(len(rows) for rows in plan.tombstones.values())
    corrected = sum(len(rows) for rows in plan.corrections.values())
    removed = sum(len(rows) for rows in plan.removals.values())
    report.rows_removed += removed
    metrics.anti_entropy_repairs_total.labels("removed").inc(removed)
    report.rows_copied += copied_rows
    report.tombstones_copied += copied_tombstones
    report.rows_corrected += corrected
    metrics.anti_entropy_repairs_total.labels("row").inc(copied_rows)
    metrics.anti_entropy_repairs_total.labels("tombstone").inc(copied_tombstones)
    metrics.anti_entropy_repairs_total.labels("corrected").inc(corrected)


def anti_entropy_run(groups: list[list[str]], *, reconcile: bool = True) -> AntiEntropyReport:
    """One round over `groups` (each a list of regions that can reach one another); then, with
    `reconcile`, each group's first region resolves the conflicts it now holds."""
    from regions.reconcile import region_reconcile

    started = time.monotonic()
    report = AntiEntropyReport(groups=groups)
    for group in groups:
        group_anti_entropy(sorted(group), report)
    if reconcile:
        for group in groups:
            leader = sorted(group)[0]
            report.reconciled[leader] = region_reconcile(region=leader).as_dict()
    report.duration_s = time.monotonic() - started
    metrics.anti_entropy_runs_total.labels("ok").inc()
    return report


def roots() -> dict[str, str | None]:
    """Each region's Merkle root (None when it cannot be reached)."""
    from regions.conf import REGION_NAMES

    found: dict[str, str | None] = {}
    for region in REGION_NAMES:
        try:
            found[region] = tree_of(region).root
        except Exception:  # an unreachable region has no root
            found[region] = None
    return found
