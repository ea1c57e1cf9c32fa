"""The Postgres position store: positions only rise, stay bounded, and expire."""

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consistency.models import SessionPosition
from consistency.replicas import NO_POSITION, WalPosition
from consistency.state import SessionState
from consistency.store import MAX_STORED_OBJECTS, PositionStore, positions_purge

pytestmark = pytest.mark.django_db

saves = st.lists(
    st.tuples(
        st.sampled_from(["profile:1", "profile:2", "profile:3"]),
        st.builds(
            WalPosition,
            st.integers(min_value=1, max_value=4),
            st.integers(min_value=0, max_value=2**40),
        ),
        st.integers(min_value=0, max_value=1000),
    ),
    min_size=1,
    max_size=20,
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(saves=saves)
def test_whatever_the_order_of_saves_each_position_is_the_highest_saved(saves):
    """Write positions rise as (timeline, LSN): a write on a later timeline wins even at a
    lower LSN (a failover's new leader may write below the old leader's last position)."""
    store = PositionStore(f"t:{uuid.uuid4().hex}")
    for key, position, version in saves:
        state = SessionState()
        state.raise_write(key, position)
        state.raise_seen(key, version)
        store.save(state)

    loaded = store.load()
    for key in {key for key, _, _ in saves}:
        highest = max(position for k, position, _ in saves if k == key)
        assert loaded.writes.get(key, NO_POSITION) == (highest if highest.lsn else NO_POSITION)
        assert loaded.seen.get(key, 0) == max(version for k, _, version in saves if k == key)


def test_a_write_position_saved_after_a_forget_is_kept():
    store = PositionStore("t:forget")
    with transaction.atomic():
        store.save_seen("profile:1", 2)
    first = store.save_write_position("profile:1")
    state = store.load()
    state.forget_write("profile:1", first)
    second = store.save_write_position("profile:1")  # a newer write, before the forget is saved
    store.save(state)

    assert store.load().writes == {"profile:1": second}
    assert second > first


def test_beyond_the_bound_the_oldest_seen_only_positions_are_dropped_never_a_write():
    store = PositionStore("t:bounded")
    written = SessionState()
    written.raise_write("profile:written", WalPosition(1, 10))
    store.save(written)
    for number in range(MAX_STORED_OBJECTS + 5):
        state = store.load()
        state.raise_seen(f"profile:{number}", 1)
        store.save(state)

    rows = dict(
        SessionPosition.objects.filter(owner="t:bounded").values_list("object_key", "write_lsn")
    )
    seen_only = [key for key, write_lsn in rows.items() if not write_lsn]
    assert len(seen_only) == MAX_STORED_OBJECTS
    assert rows["profile:written"] == 10
    assert f"profile:{MAX_STORED_OBJECTS + 4}" in rows
    assert "profile:0" not in rows


def test_the_purge_drops_positions_not_raised_for_the_ttl_and_keeps_the_others():
    old, fresh = PositionStore("t:old"), PositionStore("s:fresh")
    for store in (old, fresh):
        state = SessionState()
        state.raise_seen("profile:1", 3)
        store.save(state)
    SessionPosition.objects.filter(owner="t:old").update(
        updated_at=timezone.now() - timedelta(hours=25)
    )

    deleted = positions_purge(older_than_s=24 * 3600)

    assert deleted == 1
    assert old.load().seen == {}
    assert fresh.load().seen == {"profile:1": 3}
