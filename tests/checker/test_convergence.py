"""Convergence: after quiescence the replicas' final reads agree, on states the updates explain."""

import pytest

from checker import HOLDS, UNKNOWN, VIOLATED, HistoryError, check

from .builders import history, ids, info, invoke, ok, op


def final(process, value, replica, key="x"):
    return op(process, "read", value, key=key, final=True, replica=replica)


def test_replicas_that_end_on_the_same_value_converge():
    events = history(op(1, "write", 1), op(1, "write", 2), final(2, 2, "r1"), final(3, 2, "r2"))

    assert check(events, "convergence").outcome == HOLDS


def test_replicas_that_end_on_different_values_diverge():
    events = history(op(1, "write", 1), op(1, "write", 2), final(2, 2, "r1"), final(3, 1, "r2"))

    verdict = check(events, "convergence")

    assert verdict.counterexample.kind == "diverged"
    assert ids(verdict) == [("read", 2), ("read", 1)]


def test_the_last_final_read_of_each_replica_is_what_it_holds():
    events = history(
        op(1, "write", 1),
        op(1, "write", 2),
        final(2, 1, "r1"),
        final(2, 2, "r1"),
        final(3, 2, "r2"),
    )

    assert check(events, "convergence").outcome == HOLDS


def test_without_a_replica_field_each_process_is_a_replica():
    events = history(
        op(1, "write", 1),
        op(2, "read", 1, final=True),
        op(3, "read", None, final=True),
    )

    assert check(events, "convergence").outcome == VIOLATED


def test_a_history_without_final_reads_cannot_be_decided():
    assert check(history(op(1, "write", 1), op(2, "read", 1)), "convergence").outcome == UNKNOWN


def test_a_final_read_before_the_updates_completed_is_refused():
    events = history(invoke(1, "write", 1), *final(2, None, "r1"), ok(1, "write", 1))

    with pytest.raises(HistoryError, match="after quiescence"):
        check(events, "convergence")


def test_registers_that_agree_on_null_after_an_acknowledged_write_lost_it():
    events = history(op(1, "write", 1), final(2, None, "r1"), final(3, None, "r2"))

    assert check(events, "convergence").counterexample.kind == "lost-update"


def test_a_read_of_a_value_nobody_wrote_is_thin_air():
    events = history(op(1, "write", 1), op(2, "read", 5), final(2, 1, "r1"))

    assert check(events, "convergence").counterexample.kind == "thin-air-read"


def test_a_final_set_read_holds_every_acknowledged_add():
    events = history(
        op(1, "add", "a", key="s"),
        op(2, "add", "b", key="s"),
        final(3, ["a", "b"], "r1", key="s"),
        final(4, ["b", "a"], "r2", key="s"),
    )

    assert check(events, "convergence").outcome == HOLDS


def test_a_final_set_read_missing_an_acknowledged_add_lost_it():
    events = history(
        op(1, "add", "a", key="s"),
        op(2, "add", "b", key="s"),
        final(3, ["a"], "r1", key="s"),
        final(4, ["a"], "r2", key="s"),
    )

    verdict = check(events, "convergence")

    assert verdict.counterexample.kind == "lost-update"
    assert ids(verdict) == [("add", "b"), ("read", ["a"])]


def test_a_set_element_with_a_remove_need_not_survive():
    events = history(
        op(1, "add", "a", key="s"),
        invoke(2, "remove", "a", key="s"),
        info(2, "remove", "a", key="s"),
        final(3, [], "r1", key="s"),
    )

    assert check(events, "convergence").outcome == HOLDS


def test_a_set_read_with_an_element_nobody_added_is_thin_air():
    events = history(op(1, "add", "a", key="s"), final(3, ["a", "z"], "r1", key="s"))

    assert check(events, "convergence").counterexample.kind == "thin-air-read"


def test_a_final_counter_between_acknowledged_and_acknowledged_plus_unknown_holds():
    events = history(
        op(1, "increment", 2, key="c"),
        invoke(2, "increment", 3, key="c"),
        info(2, "increment", 3, key="c"),
        final(3, 5, "r1", key="c"),
        final(4, 5, "r2", key="c"),
    )

    assert check(events, "convergence").outcome == HOLDS


def test_a_final_counter_below_the_acknowledged_sum_lost_increments():
    events = history(
        op(1, "increment", 2, key="c"),
        op(2, "increment", 3, key="c"),
        final(3, 2, "r1", key="c"),
    )

    assert check(events, "convergence").counterexample.kind == "lost-update"


def test_a_negative_unknown_increment_lowers_the_counter_bound():
    events = history(
        op(1, "increment", 4, key="c"),
        invoke(2, "increment", -3, key="c"),
        info(2, "increment", -3, key="c"),
        final(3, 1, "r1", key="c"),
    )

    assert check(events, "convergence").outcome == HOLDS


def test_a_counter_read_above_every_increment_invoked_is_thin_air():
    events = history(
        op(1, "increment", 1, key="c"), op(2, "read", 4, key="c"), final(3, 1, "r1", key="c")
    )

    assert check(events, "convergence").counterexample.kind == "thin-air-read"
