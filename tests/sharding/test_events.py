"""Events: by key, and scatter-gather by time range with cursor paging and explicit partials."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.db import connections

from core.faults import faults_set
from sharding.errors import ShardCursorInvalid
from sharding.events import (
    CURSOR_SALT,
    SLOW_SHARDS_SWITCH,
    event_create,
    events_for_key,
    events_range,
)
from sharding.hotkeys import Observation
from sharding.placement import bucket_map_current, bucket_of
from sharding.spreading import key_spread
from sharding.store import rows
from tests.servers import free_port
from tests.sharding.conftest import ALL_DATABASES, sharding_tuning

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(hours=1)


def _seed(count: int, *, hot_key: str | None = None) -> list[str]:
    rng = random.Random(7)  # noqa: S311
    if hot_key:
        key_spread(
            key=hot_key,
            observation=Observation(rate=1e3, share=0.5, over_since=time.time(), hot=False),
        )
    ids = []
    for number in range(count):
        key = hot_key if hot_key and number % 3 == 0 else f"user:{rng.randint(0, 60)}"
        # Equal timestamps on purpose: the order must break ties by id.
        ts = START + timedelta(seconds=rng.randint(0, 600))
        ids.append(str(event_create(key=key, ts=ts, payload={"n": number}).id))
    return ids


def _naive(since: datetime, until: datetime, *, skip: str | None = None) -> list[str]:
    """Every shard's rows, each kept only where the current map (or a hot slot) owns it."""
    bucket_map = bucket_map_current()
    found = []
    for alias in settings.SHARD_ALIASES:
        if alias == skip:
            continue
        for event_id, key, slot, ts in rows(
            alias,
            "SELECT id, key, slot, ts FROM sharding_event WHERE ts >= %s AND ts < %s",
            [since, until],
        ):
            if slot > 0 or bucket_map.shard_of_bucket(bucket_of(key)) == alias:
                found.append((ts, event_id))
    return [str(event_id) for _ts, event_id in sorted(found)]


def _all_pages(limit: int, since=START, until=END) -> tuple[list[str], int]:
    seen, cursor, pages = [], None, 0
    while True:
        page = events_range(since=since, until=until, limit=limit, cursor=cursor)
        assert not page.partial
        seen += [str(item.id) for item in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return seen, pages


@pytest.mark.parametrize("limit", [1, 37, 500])
def test_a_range_read_paged_by_cursor_equals_the_naive_read_without_skips_or_repeats(shards, limit):
    ids = _seed(40 if limit == 1 else 400, hot_key="celebrity")

    paged, pages = _all_pages(limit)

    assert paged == _naive(START, END)
    assert len(paged) == len(set(paged)) == len(ids)
    assert pages == -(-len(ids) // limit)


def test_a_narrower_range_returns_exactly_the_rows_inside_it(shards):
    _seed(200)
    since, until = START + timedelta(seconds=100), START + timedelta(seconds=250)

    paged, _pages = _all_pages(50, since=since, until=until)

    assert paged == _naive(since, until)
    assert 0 < len(paged) < 200


def test_a_hot_keys_events_are_gathered_from_all_its_slots(shards):
    ids = _seed(300, hot_key="celebrity")
    expected = ids[::3]

    page = events_for_key(key="celebrity", limit=500)

    assert sorted(str(item.id) for item in page.items) == sorted(expected)
    assert len({item.shard for item in page.items}) == 4
    assert [item.ts for item in page.items] == sorted(item.ts for item in page.items)


def test_a_stopped_shard_gives_an_explicit_partial_result(shards):
    _seed(200)
    expected = _naive(START, END, skip="shard_2")
    connection = connections["shard_2"]
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())  # nothing listens there
    try:
        page = events_range(since=START, until=END, limit=500)
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port

    assert page.partial is True
    assert page.shards == {
        "shard_0": "ok",
        "shard_1": "ok",
        "shard_2": "unavailable",
        "shard_3": "ok",
    }
    assert [str(item.id) for item in page.items] == expected


def test_a_shard_slower_than_the_timeout_is_reported_as_timed_out(shards):
    sharding_tuning(shards, shard_timeout_s=0.3)
    _seed(50)
    faults_set(values={SLOW_SHARDS_SWITCH: ["shard_1"]}, actor="test")
    try:
        started = time.monotonic()
        page = events_range(since=START, until=END, limit=100)
        elapsed = time.monotonic() - started
    finally:
        faults_set(values={SLOW_SHARDS_SWITCH: []}, actor="test")

    assert page.partial is True
    assert page.shards["shard_1"] == "timeout"
    assert {page.shards[alias] for alias in ("shard_0", "shard_2", "shard_3")} == {"ok"}
    assert elapsed < 2.0


def test_a_cursor_from_another_query_or_altered_is_refused(shards):
    _seed(20)
    page = events_range(since=START, until=END, limit=5)

    with pytest.raises(ShardCursorInvalid):
        events_range(
            since=START, until=END - timedelta(seconds=1), limit=5, cursor=page.next_cursor
        )
    with pytest.raises(ShardCursorInvalid):
        events_range(since=START, until=END, limit=5, cursor=page.next_cursor[:-2] + "xx")


def _pages(limit: int, cursor: str | None = None, *, pages: int | None = None) -> tuple:
    """Follow the cursor for ``pages`` pages (all when None): the ids, the partial flags and
    the cursor to go on with."""
    seen, flags = [], []
    while pages is None or len(flags) < pages:
        page = events_range(since=START, until=END, limit=limit, cursor=cursor)
        seen += [str(item.id) for item in page.items]
        flags.append(page.partial)
        cursor = page.next_cursor
        if cursor is None:
            break
    return seen, flags, cursor


def test_paging_past_a_slow_shard_then_on_after_it_recovers_skips_and_repeats_nothing(shards):
    sharding_tuning(shards, shard_timeout_s=0.3)
    _seed(80)
    faults_set(values={SLOW_SHARDS_SWITCH: ["shard_1"]}, actor="test")
    try:
        during, flags, cursor = _pages(10, pages=3)
    finally:
        faults_set(values={SLOW_SHARDS_SWITCH: []}, actor="test")
    after, _flags, _cursor = _pages(10, cursor)

    full, _pages_read = _all_pages(500)
    assert flags == [True, True, True]
    assert len(during + after) == len(set(during + after))
    assert sorted(during + after) == sorted(full)


def test_a_partial_last_page_still_hands_out_a_cursor_to_the_slow_shards_rows(shards):
    sharding_tuning(shards, shard_timeout_s=0.3)
    _seed(30)
    faults_set(values={SLOW_SHARDS_SWITCH: ["shard_1"]}, actor="test")
    try:
        page = events_range(since=START, until=END, limit=500)
    finally:
        faults_set(values={SLOW_SHARDS_SWITCH: []}, actor="test")

    assert page.partial is True
    assert page.next_cursor is not None
    rest, _flags, _cursor = _pages(500, page.next_cursor)
    got = [str(item.id) for item in page.items] + rest
    assert sorted(got) == sorted(_naive(START, END))
    assert len(got) == len(set(got))


@pytest.mark.parametrize(
    "body",
    [
        {"at": None, "behind": {"shard_9": None}, "v": 1},
        {"at": ["yesterday", "not-a-uuid"], "behind": {}, "v": 1},
        {"at": None, "behind": [], "v": 1},
        {"at": None, "behind": {}},
        ["not", "a", "cursor"],
    ],
    ids=["unknown-shard", "bad-position", "behind-not-a-map", "no-version", "not-a-map"],
)
def test_a_signed_but_malformed_cursor_is_refused(shards, body):
    scope = {"since": START.isoformat(), "until": END.isoformat()}
    if isinstance(body, dict):
        body = {"scope": scope, **body}
    forged = signing.dumps(body, salt=CURSOR_SALT, compress=True)

    with pytest.raises(ShardCursorInvalid):
        events_range(since=START, until=END, limit=5, cursor=forged)
