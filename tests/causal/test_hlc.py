"""Hybrid logical clocks: later than what a replica issued or saw, whatever the wall clock says."""

from hypothesis import given
from hypothesis import strategies as st

from causal.hlc import HybridClock, Timestamp


def _clock(replica: str, walls: list[int]) -> HybridClock:
    readings = iter(walls)
    return HybridClock(replica, wall_ms=lambda: next(readings))


@given(st.lists(st.integers(0, 50), min_size=1, max_size=30))
def test_local_timestamps_always_increase_even_when_the_wall_clock_goes_back(walls):
    clock = _clock("r1", walls)

    stamps = [clock.now() for _ in walls]

    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_an_event_after_a_remote_one_orders_after_it_despite_a_slow_wall_clock():
    remote = Timestamp(10_000, 4, "r2")
    clock = _clock("r1", [100, 100])

    clock.observe(remote)

    assert clock.now() > remote


def test_timestamps_follow_the_wall_clock_when_it_moves_forward():
    clock = _clock("r1", [5, 9])
    clock.now()

    assert clock.now() == Timestamp(9, 0, "r1")
