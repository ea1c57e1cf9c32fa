"""What a storage node stores and the statements the coordinator runs there.

Each node's database holds:
- ``quorum_versions``: the versions of each key it replicates, one row per *dot* (the write
  event: the node that issued it and that node's counter), with the causal context its writer
  had read and the value (JSON text). Insert-only per dot; a version leaves only when a stored
  version's context covers its dot (it is obsolete).
- ``quorum_counters``: per key, the last counter this node issued as a write's coordinator, so
  that its dots are never reused even after the versions carrying them were removed.
- ``quorum_hints``: versions this node keeps for another node (the *intended* one) that was down
  when a sloppy write was made; handed off and deleted when that node acknowledges them.

Every operation is one statement (a function call, or one SELECT) in autocommit, so that it
costs one round trip on a slow route, and each function serialises the writes of one key on
the node with a transaction-level advisory lock.

The schema is owned here, not by Django migrations: the nodes are not Django databases (the
test runner would need them for every run); ``quorum_schema_setup`` is idempotent and runs from
``manage.py quorum_setup`` (``make run``'s migrate step) and the test fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from causal.clocks import Dot, VectorClock, Version
from core.db import row_one

SCHEMA_VERSION = 1

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS quorum_versions (
    key text NOT NULL,
    dot_node text NOT NULL,
    dot_counter bigint NOT NULL CHECK (dot_counter > 0),
    context jsonb NOT NULL,
    value text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (key, dot_node, dot_counter)
);
CREATE TABLE IF NOT EXISTS quorum_counters (
    key text PRIMARY KEY,
    counter bigint NOT NULL CHECK (counter > 0)
);
CREATE TABLE IF NOT EXISTS quorum_hints (
    id bigserial PRIMARY KEY,
    intended_node text NOT NULL,
    key text NOT NULL,
    dot_node text NOT NULL,
    dot_counter bigint NOT NULL CHECK (dot_counter > 0),
    context jsonb NOT NULL,
    value text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (intended_node, key, dot_node, dot_counter)
);

-- Store versions of one key: each unless a stored version's context already covers its dot
-- (then it is obsolete here), and remove the stored versions its context covers.
CREATE OR REPLACE FUNCTION quorum_store(p_key text, p_versions jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb;
    added integer := 0;
    removed integer := 0;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
    FOR v IN SELECT * FROM jsonb_array_elements(p_versions) LOOP
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM quorum_versions q
            WHERE q.key = p_key
              AND coalesce((q.context ->> (v ->> 'node'))::bigint, 0) >= (v ->> 'counter')::bigint
        );
        INSERT INTO quorum_versions (key, dot_node, dot_counter, context, value)
        VALUES (p_key, v ->> 'node', (v ->> 'counter')::bigint, v -> 'context', v ->> 'value')
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        added := added + n;
        DELETE FROM quorum_versions q
        WHERE q.key = p_key
          AND coalesce(((v -> 'context') ->> q.dot_node)::bigint, 0) >= q.dot_counter;
        GET DIAGNOSTICS n = ROW_COUNT;
        removed := removed + n;
    END LOOP;
    RETURN jsonb_build_object('added', added, 'removed', removed);
END $$;

-- Keep versions for another node (a sloppy write's hint), once per (intended node, dot).
CREATE OR REPLACE FUNCTION quorum_hint(p_intended text, p_key text, p_versions jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO quorum_hints (intended_node, key, dot_node, dot_counter, context, value)
    SELECT p_intended, p_key, v ->> 'node', (v ->> 'counter')::bigint, v -> 'context', v ->> 'value'
    FROM jsonb_array_elements(p_versions) v
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Coordinate a write: issue this node's next dot for the key (past its own counter and past
-- what the writer's context knows of this node), and store the version here, or keep it as a
-- hint for p_hint_for when this node stands in for it. Returns the dot's counter.
CREATE OR REPLACE FUNCTION quorum_coordinate(
    p_key text, p_node text, p_context jsonb, p_value text, p_hint_for text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    issued bigint;
    version jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
    SELECT greatest(coalesce(max(c.counter), 0), coalesce((p_context ->> p_node)::bigint, 0)) + 1
    INTO issued FROM quorum_counters c WHERE c.key = p_key;
    INSERT INTO quorum_counters (key, counter) VALUES (p_key, issued)
    ON CONFLICT (key) DO UPDATE SET counter = EXCLUDED.counter;
    version := jsonb_build_array(jsonb_build_object(
        'node', p_node, 'counter', issued, 'context', p_context, 'value', p_value));
    IF p_hint_for IS NULL THEN
        PERFORM quorum_store(p_key, version);
    ELSE
        PERFORM quorum_hint(p_hint_for, p_key, version);
    END IF;
    RETURN issued;
END $$;

CREATE TABLE IF NOT EXISTS quorum_schema (version integer NOT NULL);
"""


@dataclass(frozen=True)
class StoredVersion:
    """A version as a node stores it: its causal identity and its value (JSON text)."""

    version: Version
    value_json: str

    @property
    def dot(self) -> Dot:
        return self.version.dot

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)

    def as_row(self) -> dict[str, Any]:
        return {
            "node": self.dot.replica,
            "counter": self.dot.counter,
            "context": self.version.context.as_dict(),
            "value": self.value_json,
        }


@dataclass(frozen=True)
class Hint:
    id: int
    intended: str
    key: str
    stored: StoredVersion


def _stored(node: str, counter: int, context: dict, value: str) -> StoredVersion:
    return StoredVersion(Version(Dot(node, counter), VectorClock.of(context)), value)


def _rows(versions: Iterable[StoredVersion]) -> Jsonb:
    return Jsonb([stored.as_row() for stored in versions])


def schema_create(connection: psycopg.Connection) -> None:
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext('quorum_schema'))")
        connection.execute(SCHEMA_SQL)
        connection.execute("DELETE FROM quorum_schema")
        connection.execute("INSERT INTO quorum_schema (version) VALUES (%s)", (SCHEMA_VERSION,))


def coordinate(
    connection: psycopg.Connection,
    *,
    key: str,
    node: str,
    context: VectorClock,
    value_json: str,
    hint_for: str | None,
) -> int:
    (counter,) = row_one(
        connection.execute(
            "SELECT quorum_coordinate(%s, %s, %s, %s, %s)",
            (key, node, Jsonb(context.as_dict()), value_json, hint_for),
        )
    )
    return int(counter)


def versions_store(
    connection: psycopg.Connection, *, key: str, versions: Iterable[StoredVersion]
) -> dict[str, int]:
    (result,) = row_one(connection.execute("SELECT quorum_store(%s, %s)", (key, _rows(versions))))
    return result


def hint_store(
    connection: psycopg.Connection,
    *,
    intended: str,
    key: str,
    versions: Iterable[StoredVersion],
) -> int:
    (added,) = row_one(
        connection.execute("SELECT quorum_hint(%s, %s, %s)", (intended, key, _rows(versions)))
    )
    return int(added)


def versions_read(connection: psycopg.Connection, *, key: str) -> list[StoredVersion]:
    rows = connection.execute(
        "SELECT dot_node, dot_counter, context, value FROM quorum_versions WHERE key = %s",
        (key,),
    ).fetchall()
    return [_stored(*row) for row in rows]


def hints_read(connection: psycopg.Connection, *, limit: int) -> list[Hint]:
    rows = connection.execute(
        "SELECT id, intended_node, key, dot_node, dot_counter, context, value "
        "FROM quorum_hints ORDER BY id LIMIT %s",
        (limit,),
    ).fetchall()
    return [Hint(row[0], row[1], row[2], _stored(*row[3:])) for row in rows]


def hints_delete(connection: psycopg.Connection, *, ids: list[int]) -> int:
    return connection.execute("DELETE FROM quorum_hints WHERE id = ANY(%s)", (ids,)).rowcount


def hints_count(connection: psycopg.Connection) -> dict[str, int]:
    rows = connection.execute(
        "SELECT intended_node, count(*) FROM quorum_hints GROUP BY intended_node"
    ).fetchall()
    return {intended: int(count) for intended, count in rows}
