"""Sequential consistency per key: one order per key that keeps each process's program order."""

from checker import HOLDS, VIOLATED, check

from .builders import history, ids, info, invoke, ok, op


def test_a_stale_read_is_sequentially_consistent_but_not_linearizable():
    stale = history(op(1, "write", 1), op(2, "read", None))

    assert check(stale, "sequential").outcome == HOLDS
    assert check(stale, "linearizable").outcome == VIOLATED


def test_two_readers_that_saw_two_writes_in_opposite_orders_are_not_sequential():
    events = history(
        op(1, "write", 1),
        op(2, "write", 2),
        op(3, "read", 1),
        op(3, "read", 2),
        op(4, "read", 2),
        op(4, "read", 1),
    )

    assert check(events, "sequential").outcome == VIOLATED


def test_a_process_that_saw_a_newer_value_cannot_go_back():
    events = history(op(1, "write", 1), op(2, "write", 2), op(1, "read", 2), op(1, "read", 1))

    verdict = check(events, "sequential")

    assert ids(verdict) == [("write", 1), ("write", 2), ("read", 2), ("read", 1)]


def test_a_process_cannot_read_a_value_before_writing_it():
    assert check(history(op(1, "read", 1), op(1, "write", 1)), "sequential").outcome == VIOLATED


def test_a_read_may_see_a_write_that_real_time_puts_after_it():
    events = history(op(2, "read", 1), op(1, "write", 1))

    assert check(events, "sequential").outcome == HOLDS


def test_an_info_write_explains_a_read_in_any_position():
    events = history(op(3, "read", 2), invoke(2, "write", 2), info(2, "write", 2))

    assert check(events, "sequential").outcome == HOLDS


def test_two_cas_from_the_same_value_are_not_sequential():
    events = history(op(1, "write", 0), op(2, "cas", [0, 1]), op(3, "cas", [0, 2]))

    assert check(events, "sequential").outcome == VIOLATED


def test_a_cas_chain_read_out_of_order_by_one_process_is_not_sequential():
    events = history(
        op(1, "write", 1),
        op(2, "cas", [1, 2]),
        op(3, "cas", [2, 3]),
        op(4, "read", 3),
        op(4, "read", 2),
    )

    assert check(events, "sequential").outcome == VIOLATED


def test_a_cas_chain_seen_in_order_is_sequential():
    events = history(
        op(4, "read", 1),
        op(1, "write", 1),
        op(2, "cas", [1, 2]),
        op(4, "read", 2),
        op(3, "cas", [2, 3]),
    )

    assert check(events, "sequential").outcome == HOLDS


def test_a_duplicated_value_can_explain_what_a_unique_one_cannot():
    events = history(
        op(1, "write", 1), op(1, "write", 2), op(3, "write", 2), op(2, "read", 2), op(2, "read", 1)
    )

    assert check(events, "sequential").outcome == HOLDS


def test_a_set_read_may_lag_behind_a_completed_add():
    events = history(op(1, "add", "a", key="s"), op(2, "read", [], key="s"))

    assert check(events, "sequential").outcome == HOLDS


def test_a_set_read_cannot_miss_its_own_process_add():
    events = history(op(1, "add", "a", key="s"), op(1, "read", [], key="s"))

    assert check(events, "sequential").outcome == VIOLATED


def test_a_counter_read_cannot_miss_its_own_process_increment():
    events = history(op(1, "increment", 1, key="c"), op(1, "read", 0, key="c"))

    assert check(events, "sequential").outcome == VIOLATED


def test_a_counter_read_may_lag_behind_another_process():
    events = history(
        invoke(1, "increment", 1, key="c"),
        ok(1, "increment", 1, key="c"),
        op(2, "read", 0, key="c"),
        op(2, "read", 1, key="c"),
    )

    assert check(events, "sequential").outcome == HOLDS
