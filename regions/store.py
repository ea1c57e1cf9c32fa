"""Reads and writes of one region's values (the Dynamo/Riak-style store of architecture section 9).

A write is local: one transaction in the chosen region, serialized per key by an advisory
lock, that inserts one row with a new dot and tombstones the rows it makes obsolete; logical
replication takes both to the other regions later. How a write chooses what it obsoletes:
- ``mv``: the rows whose dot the client's causal context covers (what the client read); the
  others stay as siblings (dotted version vectors, causal.clocks).
- ``lww``: every row the region holds; the row's hybrid logical clock is later than all of
  them. A held row that was concurrent with the winner and older is an acknowledged write
  discarded: its tombstone says ``lww_discarded`` and keeps its value.
- ``counter``, ``gcounter``, ``orset``, ``doc``: the new row holds the merge of every held
  row plus the operation, so it replaces them all (``folded``).
A read merges what the region holds: siblings for ``mv`` (300), the latest clock for ``lww``,
the merged state for the others.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from causal.clocks import Dot, VectorClock, Version, joined_context, new_dot, siblings
from causal.context import ContextError, context_decode, context_encode
from causal.hlc import HybridClock, Timestamp
from core.db import row_one
from regions import metrics
from regions.conf import REGION_NAMES, context_key, option
from regions.db import region_connection
from regions.errors import InvalidContext, InvalidKey, UnknownRegion
from regions.kinds import STATE_KINDS, Operation, kind_check, state_apply, state_fold

_clocks: dict[str, HybridClock] = {}
_clocks_lock = threading.Lock()

REASON_OVERWRITTEN = "overwritten"
REASON_FOLDED = "folded"
REASON_LWW_DISCARDED = "lww_discarded"


def region_check(region: str) -> str:
    if region not in REGION_NAMES:
        raise UnknownRegion(region=region)
    return region


def key_check(key: str) -> str:
    limit = option("max_key_length")
    if not key or len(key) > limit or not key.isprintable() or "/" in key:
        raise InvalidKey(f"A key is 1..{limit} printable characters without '/'.")
    return key


def hybrid_clock(region: str) -> HybridClock:
    with _clocks_lock:
        return _clocks.setdefault(region, HybridClock(region))


def context_scope(kind: str, key: str) -> str:
    return f"regions:{kind}:{key}"


def context_header(kind: str, key: str, clock: VectorClock) -> str:
    return context_encode(clock, key=context_key(), scope=context_scope(kind, key))


def context_parse(kind: str, key: str, header: str | None) -> VectorClock:
    try:
        return context_decode(header, key=context_key(), scope=context_scope(kind, key))
    except ContextError as error:
        raise InvalidContext(str(error)) from None


@dataclass(frozen=True)
class Row:
    kind: str
    key: str
    dot: Dot
    context: VectorClock
    hlc: Timestamp | None
    value: Any

    @property
    def version(self) -> Version:
        return Version(self.dot, self.context)

    @property
    def timestamp(self) -> Timestamp:
        """The hybrid logical clock of a row that has one (every ``lww`` row)."""
        if self.hlc is None:
            raise ValueError(f"the {self.kind} row {self.dot} has no hybrid logical clock")
        return self.hlc

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"dot": self.dot.as_list(), "value": self.value}
        if self.hlc is not None:
            described["hlc"] = self.hlc.as_list()
        return described


ROW_COLUMNS = "kind, key, origin, counter, context, hlc, value"


def row_from_db(record: tuple) -> Row:
    kind, key, origin, counter, context, hlc, value = record
    return Row(
        kind=kind,
        key=key,
        dot=Dot(origin, counter),
        context=VectorClock.of(context),
        hlc=Timestamp.from_list(hlc) if hlc is not None else None,
        value=value,
    )


def rows_held(conn: psycopg.Connection, kind: str, key: str) -> list[Row]:
    return [
        row_from_db(record)
        for record in conn.execute(
            f"SELECT {ROW_COLUMNS} FROM regions_row WHERE kind = %s AND key = %s "  # noqa: S608
            "ORDER BY origin, counter",
            (kind, key),
        )
    ]


def key_lock(conn: psycopg.Connection, kind: str, key: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7471))", (f"{kind}/{key}",))


def row_insert(conn: psycopg.Connection, row: Row) -> None:
    conn.execute(
        f"INSERT INTO regions_row ({ROW_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "  # noqa: S608
        "ON CONFLICT DO NOTHING",
        (
            row.kind,
            row.key,
            row.dot.replica,
            row.dot.counter,
            Jsonb(row.context.as_dict()),
            Jsonb(row.hlc.as_list()) if row.hlc else None,
            Jsonb(row.value),
        ),
    )


def tombstones_insert(
    conn: psycopg.Connection,
    rows: list[Row],
    *,
    by_region: str,
    reason: str,
    detail: dict[Dot, dict] | None = None,
) -> None:
    if not rows:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO regions_tombstone (kind, key, origin, counter, by_region, reason, detail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (
                    row.kind,
                    row.key,
                    row.dot.replica,
                    row.dot.counter,
                    by_region,
                    reason,
                    Jsonb((detail or {}).get(row.dot)) if (detail or {}).get(row.dot) else None,
                )
                for row in rows
            ],
        )


def dot_next(conn: psycopg.Connection, region: str, context: VectorClock, rows: list[Row]) -> Dot:
    """A dot never used before: the region's sequence, and past every event of this region
    that the context or the held rows know of (causal.clocks.new_dot)."""
    (sequence,) = row_one(conn.execute("SELECT nextval('regions_dot')"))
    known = new_dot(region, context, [row.dot for row in rows]).counter
    if known > sequence:
        conn.execute("SELECT setval('regions_dot', %s)", (known,))
    return Dot(region, max(sequence, known))


def lww_split(rows: list[Row]) -> tuple[Row | None, list[Row], list[Row]]:
    """(winner, discarded, overwritten): the winner has the latest hybrid logical clock (then
    the region id, part of the timestamp); a row concurrent with others (a sibling by its
    dot) that is not the winner was discarded; the rest were overwritten by a write that had
    seen them."""
    if not rows:
        return None, [], []
    winner = max(rows, key=lambda row: row.hlc or Timestamp(0, 0, ""))
    concurrent = {version.dot for version in siblings(row.version for row in rows)}
    discarded = [row for row in rows if row is not winner and row.dot in concurrent]
    overwritten = [row for row in rows if row is not winner and row.dot not in concurrent]
    return winner, discarded, overwritten


def lww_discard_detail(winner: Row, discarded: list[Row]) -> dict[Dot, dict]:
    return {
        row.dot: {
            "value": row.value,
            "hlc": row.hlc.as_list() if row.hlc else None,
            "winner": winner.dot.as_list(),
        }
        for row in discarded
    }


@dataclass
class WriteResult:
    region: str
    kind: str
    key: str
    dot: Dot
    context: VectorClock
    value: Any
    obsoleted: int
    discarded: list[dict] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "region": self.region,
            "type": self.kind,
            "key": self.key,
            "dot": self.dot.as_list(),
            "value": self.value,
            "obsoleted": self.obsoleted,
        }
        if self.kind == "lww":
            body["discarded"] = self.discarded
        return body


def region_value_write(
    *, region: str, kind: str, key: str, operation: Operation, context: VectorClock
) -> WriteResult:
    """Apply `operation` in `region` (one transaction); the answer's context covers the new
    row (and, for the merged types, everything it folded)."""
    region_check(region)
    kind_check(kind)
    key_check(key)
    with region_connection(region) as conn, conn.transaction():
        key_lock(conn, kind, key)
        rows = rows_held(conn, kind, key)
        dot = dot_next(conn, region, context, rows)
        hlc = None
        discarded: list[Row] = []
        if kind == "mv":
            obsolete = [row for row in rows if context.covers(row.dot)]
            row_context, value = context, operation.argument
            answer_context = row_context.with_dot(dot)
            tombstones_insert(conn, obsolete, by_region=region, reason=REASON_OVERWRITTEN)
        elif kind == "lww":
            clock = hybrid_clock(region)
            latest = max((row.hlc for row in rows if row.hlc), default=None)
            hlc = clock.observe(latest) if latest is not None else clock.now()
            winner, discarded, overwritten = lww_split(rows)
            obsolete = rows
            row_context = context.merge(joined_context(row.version for row in rows))
            value = operation.argument
            answer_context = row_context.with_dot(dot)
            if winner is not None:
                tombstones_insert(
                    conn,
                    [winner, *overwritten],
                    by_region=region,
                    reason=REASON_OVERWRITTEN,
                )
                tombstones_insert(
                    conn,
                    discarded,
                    by_region=region,
                    reason=REASON_LWW_DISCARDED,
                    detail=lww_discard_detail(winner, discarded),
                )
        else:
            state = state_fold(kind, [row.value for row in rows])
            value = state_apply(operation, state, region)
            obsolete = rows
            row_context = joined_context(row.version for row in rows)
            answer_context = row_context.with_dot(dot)
            if len(siblings(row.version for row in rows)) > 1:
                metrics.merges_total.labels(kind).inc()
            tombstones_insert(conn, rows, by_region=region, reason=REASON_FOLDED)
        row_insert(conn, Row(kind, key, dot, row_context, hlc, value))
    metrics.writes_total.labels(region, kind).inc()
    if discarded:
        metrics.lww_discarded_total.inc(len(discarded))
    shown = STATE_KINDS[kind].value(value) if kind in STATE_KINDS else value
    return WriteResult(
        region=region,
        kind=kind,
        key=key,
        dot=dot,
        context=answer_context,
        value=shown,
        obsoleted=len(obsolete),
        discarded=[row.describe() for row in discarded],
    )


@dataclass
class ReadResult:
    region: str
    kind: str
    key: str
    found: bool
    value: Any = None
    siblings: list[dict] = field(default_factory=list)
    context: VectorClock = field(default_factory=VectorClock)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conflicted(self) -> bool:
        return len(self.siblings) > 1

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"region": self.region, "type": self.kind, "key": self.key}
        if self.conflicted:
            body["siblings"] = self.siblings
        else:
            body["value"] = self.value
        body.update(self.extra)
        return body


def _lww_dropped(conn: psycopg.Connection, key: str) -> list[dict]:
    return [
        {"dot": [origin, counter], **(detail or {})}
        for origin, counter, detail in conn.execute(
            "SELECT DISTINCT ON (origin, counter) origin, counter, detail FROM regions_tombstone "
            "WHERE kind = 'lww' AND key = %s AND reason = %s ORDER BY origin, counter",
            (key, REASON_LWW_DISCARDED),
        )
    ]


def region_value_get(*, region: str, kind: str, key: str) -> ReadResult:
    """What `region` holds for the key, merged; siblings for concurrent ``mv`` versions."""
    region_check(region)
    kind_check(kind)
    key_check(key)
    with region_connection(region) as conn, conn.transaction():
        rows = rows_held(conn, kind, key)
        dropped = _lww_dropped(conn, key) if kind == "lww" else []
    result = ReadResult(region=region, kind=kind, key=key, found=bool(rows))
    result.context = joined_context(row.version for row in rows)
    if not rows:
        return result
    if kind == "mv":
        current = {version.dot for version in siblings(row.version for row in rows)}
        live = [row for row in rows if row.dot in current]
        if len(live) > 1:
            result.siblings = [row.describe() for row in live]
        else:
            result.value = live[0].value
            result.extra["dot"] = live[0].dot.as_list()
    elif kind == "lww":
        winner, discarded, _ = lww_split(rows)
        assert winner is not None  # rows is not empty
        result.value = winner.value
        known = {tuple(item["dot"]) for item in dropped}
        dropped += [
            {"dot": row.dot.as_list(), "value": row.value, "hlc": row.timestamp.as_list()}
            for row in discarded
            if (row.dot.replica, row.dot.counter) not in known
        ]
        result.extra.update(
            hlc=winner.timestamp.as_list(), dot=winner.dot.as_list(), discarded=dropped
        )
    else:
        state = state_fold(kind, [row.value for row in rows])
        result.value = STATE_KINDS[kind].value(state)
        if kind in ("counter", "gcounter"):
            result.extra["state"] = state
    return result


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
