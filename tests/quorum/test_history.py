"""Stale reads found in a recorded history (pure: events written by hand)."""

from quorum.history import Event, checked_reads, read_value, stale_reads


def _op(process, f, key, value, *, at, done, outcome="ok"):
    invoke_value = value if f == "write" else None
    return [
        Event(process, f"s{process}", "invoke", f, key, invoke_value, at),
        Event(process, f"s{process}", outcome, f, key, value, done),
    ]


def test_a_read_that_returns_the_last_acknowledged_write_is_not_stale():
    events = _op(1, "write", "k", "a", at=0, done=10) + _op(2, "read", "k", "a", at=11, done=20)

    assert stale_reads(events) == []


def test_a_read_that_misses_the_last_acknowledged_write_is_stale():
    events = (
        _op(1, "write", "k", "a", at=0, done=10)
        + _op(1, "write", "k", "b", at=11, done=20)
        + _op(2, "read", "k", "a", at=21, done=30)
    )

    assert [op.value for op in stale_reads(events)] == ["a"]


def test_a_read_concurrent_with_a_write_may_return_either_value():
    events = (
        _op(1, "write", "k", "a", at=0, done=10)
        + _op(1, "write", "k", "b", at=11, done=30)
        + _op(2, "read", "k", "a", at=12, done=20)
        + _op(3, "read", "k", "b", at=13, done=21)
    )

    assert stale_reads(events) == []


def test_a_read_that_returns_a_later_unacknowledged_write_is_not_stale():
    events = (
        _op(1, "write", "k", "a", at=0, done=10)
        + _op(1, "write", "k", "b", at=11, done=20, outcome="info")
        + _op(2, "read", "k", "b", at=21, done=30)
    )

    assert stale_reads(events) == []


def test_a_read_that_finds_nothing_after_an_acknowledged_write_is_stale():
    events = _op(1, "write", "k", "a", at=0, done=10) + _op(2, "read", "k", None, at=11, done=20)

    assert len(stale_reads(events)) == 1


def test_siblings_that_include_the_acknowledged_write_are_not_stale():
    events = _op(1, "write", "k", "a", at=0, done=10) + _op(
        2, "read", "k", read_value(["z", "a"]), at=11, done=20
    )

    assert stale_reads(events) == []


def test_reads_before_any_acknowledged_write_are_not_judged():
    events = _op(2, "read", "k", None, at=0, done=5) + _op(1, "write", "k", "a", at=1, done=10)

    assert checked_reads(events) == []
    assert stale_reads(events) == []


def test_a_write_of_another_key_does_not_make_a_read_stale():
    events = _op(1, "write", "j", "a", at=0, done=10) + _op(2, "read", "k", None, at=11, done=20)

    assert stale_reads(events) == []
