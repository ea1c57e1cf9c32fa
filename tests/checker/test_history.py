"""Reading histories: what the checker accepts, and the malformed ones it refuses."""

import io

import pytest

from checker import HistoryError, parse_history, read_history

from .builders import fail, history, info, invoke, ok, op


def test_an_invoke_and_its_ok_make_one_operation():
    parsed = history(op(1, "write", 5))

    assert len(parsed.ops) == 1
    assert (parsed.ops[0].f, parsed.ops[0].value, parsed.ops[0].status) == ("write", 5, "ok")


def test_a_read_takes_its_result_from_the_ok_event():
    parsed = history(op(1, "read", 7))

    assert parsed.ops[0].result == 7


def test_an_invoke_without_completion_counts_as_info():
    parsed = history(invoke(1, "write", 5))

    assert parsed.ops[0].status == "info"
    assert parsed.ops[0].pending


def test_the_session_defaults_to_the_process():
    assert history(op(4, "read", None)).ops[0].session == "p4"


def test_an_increment_without_value_adds_one():
    assert history(op(1, "increment", None, key="c")).ops[0].value == 1


def test_a_key_read_only_as_lists_is_a_set():
    assert history(op(1, "read", [], key="s")).datatypes == {"s": "set"}


def test_a_completion_without_invoke_is_refused():
    with pytest.raises(HistoryError, match="no outstanding invoke"):
        history(ok(1, "write", 5))


def test_a_process_with_two_outstanding_invokes_is_refused():
    with pytest.raises(HistoryError, match="still outstanding"):
        history(invoke(1, "write", 5), invoke(1, "write", 6))


def test_a_process_invoking_after_its_info_is_refused():
    with pytest.raises(HistoryError, match="new process id"):
        history(invoke(1, "write", 5), info(1, "write", 5), invoke(1, "read"))


def test_a_completion_for_another_function_is_refused():
    with pytest.raises(HistoryError, match="f='read'"):
        history(invoke(1, "write", 5), ok(1, "read", 5))


def test_a_completion_for_another_key_is_refused():
    with pytest.raises(HistoryError, match="key"):
        history(invoke(1, "write", 5, key="a"), ok(1, "write", 5, key="b"))


def test_an_unknown_event_type_is_refused():
    with pytest.raises(HistoryError, match="type must be one of"):
        parse_history([{"process": 1, "type": "done", "f": "read"}])


def test_an_unknown_function_is_refused():
    with pytest.raises(HistoryError, match="f must be one of"):
        history(invoke(1, "append", 5))


def test_an_event_without_process_is_refused():
    with pytest.raises(HistoryError, match="process"):
        parse_history([{"type": "invoke", "f": "read", "key": "x"}])


def test_a_cas_value_must_be_a_pair():
    with pytest.raises(HistoryError, match=r"\[expected, new\]"):
        history(invoke(1, "cas", 5))


def test_an_increment_must_be_an_integer():
    with pytest.raises(HistoryError, match="integer"):
        history(invoke(1, "increment", 1.5, key="c"))


def test_a_key_used_as_register_and_set_is_refused():
    with pytest.raises(HistoryError, match="is a register"):
        history(op(1, "write", 5), op(1, "add", 6))


def test_a_set_read_returning_a_number_is_refused():
    with pytest.raises(HistoryError, match="returns a list"):
        history(op(1, "add", 1, key="s"), op(1, "read", 3, key="s"))


def test_a_final_write_is_refused():
    with pytest.raises(HistoryError, match="only reads can be final"):
        history(op(1, "write", 5, final=True))


def test_a_version_must_be_numbers():
    with pytest.raises(HistoryError, match="version"):
        history(invoke(1, "write", 5), ok(1, "write", 5, version="v1"))


def test_a_line_that_is_not_json_is_refused_with_its_line_number():
    text = '{"process": 1, "type": "invoke", "f": "read", "key": "x"}\n{oops\n'

    with pytest.raises(HistoryError, match="line 2: not JSON"):
        read_history(io.StringIO(text))


def test_blank_lines_are_skipped_and_line_numbers_kept():
    text = (
        '{"process": 1, "type": "invoke", "f": "write", "key": "x", "value": 1}\n\n'
        '{"process": 1, "type": "ok", "f": "write", "key": "x", "value": 1}\n'
    )

    parsed = read_history(io.StringIO(text))

    assert (parsed.ops[0].invoke_line, parsed.ops[0].complete_line) == (1, 3)


def test_a_missing_file_is_a_history_error(tmp_path):
    with pytest.raises(HistoryError, match="cannot read"):
        read_history(tmp_path / "absent.jsonl")


def test_a_failed_operation_is_kept_as_failed():
    parsed = history(invoke(1, "write", 5), fail(1, "write", 5))

    assert parsed.ops[0].status == "fail"
