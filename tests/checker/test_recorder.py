"""Recording histories with checker.Recorder, from the operations a client runs."""

import json
import threading

import pytest

from checker import HOLDS, Recorder, check, merge_recordings, read_history


class Timeout(Exception):
    pass


class Refused(Exception):
    pass


def test_recorded_operations_read_back_as_a_history():
    recorder = Recorder()
    client = recorder.session("a")
    client.invoke("write", "k", 1).ok()
    client.invoke("read", "k").ok(1)

    ops = recorder.history().ops

    assert [(op.f, op.status, op.session) for op in ops] == [
        ("write", "ok", "a"),
        ("read", "ok", "a"),
    ]
    assert ops[1].result == 1


def test_each_event_is_appended_to_the_sink_as_one_json_line(tmp_path):
    path = tmp_path / "history.jsonl"
    with Recorder(path) as recorder:
        recorder.session("a").invoke("write", "k", 1).ok()

    lines = path.read_text().splitlines()

    assert [json.loads(line)["type"] for line in lines] == ["invoke", "ok"]
    assert read_history(path).ops[0].value == 1


def test_an_exception_in_the_block_records_info_and_propagates():
    recorder = Recorder()
    client = recorder.session("a")

    with pytest.raises(Timeout), client.operation("write", "k", 1):
        raise Timeout

    assert recorder.history().ops[0].status == "info"


def test_a_definite_failure_records_fail():
    recorder = Recorder()
    client = recorder.session("a")

    with pytest.raises(Refused), client.operation("write", "k", 1, definite_failures=(Refused,)):
        raise Refused

    assert recorder.history().ops[0].status == "fail"


def test_a_block_that_forgets_to_complete_records_info():
    recorder = Recorder()
    with recorder.session("a").operation("read", "k"):
        pass

    assert recorder.history().ops[0].status == "info"


def test_after_an_info_the_session_continues_under_a_new_process():
    recorder = Recorder()
    client = recorder.session("a")
    client.invoke("write", "k", 1).info()
    client.invoke("read", "k").ok(1)

    first, second = recorder.history().ops

    assert first.process != second.process
    assert first.session == second.session == "a"


def test_a_session_cannot_run_two_operations_at_once():
    client = Recorder().session("a")
    client.invoke("write", "k", 1)

    with pytest.raises(RuntimeError, match="still running"):
        client.invoke("read", "k")


def test_extra_fields_reach_the_history():
    recorder = Recorder()
    client = recorder.session("a")
    client.invoke("write", "k", 1).ok(version=3)
    client.invoke("read", "k", final=True).ok(1, replica="r1")

    write, read = recorder.history().ops

    assert (write.version, read.final, read.replica) == (3, True, "r1")


def test_unique_values_never_repeat():
    recorder = Recorder()

    assert len({recorder.unique_value() for _ in range(100)}) == 100


def test_threads_recording_at_once_leave_a_valid_history():
    recorder = Recorder()

    def client(name):
        session = recorder.session(name)
        for _ in range(50):
            value = recorder.unique_value()
            session.invoke("write", "k", value).ok()
            session.invoke("read", "k").ok(value)

    threads = [threading.Thread(target=client, args=(f"s{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(recorder.history().ops) == 400
    assert check(recorder.history(), "read-your-writes").outcome == HOLDS


def test_recorders_with_namespaces_never_share_a_process_id():
    first, second = Recorder(namespace="w1"), Recorder(namespace="w2")

    assert first.session().process != second.session().process


def test_recordings_made_apart_merge_in_time_order(tmp_path):
    ticks = iter(range(100))
    clock = lambda: next(ticks)  # noqa: E731 - one shared clock for both recorders
    first = Recorder(tmp_path / "a.jsonl", clock=clock, namespace="a")
    second = Recorder(tmp_path / "b.jsonl", clock=clock, namespace="b")
    writer, reader = first.session("a"), second.session("b")
    pending = writer.invoke("write", "k", 1)
    reader.invoke("read", "k").ok(None)
    pending.ok()
    first.close()
    second.close()

    merged = merge_recordings(tmp_path / "a.jsonl", tmp_path / "b.jsonl")

    assert [(e["session"], e["type"]) for e in merged] == [
        ("a", "invoke"),
        ("b", "invoke"),
        ("b", "ok"),
        ("a", "ok"),
    ]
    assert check(merged, "linearizable").outcome == HOLDS
