"""Causal consistency (CC, by bad patterns): session order and reads-from, never contradicted."""

import pytest

from checker import HOLDS, UNKNOWN, VIOLATED, HistoryError, check

from .builders import history, ids, info, invoke, ok, op


def test_two_readers_may_see_concurrent_writes_in_opposite_orders():
    events = history(
        op(1, "write", 1),
        op(2, "write", 2),
        op(3, "read", 1),
        op(3, "read", 2),
        op(4, "read", 2),
        op(4, "read", 1),
    )

    assert check(events, "causal").outcome == HOLDS
    assert check(events, "sequential").outcome == VIOLATED


def test_a_read_of_a_value_its_causal_past_overwrote_is_write_co_read():
    events = history(op(1, "write", 1), op(1, "write", 2), op(2, "read", 2), op(2, "read", 1))

    verdict = check(events, "causal")

    assert verdict.counterexample.kind == "WriteCORead"
    assert ids(verdict) == [("write", 1), ("write", 2), ("read", 2), ("read", 1)]


def test_a_read_of_null_after_a_causally_preceding_write_is_write_co_init_read():
    events = history(
        op(1, "write", 1, key="x"),
        op(1, "write", 1, key="y"),
        op(2, "read", 1, key="y"),
        op(2, "read", None, key="x"),
    )

    verdict = check(events, "causal")

    assert verdict.counterexample.kind == "WriteCOInitRead"
    assert [o.key for o in verdict.counterexample.ops] == ["x", "y", "y", "x"]


def test_a_stale_read_without_a_causal_link_is_causal():
    events = history(op(1, "write", 1), op(1, "write", 2), op(2, "read", 1))

    assert check(events, "causal").outcome == HOLDS


def test_an_info_write_someone_read_carries_causality():
    events = history(
        invoke(1, "write", 1, key="x"),
        info(1, "write", 1, key="x"),
        op(2, "read", 1, key="x"),
        op(2, "write", 2, key="y"),
        op(3, "read", 2, key="y"),
        op(3, "read", None, key="x"),
    )

    assert check(events, "causal").counterexample.kind == "WriteCOInitRead"


def test_two_concurrent_cas_that_read_each_other_are_cyclic():
    events = history(
        invoke(1, "cas", [1, 2]),
        invoke(2, "cas", [2, 1]),
        ok(1, "cas", [1, 2]),
        ok(2, "cas", [2, 1]),
    )

    verdict = check(events, "causal")

    assert verdict.counterexample.kind == "CyclicCO"
    assert len(verdict.counterexample.ops) == 2


def test_a_read_of_a_value_nobody_wrote_is_a_thin_air_read():
    verdict = check(history(op(1, "write", 1), op(2, "read", 7)), "causal")

    assert verdict.counterexample.kind == "thin-air-read"
    assert ids(verdict) == [("read", 7)]


def test_a_read_of_a_value_written_only_later_is_a_thin_air_read():
    verdict = check(history(op(2, "read", 7), op(1, "write", 7)), "causal")

    assert verdict.counterexample.kind == "thin-air-read"


def test_a_value_written_twice_is_refused():
    with pytest.raises(HistoryError, match="written twice"):
        check(history(op(1, "write", 1), op(2, "write", 1)), "causal")


def test_a_write_of_null_is_refused():
    with pytest.raises(HistoryError, match="null"):
        check(history(op(1, "write", None)), "causal")


def test_a_history_without_registers_cannot_be_decided():
    verdict = check(history(op(1, "increment", 1, key="c")), "causal")

    assert verdict.outcome == UNKNOWN
