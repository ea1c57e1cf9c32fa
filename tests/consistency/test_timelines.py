"""Which replica holds a session's write across a failover: positions carry their timeline,
and a position of an older timeline is held only up to where that timeline ended."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consistency.pool import History, ReplicaState
from consistency.replicas import WalPosition
from consistency.state import SessionState

SWITCH = 1_000
HISTORY = History(timeline=2, switch_points={1: SWITCH})


def replica(replay_lsn: int, timeline: int = 2) -> ReplicaState:
    return ReplicaState(alias="replica_1", up=True, replay_lsn=replay_lsn, timeline=timeline)


def test_on_its_own_timeline_a_position_is_held_once_replayed():
    assert HISTORY.holds(replica(5_000), WalPosition(2, 5_000))
    assert not HISTORY.holds(replica(4_999), WalPosition(2, 5_000))


def test_a_position_of_the_old_timeline_below_the_switch_point_is_held_by_the_new_one():
    assert HISTORY.holds(replica(5_000), WalPosition(1, SWITCH))


@given(beyond=st.integers(min_value=1, max_value=10**9), replayed=st.integers(0, 10**10))
def test_a_position_of_the_old_timeline_beyond_the_switch_point_is_never_held(beyond, replayed):
    """Beyond the switch point the write is not in the new timeline's history, however far
    the replica has replayed: it was lost with the old leader, or lives on an unrewound one."""
    assert not HISTORY.holds(replica(replayed), WalPosition(1, SWITCH + beyond))


def test_without_the_history_only_positions_of_the_replicas_timeline_are_held():
    unknown = History(timeline=2, switch_points=None)

    assert unknown.holds(replica(5_000), WalPosition(2, 10))
    assert not unknown.holds(replica(5_000), WalPosition(1, 10))


def test_a_position_of_a_timeline_newer_than_the_replicas_is_not_held():
    assert not HISTORY.holds(replica(5_000), WalPosition(3, 10))


def test_no_position_is_held_everywhere():
    assert HISTORY.holds(replica(0), None)
    assert HISTORY.holds(replica(0), WalPosition(0, 0))


@given(
    positions=st.lists(
        st.builds(WalPosition, st.integers(1, 5), st.integers(1, 10**12)), min_size=1, max_size=8
    )
)
def test_a_sessions_write_position_only_rises_as_timeline_then_lsn(positions):
    state = SessionState()
    for position in positions:
        state.raise_write("profile:1", position)

    assert state.writes["profile:1"] == max(positions)


def test_positions_travel_in_task_headers_with_their_timeline():
    state = SessionState(writes={"profile:1": WalPosition(3, 42)})

    assert SessionState.from_json(state.as_json()).writes == {"profile:1": WalPosition(3, 42)}


def test_a_bare_lsn_from_an_older_publisher_is_of_no_timeline_a_replica_is_on():
    carried = SessionState.from_json({"w": {"profile:1": 42}, "s": {}})

    assert carried.writes["profile:1"] == WalPosition(0, 42)
    assert not HISTORY.holds(replica(5_000), carried.writes["profile:1"])
