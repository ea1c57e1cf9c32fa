"""Linearizability: hand-written histories the search must accept or refuse."""

import itertools

from checker import HOLDS, UNKNOWN, VIOLATED, check, parse_history
from checker.datatypes import implausible_reads
from checker.search import linearizable

from .builders import fail, history, ids, info, invoke, ok, op


def test_sequential_writes_and_reads_are_linearizable():
    verdict = check(history(op(1, "write", 1), op(2, "read", 1), op(1, "write", 2)), "linearizable")

    assert verdict.outcome == HOLDS


def test_a_stale_read_is_not_linearizable():
    stale = history(op(1, "write", 1), op(1, "write", 2), op(2, "read", 1))

    verdict = check(stale, "linearizable")

    assert verdict.outcome == VIOLATED
    assert ids(verdict) == [("write", 1), ("write", 2), ("read", 1)]


def test_a_read_of_null_after_an_acknowledged_write_is_not_linearizable():
    verdict = check(history(op(1, "write", 1), op(2, "read", None)), "linearizable")

    assert ids(verdict) == [("write", 1), ("read", None)]


def test_a_read_concurrent_with_a_write_may_see_the_old_value():
    events = history(
        op(1, "write", 1),
        invoke(1, "write", 2),
        invoke(2, "read"),
        ok(2, "read", 1),
        ok(1, "write", 2),
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_a_read_concurrent_with_a_write_may_see_the_new_value():
    events = history(
        op(1, "write", 1),
        invoke(1, "write", 2),
        invoke(2, "read"),
        ok(2, "read", 2),
        ok(1, "write", 2),
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_two_reads_after_a_write_cannot_see_new_then_old():
    events = history(
        op(1, "write", 1),
        invoke(1, "write", 2),
        op(2, "read", 2),
        op(3, "read", 1),
        ok(1, "write", 2),
    )

    assert check(events, "linearizable").outcome == VIOLATED


def test_an_info_write_explains_a_later_read():
    events = history(
        op(1, "write", 1), invoke(2, "write", 2), info(2, "write", 2), op(3, "read", 2)
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_an_info_write_may_take_effect_long_after_its_process_gave_up():
    events = history(
        invoke(2, "write", 2),
        info(2, "write", 2),
        op(1, "write", 1),
        op(3, "read", 1),
        op(3, "read", 2),
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_an_info_write_may_never_take_effect():
    events = history(
        op(1, "write", 1), invoke(2, "write", 2), info(2, "write", 2), op(3, "read", 1)
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_an_info_write_cannot_explain_a_read_that_ended_before_it_began():
    events = history(op(3, "read", 2), invoke(2, "write", 2), info(2, "write", 2))

    assert check(events, "linearizable").outcome == VIOLATED


def test_a_failed_write_did_not_happen():
    events = history(
        op(1, "write", 1), invoke(2, "write", 2), fail(2, "write", 2), op(3, "read", 2)
    )

    assert check(events, "linearizable").outcome == VIOLATED


def test_a_cas_chain_is_linearizable():
    events = history(
        op(1, "write", 1), op(2, "cas", [1, 2]), op(3, "cas", [2, 3]), op(1, "read", 3)
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_a_cas_that_expected_a_stale_value_cannot_succeed():
    events = history(op(1, "write", 1), op(2, "write", 2), op(3, "cas", [1, 3]))

    assert check(events, "linearizable").outcome == VIOLATED


def test_a_failed_cas_changes_nothing():
    events = history(
        op(1, "write", 1), invoke(2, "cas", [5, 6]), fail(2, "cas", [5, 6]), op(3, "read", 1)
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_a_lost_update_two_cas_from_the_same_value_is_not_linearizable():
    lost = history(op(1, "write", 0), op(2, "cas", [0, 1]), op(3, "cas", [0, 2]))

    verdict = check(lost, "linearizable")

    assert ids(verdict) == [("write", 0), ("cas", [0, 1]), ("cas", [0, 2])]


def test_a_set_read_shows_every_completed_add():
    events = history(
        op(1, "add", "a", key="s"), op(2, "add", "b", key="s"), op(3, "read", ["b", "a"], key="s")
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_a_set_read_missing_a_completed_add_is_not_linearizable():
    events = history(
        op(1, "add", "a", key="s"), op(2, "add", "b", key="s"), op(3, "read", ["a"], key="s")
    )

    assert check(events, "linearizable").outcome == VIOLATED


def test_a_set_remove_takes_the_element_out():
    events = history(
        op(1, "add", "a", key="s"), op(2, "remove", "a", key="s"), op(3, "read", [], key="s")
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_a_counter_read_sums_the_increments_before_it():
    events = history(
        op(1, "increment", 2, key="c"), op(2, "increment", -1, key="c"), op(3, "read", 1, key="c")
    )

    assert check(events, "linearizable").outcome == HOLDS


def test_a_counter_that_lost_an_increment_is_not_linearizable():
    events = history(
        op(1, "increment", 1, key="c"), op(2, "increment", 1, key="c"), op(3, "read", 1, key="c")
    )

    assert check(events, "linearizable").outcome == VIOLATED


def test_a_counter_read_may_count_an_info_increment_or_not():
    both = history(
        invoke(1, "increment", 5, key="c"),
        info(1, "increment", 5, key="c"),
        op(2, "read", 0, key="c"),
        op(2, "read", 5, key="c"),
    )

    assert check(both, "linearizable").outcome == HOLDS


def test_the_failing_key_is_reported_among_independent_keys():
    events = history(
        op(1, "write", 1, key="a"),
        op(2, "read", 1, key="a"),
        op(1, "write", 1, key="b"),
        op(1, "write", 2, key="b"),
        op(2, "read", 1, key="b"),
    )

    verdict = check(events, "linearizable")

    assert verdict.counterexample.key == "b"
    assert verdict.stats["failing_keys"] == ["b"]


def test_the_counterexample_drops_operations_that_play_no_part():
    events = history(
        op(1, "write", 1),
        op(2, "read", 1),
        op(3, "write", 2),
        op(1, "read", 2),
        op(2, "write", 3),
        op(3, "read", 2),
        op(1, "write", 4),
        op(2, "read", 4),
    )

    verdict = check(events, "linearizable")

    assert ids(verdict) == [("write", 2), ("write", 3), ("read", 2)]


def test_no_operation_can_leave_the_counterexample_with_the_rest_failing_and_explained():
    events = history(
        op(1, "write", 1),
        invoke(2, "write", 2),
        op(3, "read", 2),
        op(1, "read", 1),
        ok(2, "write", 2),
        op(3, "write", 3),
        op(1, "read", 3),
    )
    kept = check(events, "linearizable").counterexample.ops

    def droppable(dropped):
        rest = [o for o in kept if o is not dropped]
        explained = not implausible_reads(rest, "register")
        return explained and linearizable(rest, "register", 10_000) is False

    assert linearizable(kept, "register", 10_000) is False
    assert not any(droppable(o) for o in kept)


def test_a_search_out_of_budget_cannot_decide():
    events = history(
        *itertools.chain.from_iterable([invoke(p, "write", p)] for p in range(8)),
        *itertools.chain.from_iterable([ok(p, "write", p)] for p in range(8)),
        op(9, "read", 0),
    )

    verdict = check(events, "linearizable", budget=3)

    assert verdict.outcome == UNKNOWN


def test_a_history_of_dict_events_checks_like_a_history():
    events = [*op(1, "write", 1), *op(2, "read", 1)]

    assert check(events, "linearizable").outcome == HOLDS
    assert check(parse_history(events), "linearizable").outcome == HOLDS
