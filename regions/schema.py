"""What each region's database holds, and the full mesh of logical replication between them.

Tables (the same in every region):
- ``regions_row``: one row per write, keyed by its dot ``(kind, key, origin, counter)``: the
  region that accepted the write and that region's counter, so two regions never insert the
  same key. A row is never updated.
- ``regions_tombstone``: "the row with this dot is obsolete", keyed by the dot *and* the region
  that decided it (``by_region``), so two regions obsoleting the same row concurrently insert
  two different tombstones, never the same key twice. Never updated, never deleted.
- ``regions_naive``: the split-brain vignette's naive store, plain rows updated in place.

The publication carries inserts only (``publish = 'insert'``; the naive table's updates too).
Removing an obsolete row is a local consequence of its tombstone in every region: a trigger
deletes the row when its tombstone arrives, and skips a row that arrives after its tombstone
or that is already there. So whatever order rows and tombstones travel in, and however often a
repair copies them, every region ends with the same rows: the union of tombstones, and the
union of rows minus the tombstoned ones. Replication never meets a conflict: no replicated
DELETE or UPDATE, no INSERT of an existing key (the trigger turns it into a no-op).

The triggers take the key's advisory lock (the one a write takes, regions.store.key_lock): a
row and its tombstone arriving at once through two apply workers would otherwise each miss the
other (both uncommitted) and both stay. They set their own search_path: an apply worker runs
with an empty one.

Subscriptions: region b subscribes to a's publication as ``<database>_<a>_to_<b>`` through the
proxy's route "a->b", with ``origin = none`` (PostgreSQL 16) so that b receives only what a's
clients wrote, not what a received from c, and ``copy_data = false`` (anti-entropy fills what a
new subscription did not see). Repairs write under the replication origin ``regions_repair`` so
that they are not published again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from regions.conf import REGION_NAMES, RegionAddress, region_addresses
from regions.db import region_connect
from regions.links import route_endpoint

PUBLICATION = "regions_data"
NAIVE_PUBLICATION = "regions_naive"
REPAIR_ORIGIN = "regions_repair"

DDL = """
CREATE TABLE IF NOT EXISTS regions_row (
    kind text NOT NULL,
    key text NOT NULL,
    origin text NOT NULL,
    counter bigint NOT NULL,
    context jsonb NOT NULL,
    hlc jsonb,
    value jsonb NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    key_hash bigint GENERATED ALWAYS AS (
        ('x' || substr(md5(kind || '/' || key), 1, 8))::bit(32)::bigint
    ) STORED,
    PRIMARY KEY (kind, key, origin, counter)
);
CREATE INDEX IF NOT EXISTS regions_row_key_hash ON regions_row (key_hash);
CREATE TABLE IF NOT EXISTS regions_tombstone (
    kind text NOT NULL,
    key text NOT NULL,
    origin text NOT NULL,
    counter bigint NOT NULL,
    by_region text NOT NULL,
    reason text NOT NULL,
    detail jsonb,
    decided_at timestamptz NOT NULL DEFAULT now(),
    key_hash bigint GENERATED ALWAYS AS (
        ('x' || substr(md5(kind || '/' || key), 1, 8))::bit(32)::bigint
    ) STORED,
    PRIMARY KEY (kind, key, origin, counter, by_region)
);
CREATE INDEX IF NOT EXISTS regions_tombstone_key_hash ON regions_tombstone (key_hash);
CREATE INDEX IF NOT EXISTS regions_tombstone_dot ON regions_tombstone (kind, key, origin, counter);
CREATE TABLE IF NOT EXISTS regions_naive (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    region text NOT NULL
);
-- Local to each region (not published): which open conflicts this region already counted.
CREATE TABLE IF NOT EXISTS regions_conflict_seen (
    kind text NOT NULL,
    key text NOT NULL,
    siblings text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key, siblings)
);
CREATE SEQUENCE IF NOT EXISTS regions_dot;

CREATE OR REPLACE FUNCTION regions_row_admit() RETURNS trigger LANGUAGE plpgsql
SET search_path = public AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.kind || '/' || NEW.key, 7471));
    IF EXISTS (SELECT 1 FROM regions_tombstone t WHERE t.kind = NEW.kind AND t.key = NEW.key
               AND t.origin = NEW.origin AND t.counter = NEW.counter)
       OR EXISTS (SELECT 1 FROM regions_row r WHERE r.kind = NEW.kind AND r.key = NEW.key
               AND r.origin = NEW.origin AND r.counter = NEW.counter) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION regions_tombstone_admit() RETURNS trigger LANGUAGE plpgsql
SET search_path = public AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.kind || '/' || NEW.key, 7471));
    IF EXISTS (SELECT 1 FROM regions_tombstone t WHERE t.kind = NEW.kind AND t.key = NEW.key
               AND t.origin = NEW.origin AND t.counter = NEW.counter
               AND t.by_region = NEW.by_region) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION regions_tombstone_apply() RETURNS trigger LANGUAGE plpgsql
SET search_path = public AS $$
BEGIN
    DELETE FROM regions_row r WHERE r.kind = NEW.kind AND r.key = NEW.key
        AND r.origin = NEW.origin AND r.counter = NEW.counter;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS regions_row_admit ON regions_row;
CREATE TRIGGER regions_row_admit BEFORE INSERT ON regions_row
    FOR EACH ROW EXECUTE FUNCTION regions_row_admit();
ALTER TABLE regions_row ENABLE ALWAYS TRIGGER regions_row_admit;
DROP TRIGGER IF EXISTS regions_tombstone_admit ON regions_tombstone;
CREATE TRIGGER regions_tombstone_admit BEFORE INSERT ON regions_tombstone
    FOR EACH ROW EXECUTE FUNCTION regions_tombstone_admit();
ALTER TABLE regions_tombstone ENABLE ALWAYS TRIGGER regions_tombstone_admit;
DROP TRIGGER IF EXISTS regions_tombstone_apply ON regions_tombstone;
CREATE TRIGGER regions_tombstone_apply AFTER INSERT ON regions_tombstone
    FOR EACH ROW EXECUTE FUNCTION regions_tombstone_apply();
ALTER TABLE regions_tombstone ENABLE ALWAYS TRIGGER regions_tombstone_apply;
"""


def subscription_name(database: str, publisher: str, subscriber: str) -> str:
    """Also the slot's name on the publisher: unique per database, since slots are per server
    and two databases (development and tests) may use the same regions."""
    safe = re.sub(r"[^a-z0-9_]", "_", database.lower())[:40]
    return f"{safe}_{publisher}_to_{subscriber}"


@dataclass
class SetupReport:
    database: str
    created_databases: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "database": self.database,
            "created_databases": self.created_databases,
            "links": self.links,
        }


def _ensure_database(address: RegionAddress) -> bool:
    with region_connect(address.name, database="postgres") as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (address.database,)
        ).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(address.database)))
        return True


def _ensure_schema(region: str) -> None:
    with region_connect(region, autocommit=False) as conn:
        # Two processes setting up at once (web and worker) take turns.
        conn.execute("SELECT pg_advisory_xact_lock(7471001)")
        conn.execute(DDL)
        if not conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (PUBLICATION,)
        ).fetchone():
            conn.execute(
                sql.SQL(
                    "CREATE PUBLICATION {} FOR TABLE regions_row, regions_tombstone "
                    "WITH (publish = 'insert')"
                ).format(sql.Identifier(PUBLICATION))
            )
        if not conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (NAIVE_PUBLICATION,)
        ).fetchone():
            conn.execute(
                sql.SQL(
                    "CREATE PUBLICATION {} FOR TABLE regions_naive "
                    "WITH (publish = 'insert, update')"
                ).format(sql.Identifier(NAIVE_PUBLICATION))
            )
        if not conn.execute(
            "SELECT 1 FROM pg_replication_origin WHERE roname = %s", (REPAIR_ORIGIN,)
        ).fetchone():
            conn.execute("SELECT pg_replication_origin_create(%s)", (REPAIR_ORIGIN,))
        # Dots are never reused, even by a region whose sequence restarted (restored, rebuilt).
        conn.execute(
            "SELECT setval('regions_dot', greatest("
            "(SELECT last_value FROM regions_dot), "
            "(SELECT coalesce(max(counter), 1) FROM regions_row WHERE origin = %(r)s), "
            "(SELECT coalesce(max(counter), 1) FROM regions_tombstone WHERE origin = %(r)s)))",
            {"r": region},
        )
        conn.commit()


def _slot_state(publisher: str, slot: str) -> tuple[bool, str | None, int | None]:
    """(exists, wal_status, active_pid) of a slot on the publisher."""
    with region_connect(publisher) as conn:
        row = conn.execute(
            "SELECT wal_status, active_pid FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    return (row is not None, row[0] if row else None, row[1] if row else None)


def _drop_subscription_locally(conn: psycopg.Connection, name: str) -> None:
    """Drop a subscription without asking its publisher (the link may be cut, the slot lost)."""
    ident = sql.Identifier(name)
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
    conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))


def _drop_slot(publisher: str, slot: str) -> None:
    with region_connect(publisher) as conn:
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is None:
            return
        if row[0] is not None:
            conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def link_ensure(publisher: str, subscriber: str) -> str:
    """Make the subscription of `subscriber` to `publisher` exist and have a usable slot;
    recreate it when the slot was lost (past max_slot_wal_keep_size) or is gone. Answers
    ``ok`` | ``created`` | ``recreated`` | ``unreachable: ...``."""
    addresses = region_addresses()
    name = subscription_name(addresses[subscriber].database, publisher, subscriber)
    host, port = route_endpoint(publisher, subscriber)
    conninfo = addresses[publisher].conninfo(host=host, port=port)
    recreated = False
    try:
        with region_connect(subscriber) as conn:
            row = conn.execute(
                "SELECT subconninfo FROM pg_subscription s JOIN pg_database d "
                "ON d.oid = s.subdbid WHERE s.subname = %s AND d.datname = current_database()",
                (name,),
            ).fetchone()
            if row is not None:
                exists, wal_status, _pid = _slot_state(publisher, name)
                if exists and wal_status != "lost":
                    if row[0] != conninfo:
                        conn.execute(
                            sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(
                                sql.Identifier(name), sql.Literal(conninfo)
                            )
                        )
                    return "ok"
                _drop_subscription_locally(conn, name)
                recreated = True
            _drop_slot(publisher, name)
            conn.execute(
                sql.SQL(
                    "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}, {} WITH "
                    "(origin = none, copy_data = false, create_slot = true, enabled = true)"
                ).format(
                    sql.Identifier(name),
                    sql.Literal(conninfo),
                    sql.Identifier(PUBLICATION),
                    sql.Identifier(NAIVE_PUBLICATION),
                )
            )
    except psycopg.Error as error:
        return f"unreachable: {str(error).strip().splitlines()[0]}"
    return "recreated" if recreated else "created"


def regions_setup(*, links: bool = True) -> SetupReport:
    """Idempotent: databases, schema, publications and (with `links`) the six subscriptions.

    A link whose route is cut cannot get its slot now; it is reported ``unreachable`` and set
    up by the next run (after the heal)."""
    addresses = region_addresses()
    report = SetupReport(database=addresses[REGION_NAMES[0]].database)
    for name, address in addresses.items():
        if _ensure_database(address):
            report.created_databases.append(name)
        _ensure_schema(name)
    if links:
        for publisher in REGION_NAMES:
            for subscriber in REGION_NAMES:
                if publisher != subscriber:
                    report.links[f"{publisher}->{subscriber}"] = link_ensure(publisher, subscriber)
    return report


def regions_database_drop() -> None:
    """Drop the configured database in every region, its subscriptions and slots first (a
    database with a replication slot cannot be dropped). For the test suite's own database."""
    addresses = region_addresses()
    for subscriber, address in addresses.items():
        try:
            with region_connect(subscriber) as conn:
                names = [
                    row[0]
                    for row in conn.execute(
                        "SELECT s.subname FROM pg_subscription s JOIN pg_database d "
                        "ON d.oid = s.subdbid WHERE d.datname = %s",
                        (address.database,),
                    )
                ]
                for name in names:
                    _drop_subscription_locally(conn, name)
        except psycopg.OperationalError:
            continue
    for region, address in addresses.items():
        with region_connect(region, database="postgres") as conn:
            for (slot,) in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s",
                (address.database,),
            ).fetchall():
                _drop_slot(region, slot)
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(address.database)
                )
            )
