"""Session guarantees (Terry et al.): what a session saw must not go back on what it did or saw."""

import pytest

from checker import HOLDS, UNKNOWN, VIOLATED, HistoryError, check

from .builders import history, ids, info, invoke, ok, op


def s(name):
    return {"session": name}


def test_a_read_that_misses_its_sessions_write_violates_read_your_writes():
    events = history(
        op(1, "write", 1, **s("a")), op(2, "write", 2, **s("a")), op(3, "read", 1, **s("a"))
    )

    verdict = check(events, "read-your-writes")

    assert verdict.outcome == VIOLATED
    assert ids(verdict) == [("write", 1), ("write", 2), ("read", 1)]


def test_a_read_your_writes_violation_can_still_converge():
    events = history(
        op(1, "write", 1, **s("a")),
        op(1, "read", None, **s("a"), replica="r2"),
        op(2, "read", 1, final=True, replica="r1"),
        op(3, "read", 1, final=True, replica="r2"),
    )

    assert check(events, "read-your-writes").outcome == VIOLATED
    assert check(events, "convergence").outcome == HOLDS


def test_a_read_that_sees_another_sessions_newer_write_keeps_read_your_writes():
    events = history(
        op(1, "write", 1, **s("a")), op(2, "write", 2, **s("b")), op(1, "read", 2, **s("a"))
    )

    assert check(events, "read-your-writes").outcome == HOLDS


def test_a_stale_read_by_another_session_keeps_every_session_guarantee():
    events = history(
        op(1, "write", 1, **s("a")), op(1, "write", 2, **s("a")), op(2, "read", 1, **s("b"))
    )

    assert check(events, "session").outcome == HOLDS
    assert check(events, "linearizable").outcome == VIOLATED


def test_an_info_write_of_the_session_is_not_owed_to_its_reads():
    events = history(
        op(1, "write", 1, **s("a")),
        invoke(1, "write", 2, **s("a")),
        info(1, "write", 2, **s("a")),
        op(2, "read", 1, **s("a")),
    )

    assert check(events, "read-your-writes").outcome == HOLDS


def test_a_read_going_back_to_an_older_value_violates_monotonic_reads():
    events = history(
        op(1, "write", 1, **s("a")),
        op(1, "write", 2, **s("a")),
        op(2, "read", 2, **s("b")),
        op(2, "read", 1, **s("b")),
    )

    verdict = check(events, "monotonic-reads")

    assert verdict.outcome == VIOLATED
    assert verdict.counterexample.kind == "monotonic-reads"
    assert ids(verdict) == [("write", 1), ("write", 2), ("read", 2), ("read", 1)]


def test_reads_of_concurrent_writes_in_either_order_keep_monotonic_reads():
    events = history(
        invoke(1, "write", 1, **s("a")),
        invoke(2, "write", 2, **s("b")),
        op(3, "read", 2, **s("c")),
        op(3, "read", 1, **s("c")),
        ok(1, "write", 1, **s("a")),
        ok(2, "write", 2, **s("b")),
    )

    assert check(events, "monotonic-reads").outcome == HOLDS


def test_writes_seen_without_their_sessions_earlier_write_violate_the_session_guarantees():
    events = history(
        op(1, "write", 1, key="x", **s("a")),
        op(1, "write", 1, key="y", **s("a")),
        op(2, "read", 1, key="y", **s("b")),
        op(2, "read", None, key="x", **s("b")),
    )

    verdict = check(events, "session")

    assert verdict.counterexample.kind == "monotonic-reads+monotonic-writes"
    assert check(events, "monotonic-writes").outcome == HOLDS
    assert check(events, "monotonic-reads").outcome == HOLDS


def test_a_write_seen_without_what_its_session_had_read_violates_the_session_guarantees():
    events = history(
        op(1, "write", 1, key="x", **s("a")),
        op(2, "read", 1, key="x", **s("b")),
        op(2, "write", 1, key="y", **s("b")),
        op(3, "read", 1, key="y", **s("c")),
        op(3, "read", None, key="x", **s("c")),
    )

    verdict = check(events, "session")

    assert verdict.counterexample.kind == "monotonic-reads+writes-follow-reads"
    assert check(events, "writes-follow-reads").outcome == HOLDS


def test_a_session_whose_writes_got_versions_out_of_order_violates_monotonic_writes():
    events = history(
        invoke(1, "write", 1, **s("a")),
        ok(1, "write", 1, version=2, **s("a")),
        invoke(1, "write", 2, **s("a")),
        ok(1, "write", 2, version=1, **s("a")),
    )

    verdict = check(events, "monotonic-writes")

    assert verdict.outcome == VIOLATED
    assert verdict.stats["version_order"] == "explicit"


def test_a_write_versioned_before_what_its_session_read_violates_writes_follow_reads():
    events = history(
        invoke(1, "write", 1, **s("a")),
        ok(1, "write", 1, version=5, **s("a")),
        op(2, "read", 1, **s("b")),
        invoke(2, "write", 2, **s("b")),
        ok(2, "write", 2, version=3, **s("b")),
    )

    assert check(events, "writes-follow-reads").outcome == VIOLATED


def test_explicit_versions_decide_which_write_is_newer():
    events = history(
        invoke(1, "write", 1, **s("a")),
        ok(1, "write", 1, version=9, **s("a")),
        invoke(1, "write", 2, **s("a")),
        ok(1, "write", 2, version=4, **s("a")),
        op(2, "read", 1, **s("b")),
        op(2, "read", 2, **s("b")),
    )

    assert check(events, "monotonic-reads").outcome == VIOLATED


def test_vector_clock_versions_leave_concurrent_writes_unordered():
    events = history(
        invoke(1, "write", 1, **s("a")),
        ok(1, "write", 1, version={"r1": 1}, **s("a")),
        invoke(2, "write", 2, **s("b")),
        ok(2, "write", 2, version={"r2": 1}, **s("b")),
        op(3, "read", 2, **s("c")),
        op(3, "read", 1, **s("c")),
    )

    assert check(events, "monotonic-reads").outcome == HOLDS


def test_a_key_with_versions_on_some_writes_only_is_refused():
    events = history(invoke(1, "write", 1), ok(1, "write", 1, version=1), op(1, "write", 2))

    with pytest.raises(HistoryError, match="version"):
        check(events, "session")


def test_a_thin_air_read_violates_every_session_guarantee():
    events = history(op(1, "write", 1), op(2, "read", 3))

    for model in ("read-your-writes", "monotonic-reads", "monotonic-writes", "writes-follow-reads"):
        assert check(events, model).counterexample.kind == "thin-air-read"


def test_a_value_written_twice_is_refused():
    with pytest.raises(HistoryError, match="written twice"):
        check(history(op(1, "write", 1), op(2, "write", 1)), "session")


def test_a_history_of_sets_only_cannot_be_decided():
    assert check(history(op(1, "add", 1, key="s")), "session").outcome == UNKNOWN
