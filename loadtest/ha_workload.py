"""Workloads over the HA cluster that record what they did as histories (architecture section 11):
JSON lines ``{"process", "session", "type": invoke|ok|fail|info, "f", "key", "value",
"time"}`` (``time`` in ns since the history began; extra fields may follow).

- ``SqlWriteLoop``: writers that each insert their own keys on the leader (multi-host,
  read-write), every insert an ``invoke`` and then ``ok`` (committed and acknowledged),
  ``fail`` (refused: not written) or ``info`` (no answer in time: unknown);
  ``sql_final_reads`` appends what the cluster holds afterwards, one read per key.
- ``SmrLoop``: clients of the state machine on etcd (increments of one counter,
  compare-and-set and set of keys of their own, reads).

``lost_acknowledged_writes`` counts the writes acknowledged and then missing from the final
reads; ``smr_check`` checks an SMR history (no acknowledged increment lost, revisions
monotonic in real time). TODO(lead): run the ``checker`` package's linearizability check
over these files once it is on main.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
WRITES_TABLE = "ha_writes"


class History:
    """A thread-safe, append-only list of events, written as JSON lines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.started_ns = time.monotonic_ns()

    def now(self) -> int:
        return time.monotonic_ns() - self.started_ns

    def record(self, process: int, kind: str, f: str, key: str, value: Any, **extra: Any) -> None:
        event = {
            "process": process,
            "session": process,
            "type": kind,
            "f": f,
            "key": key,
            "value": value,
            "time": self.now(),
            **extra,
        }
        with self._lock:
            self.events.append(event)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, path.open("w") as out:
            for event in self.events:
                out.write(json.dumps(event, sort_keys=True) + "\n")
        return path

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- SQL writes on the leader ------------------------------------------------------------


def writes_table_create(conninfo: dict[str, Any]) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {WRITES_TABLE} "
            "(key text PRIMARY KEY, value bigint NOT NULL, written_at timestamptz DEFAULT now())"
        )


class SqlWriteLoop:
    """``writers`` concurrent writers (asyncio, one connection each) inserting keys of their
    own into ``ha_writes`` until stopped; an insert without an answer within ``timeout_s`` is
    ``info`` and its connection is dropped (a frozen or dead leader answers nothing)."""

    def __init__(
        self,
        conninfo: dict[str, Any],
        history: History,
        *,
        writers: int = 4,
        timeout_s: float = 2.0,
        prefix: str = "w",
        pause_s: float = 0.0,
    ) -> None:
        self.conninfo = conninfo
        self.history = history
        self.writers = writers
        self.timeout_s = timeout_s
        self.prefix = prefix
        self.pause_s = pause_s
        self.keys: list[str] = []
        self.acknowledged_at: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sql-writes", daemon=True)

    def start(self) -> SqlWriteLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s * 4 + 30)

    def outage_after(self, instant_ns: int, within_ns: int = 10**10) -> tuple[int, int] | None:
        """The longest stretch without an acknowledged write that ends after ``instant_ns``
        and starts within ``within_ns`` of it, as (start, end) history times: writes in
        flight on a leader being killed may still be acknowledged just after the kill's
        instant, so the first acknowledgement after it says nothing; the end of the outage
        is the first write the new leader acknowledged."""
        acknowledged = sorted(self.acknowledged_at)
        gaps = [
            (earlier, later)
            for earlier, later in itertools.pairwise(acknowledged)
            if later > instant_ns and earlier < instant_ns + within_ns
        ]
        return max(gaps, key=lambda gap: gap[1] - gap[0], default=None)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        await asyncio.gather(*(self._writer(number) for number in range(self.writers)))

    async def _connect(self) -> psycopg.AsyncConnection | None:
        try:
            return await asyncio.wait_for(
                psycopg.AsyncConnection.connect(**self.conninfo, autocommit=True),
                self.timeout_s,
            )
        except (TimeoutError, psycopg.Error, OSError):
            return None

    async def _writer(self, process: int) -> None:
        conn: psycopg.AsyncConnection | None = None
        number = 0
        while not self._stop.is_set():
            if conn is None:
                conn = await self._connect()
                if conn is None:
                    await asyncio.sleep(0.05)
                    continue
            number += 1
            key = f"{self.prefix}{process}-{number}"
            self.keys.append(key)
            self.history.record(process, INVOKE, "write", key, number)
            try:
                await asyncio.wait_for(
                    conn.execute(
                        f"INSERT INTO {WRITES_TABLE} (key, value) VALUES (%s, %s)",  # noqa: S608
                        (key, number),
                    ),
                    self.timeout_s,
                )
            except TimeoutError:
                self.history.record(process, INFO, "write", key, number, error="timeout")
                await _abandon(conn)
                conn = None
                process += self.writers  # an info write stays open: a new process id
            except psycopg.OperationalError as error:
                self.history.record(process, INFO, "write", key, number, error=_line(error))
                await _abandon(conn)
                conn = None
                process += self.writers
            except psycopg.Error as error:
                self.history.record(process, FAIL, "write", key, number, error=_line(error))
                await _abandon(conn)
                conn = None
            else:
                self.history.record(process, OK, "write", key, number)
                self.acknowledged_at.append(self.history.now())
            if self.pause_s:
                await asyncio.sleep(self.pause_s)


async def _abandon(conn: psycopg.AsyncConnection) -> None:
    """Drop a connection that may hang (a frozen server never answers a clean close)."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()


def _line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def sql_final_reads(
    conninfo: dict[str, Any], history: History, keys: Iterable[str], *, process: int = 1000
) -> dict[str, int]:
    """Read every written key on the leader now; record each as a read (value None when the
    key is absent); the values found."""
    keys = list(dict.fromkeys(keys))
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        rows = dict(
            conn.execute(
                f"SELECT key, value FROM {WRITES_TABLE} WHERE key = ANY(%s)",  # noqa: S608
                (keys,),
            ).fetchall()
        )
    for key in keys:
        history.record(process, INVOKE, "read", key, None)
        history.record(process, OK, "read", key, rows.get(key))
    return rows


def lost_acknowledged_writes(events: list[dict[str, Any]]) -> list[str]:
    """Keys whose write was acknowledged (``ok``) and whose last read found nothing."""
    acknowledged = {e["key"] for e in events if e["f"] == "write" and e["type"] == OK}
    last_read: dict[str, Any] = {}
    for event in events:
        if event["f"] == "read" and event["type"] == OK:
            last_read[event["key"]] = event["value"]
    return sorted(key for key in acknowledged if key in last_read and last_read[key] is None)


def unknown_writes_found(events: list[dict[str, Any]]) -> tuple[int, int]:
    """(writes of unknown outcome, how many of them the final reads found)."""
    unknown = {e["key"] for e in events if e["f"] == "write" and e["type"] == INFO}
    found = {
        e["key"]
        for e in events
        if e["f"] == "read" and e["type"] == OK and e["value"] is not None and e["key"] in unknown
    }
    return len(unknown), len(found)


# ---- the state machine on etcd -------------------------------------------------------------


class SmrLoop:
    """``clients`` threads applying operations to the state machine until stopped: increments
    of ``counter`` (delta 1), compare-and-set and set of a key of their own, linearizable
    reads of the counter. Errors of the service's kinds become ``fail`` (definitely not
    applied) or ``info`` (outcome unknown)."""

    def __init__(self, machine: Any, history: History, *, clients: int = 3, prefix: str = "smr"):
        self.machine = machine
        self.history = history
        self.clients = clients
        self.counter = f"{prefix}-counter"
        self.prefix = prefix
        self.completed = 0
        self.acknowledged_at: list[int] = []
        self.failed_at: list[int] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(number,), daemon=True)
            for number in range(clients)
        ]

    def start(self) -> SmrLoop:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _client(self, process: int) -> None:
        from ha.errors import SmrCompareFailed, SmrOutcomeUnknown, SmrUnavailable

        rng = random.Random(process)  # noqa: S311 - workload shape
        own = f"{self.prefix}-{process}"
        expected: Any = None
        while not self._stop.is_set():
            choice = rng.random()
            if choice < 0.5:
                f, key, value = "increment", self.counter, 1
                operation = {"op": "increment", "key": key, "delta": 1}
            elif choice < 0.7:
                f, key, value = "cas", own, [expected, rng.randint(0, 10**6)]
                operation = {"op": "cas", "key": key, "expected": value[0], "value": value[1]}
            elif choice < 0.85:
                f, key, value = "write", own, rng.randint(0, 10**6)
                operation = {"op": "set", "key": key, "value": value}
            else:
                f, key, value, operation = "read", self.counter, None, None
            self.history.record(process, INVOKE, f, key, value)
            try:
                if operation is None:
                    result = self.machine.read(key)
                else:
                    result = self.machine.apply(operation)
            except SmrCompareFailed as error:
                self.history.record(
                    process, FAIL, f, key, value, error=error.code, found=error.data.get("value")
                )
                expected = error.data.get("value")
                self.failed_at.append(self.history.now())
                continue
            except SmrOutcomeUnknown as error:
                self.history.record(process, INFO, f, key, value, error=error.code)
                expected = None
                process += self.clients  # an info operation stays open: a new process id
                continue
            except SmrUnavailable as error:
                self.history.record(process, FAIL, f, key, value, error=error.code)
                self.failed_at.append(self.history.now())
                time.sleep(0.02)
                continue
            observed = result.value if f in {"read", "increment"} else value
            self.history.record(
                process,
                OK,
                f,
                key,
                observed,
                revision=result.revision,
                raft_term=result.raft_term,
                raft_index=result.raft_index,
            )
            if f == "cas":
                expected = value[1]
            elif f == "write":
                expected = value
            self.completed += 1
            self.acknowledged_at.append(self.history.now())


def smr_check(events: list[dict[str, Any]], final_counter: int, counter: str) -> dict[str, Any]:
    """What can be checked without a linearizability checker:

    - no acknowledged increment lost: the final counter is at least the acknowledged
      increments and at most those plus the unknown ones;
    - each acknowledged increment returned a distinct value (no two applied at one state);
    - revisions monotonic in real time: an operation acknowledged before another was invoked
      has a revision at most the other's (strictly less for two writes).
    """
    acknowledged = sum(
        1 for e in events if e["f"] == "increment" and e["type"] == OK and e["key"] == counter
    )
    unknown = sum(
        1 for e in events if e["f"] == "increment" and e["type"] == INFO and e["key"] == counter
    )
    results = [e["value"] for e in events if e["f"] == "increment" and e["type"] == OK]
    operations = []
    open_calls: dict[int, dict[str, Any]] = {}
    for event in events:
        if event["type"] == INVOKE:
            open_calls[event["process"]] = event
        elif event["type"] == OK and event["process"] in open_calls and "revision" in event:
            start = open_calls.pop(event["process"])
            operations.append(
                (start["time"], event["time"], event["revision"], event["f"] != "read")
            )
        else:
            open_calls.pop(event["process"], None)
    operations.sort()
    violations = 0
    by_end = sorted(operations, key=lambda op: op[1])
    highest_write, highest_any = 0, 0
    index = 0
    for start, _end, revision, is_write in operations:
        while index < len(by_end) and by_end[index][1] < start:
            _s, _e, done_revision, done_write = by_end[index]
            highest_any = max(highest_any, done_revision)
            if done_write:
                highest_write = max(highest_write, done_revision)
            index += 1
        if revision < highest_any or (is_write and revision <= highest_write):
            violations += 1
    return {
        "acknowledged_increments": acknowledged,
        "unknown_increments": unknown,
        "final_counter": final_counter,
        "lost_increments": max(0, acknowledged - final_counter),
        "counter_within_bounds": acknowledged <= final_counter <= acknowledged + unknown,
        "duplicate_increment_results": len(results) - len(set(results)),
        "revision_order_violations": violations,
        "operations_checked": len(operations),
    }
