"""The coordinator on real storage nodes: quorums, a slow node, stopped, cut and frozen nodes,
sloppy writes with hinted handoff, read repair, siblings. Histories are checked for stale reads
(``quorum.history``)."""

from __future__ import annotations

import time

import pytest

from loadtest.quorum_bench import PairStats, pairs_run, slow_node_set, stale_summary
from quorum.conf import conf
from quorum.control import node_state_set
from quorum.errors import QuorumWriteUnavailable
from quorum.handoff import hints_hand_off
from quorum.history import History
from quorum.services import quorum_value_get, quorum_value_put
from tests.quorum.conftest import hints_on, keys_where, stored_on
from tests.saga.conftest import broker_purge, celery_beat
from tests.workers import celery_worker

pytestmark = pytest.mark.usefixtures("nodes_restored")

SLOW = "n2"
HANDOFF_WAIT_S = 40


def _values(node: str, key: str) -> list:
    return [stored.value for stored in stored_on(node, key)]


@pytest.fixture
def slow_node() -> str:
    slow_node_set(SLOW)
    return SLOW


@pytest.mark.parametrize(("w", "r"), [(2, 2), (3, 1)])
def test_strict_quorum_reads_never_miss_an_acknowledged_write_with_a_slow_node(
    slow_node, key_prefix, w, r
):
    keys = keys_where(key_prefix, 10, lambda preference: slow_node in preference)
    history = History()

    stats = pairs_run(history=history, keys=keys, w=w, r=r, rounds=3)
    summary = stale_summary(history, stats, w=w, r=r)

    assert stats.write_outcomes == {"ok": 30}
    assert summary["checked_reads"] == 30
    assert summary["stale_reads"] == 0


def test_w1_r1_reads_go_stale_on_the_slow_node(slow_node, key_prefix):
    keys = keys_where(key_prefix, 20, lambda preference: slow_node in preference)
    history = History()

    stats = pairs_run(history=history, keys=keys, w=1, r=1, rounds=4)
    summary = stale_summary(history, stats, w=1, r=1)

    assert summary["checked_reads"] == 80
    assert summary["stale_answered_by"].get(slow_node, 0) >= 1, summary


def test_w2_writes_stay_available_with_a_minority_of_nodes_stopped(key_prefix):
    down = ("n4", "n5")
    keys = keys_where(key_prefix, 8, lambda preference: len(set(down) & set(preference)) == 1)
    for node in down:
        node_state_set(node=node, state="down", how="stop")

    answers = [
        quorum_value_put(key=key, value=index, context_header=None, w=2)
        for index, key in enumerate(keys)
    ]

    assert all(answer.document["acknowledgements_counted"] >= 2 for answer in answers)
    for key, answer in zip(keys, answers, strict=True):
        assert not set(down) & {ack["node"] for ack in answer.document["acknowledged"]}, key


def test_a_strict_write_short_of_its_quorum_is_a_503_naming_the_node_it_landed_on(key_prefix):
    (key,) = keys_where(key_prefix, 1, lambda preference: True)
    preference = conf().ring().preference_list(key, 3)
    for node in preference[1:]:
        node_state_set(node=node, state="down", how="cut")

    with pytest.raises(QuorumWriteUnavailable) as raised:
        quorum_value_put(key=key, value="partial", context_header=None, w=2)

    landed = [ack["node"] for ack in raised.value.data["acknowledged"]]
    assert landed == preference[:1]
    assert _values(preference[0], key) == ["partial"]


def test_a_sloppy_write_with_two_preferred_nodes_stopped_is_acknowledged_with_hints(key_prefix):
    down = ("n4", "n5")
    (key,) = keys_where(key_prefix, 1, lambda preference: set(down) <= set(preference))
    for node in down:
        node_state_set(node=node, state="down", how="stop")

    answer = quorum_value_put(key=key, value="sloppy", context_header=None, w=2, sloppy=True)

    hinted = answer.document["hinted"]
    assert answer.document["acknowledgements_counted"] >= 2
    assert hinted
    assert {hint["hint_for"] for hint in hinted} <= set(down)
    for hint in hinted:
        assert hint["node"] not in conf().ring().preference_list(key, 3)
        assert any(h.key == key and h.intended == hint["hint_for"] for h in hints_on(hint["node"]))


def test_hinted_handoff_delivers_a_version_when_its_node_returns(key_prefix):
    (key,) = keys_where(key_prefix, 1, lambda preference: "n3" in preference)
    node_state_set(node="n3", state="down", how="stop")
    answer = quorum_value_put(key=key, value="handed", context_header=None, w=3, sloppy=True)
    (hint,) = [ack for ack in answer.document["hinted"] if ack["hint_for"] == "n3"]
    node_state_set(node="n3", state="up")

    delivered = hints_hand_off()

    assert delivered.get("n3", 0) >= 1
    assert _values("n3", key) == ["handed"]
    assert not [h for h in hints_on(hint["node"]) if h.key == key]


def test_read_repair_updates_a_replica_that_missed_a_write(key_prefix):
    (key,) = keys_where(key_prefix, 1, lambda preference: True)
    stale = conf().ring().preference_list(key, 3)[2]
    node_state_set(node=stale, state="down", how="cut")
    quorum_value_put(key=key, value="fresh", context_header=None, w=2)
    node_state_set(node=stale, state="up")
    assert _values(stale, key) == []

    answer = quorum_value_get(key=key, r=3)

    assert answer.document["value"] == "fresh"
    assert [(repair["node"], repair["ok"]) for repair in answer.document["repairs"]] == [
        (stale, True)
    ]
    assert _values(stale, key) == ["fresh"]


def test_concurrent_writes_are_siblings_until_a_write_that_saw_both(key_prefix):
    (key,) = keys_where(key_prefix, 1, lambda preference: True)
    first = quorum_value_put(key=key, value="a", context_header=None, w=3)
    quorum_value_put(key=key, value="b", context_header=None, w=3)

    both = quorum_value_get(key=key, r=2)
    merged = quorum_value_put(key=key, value="ab", context_header=both.context_header, w=3)
    after = quorum_value_get(key=key, r=3)

    assert sorted(s["value"] for s in both.document["siblings"]) == ["a", "b"]
    assert first.context_header != merged.context_header
    assert [s["value"] for s in after.document["siblings"]] == ["ab"]


def test_a_frozen_node_is_gone_around_within_the_request_deadline(key_prefix):
    (key,) = keys_where(key_prefix, 1, lambda preference: "n1" in preference)
    node_state_set(node="n1", state="down", how="freeze")

    written = quorum_value_put(key=key, value="around", context_header=None, w=2)
    read = quorum_value_get(key=key, r=2)

    assert "n1" not in {ack["node"] for ack in written.document["acknowledged"]}
    assert read.document["value"] == "around"
    assert "n1" not in read.document["answered"]
    assert written.document["elapsed_ms"] < conf().request_timeout_s * 1000


def test_history_of_a_run_is_written_as_json_lines(tmp_path, key_prefix):
    keys = keys_where(key_prefix, 2, lambda preference: True)
    history = History()
    pairs_run(history=history, keys=keys, w=2, r=2, rounds=1, writers=1, stats=PairStats())

    history.write_jsonl(tmp_path / "history.jsonl")
    lines = (tmp_path / "history.jsonl").read_text().splitlines()

    assert len(lines) == 8
    assert '"type":"invoke"' in lines[0]
    assert '"f":"write"' in lines[0]


@pytest.mark.worker
@pytest.mark.django_db
def test_the_beat_task_hands_hints_off_once_the_node_is_back(tmp_path, key_prefix):
    (key,) = keys_where(key_prefix, 1, lambda preference: "n3" in preference)
    node_state_set(node="n3", state="down", how="stop")
    answer = quorum_value_put(key=key, value="by beat", context_header=None, w=3, sloppy=True)
    (hint,) = [ack for ack in answer.document["hinted"] if ack["hint_for"] == "n3"]
    node_state_set(node="n3", state="up")
    broker_purge()

    with celery_worker(tmp_path, name="quorum"), celery_beat(tmp_path):
        deadline = time.monotonic() + HANDOFF_WAIT_S
        while _values("n3", key) != ["by beat"] and time.monotonic() < deadline:
            time.sleep(0.5)

    assert _values("n3", key) == ["by beat"]
    assert not [h for h in hints_on(hint["node"]) if h.key == key]
