"""The chaos soak's history in the checker's format: profiles as registers, counters as
counters, unknown outcomes as info under a fresh process."""

from chaos.checker_history import checker_events
from chaos.history import OK, UNKNOWN, History, Operation
from checker import check, parse_history


def _history(*operations):
    history = History()
    for operation in operations:
        history.record(operation)
    return history


def test_profile_operations_become_register_operations_of_the_clients_session():
    history = _history(
        Operation("alice-profile-0", "profile_write", 0.0, 0.1, OK, {"user": 7, "bio": "a1"}),
        Operation("alice-profile-0", "profile_read", 0.2, 0.3, OK, {"user": 7, "bio": "a1"}),
        Operation("bob-profile-0", "profile_read", 0.25, 0.4, OK, {"user": 7, "bio": ""}),
    )

    ops = parse_history(checker_events(history)).ops

    assert [(op.session, op.f, op.key, op.result) for op in ops] == [
        ("alice", "write", "profile:7", None),
        ("alice", "read", "profile:7", "a1"),
        ("bob", "read", "profile:7", None),
    ]
    assert check(checker_events(history), "linearizable").outcome == "violated"
    assert check(checker_events(history), "session").outcome == "holds"


def test_an_unknown_increment_is_info_and_the_client_continues_as_a_new_process():
    history = _history(
        Operation("alice-counter-0", "increment", 0.0, 5.0, UNKNOWN, {"key": "k", "by": 1}),
        Operation("alice-counter-0", "increment", 5.1, 5.2, OK, {"key": "k", "by": 1}),
        Operation("final-reader", "counter_final", 9.0, 9.1, OK, {"key": "k", "value": 2}),
    )

    ops = parse_history(checker_events(history)).ops

    assert [op.status for op in ops] == ["info", "ok", "ok"]
    assert ops[0].process != ops[1].process
    assert ops[2].final
    assert check(checker_events(history), "convergence").outcome == "holds"


def test_transfers_are_left_out():
    history = _history(Operation("alice-transfer-0", "transfer", 0.0, 0.1, OK, {"transfer": 1}))

    assert checker_events(history) == []


def test_a_client_whose_next_operation_starts_when_the_last_ended_runs_them_in_order():
    history = _history(
        Operation("alice-profile-0", "profile_write", 0.0, 0.5, OK, {"user": 7, "bio": "a1"}),
        Operation("bob-profile-0", "profile_read", 0.5, 0.6, OK, {"user": 7, "bio": "a1"}),
        Operation("alice-profile-0", "profile_read", 0.5, 0.7, OK, {"user": 7, "bio": "a1"}),
    )

    ops = parse_history(checker_events(history)).ops

    assert [op.f for op in ops] == ["write", "read", "read"]
    assert ops[2].invoke_pos > ops[0].complete_pos
    assert ops[1].invoke_pos < ops[0].complete_pos  # same rounded time: may overlap
