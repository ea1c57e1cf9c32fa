"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connections, transaction
from psycopg.rows import Row


@contextmanager
def snapshot(using: str) -> Iterator[None]:
    """A read-only REPEATABLE READ transaction on ``using``: every statement inside sees the
    same snapshot, so sums taken by several queries are consistent with each other.

    Nested in a caller's transaction (as in a test case), the caller's transaction is used as
    it is: Postgres cannot change the isolation level of a transaction already under way.
    """
    outermost = not connections[using].in_atomic_block
    with transaction.atomic(using=using):
        if outermost:
            with connections[using].cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


@contextmanager
def read_only(using: str) -> Iterator[None]:
    """A read-only transaction on ``using`` at the default isolation (READ COMMITTED: each
    statement sees what was committed when it started): Postgres refuses any write inside.

    Nested in a caller's transaction (as in a test case), the caller's transaction is used as
    it is: Postgres cannot make a transaction read-only once it has run a statement."""
    outermost = not connections[using].in_atomic_block
    with transaction.atomic(using=using):
        if outermost:
            with connections[using].cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
        yield


def row_one(cursor: psycopg.Cursor[Row]) -> Row:
    """The row of a statement that always returns exactly one (a function call, ``SHOW``, an
    aggregate without ``GROUP BY``): typed as the row, not as "row or None"."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row where it always returns one")
    return row


def alias_conninfo(alias: str, *, database: str | None = None) -> str:
    """A libpq connection string to the server ``alias`` targets (with a multi-host alias, the
    member its ``target_session_attrs`` selects: the leader or a standby), for code that needs
    a connection of its own outside Django's (a lock held from the side, a fault injected)."""
    config = connections[alias].settings_dict
    target = config.get("OPTIONS", {}).get("target_session_attrs", "any")
    return (
        f"host={config['HOST']} port={config['PORT']} user={config['USER']} "
        f"password={config['PASSWORD']} dbname={database or config['NAME']} connect_timeout=3 "
        f"target_session_attrs={target}"
    )
