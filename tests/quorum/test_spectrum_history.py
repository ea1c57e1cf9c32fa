"""The quorum store's spectrum histories (loadtest/histories/quorum.py) recorded briefly on the
real nodes: every mode present, every file a history the checker reads."""

from __future__ import annotations

import json

import pytest

# The checker (issue 14) is on main; this branch's history module needs it once merged.
checker = pytest.importorskip("checker")

pytestmark = pytest.mark.usefixtures("nodes_restored")


@pytest.fixture(scope="module")
def histories(tmp_path_factory, quorum_nodes):
    from loadtest.histories.quorum import record

    return record(out_dir=tmp_path_factory.mktemp("spectrum-quorum"), duration_s=2)


def test_every_mode_records_a_history_the_checker_reads_with_final_reads_per_node(histories):
    from loadtest.histories.quorum import MODES

    assert set(histories) == set(MODES)
    for path in histories.values():
        ops = checker.load(path).ops
        assert {op.f for op in ops} == {"read", "write"}
        assert {op.replica for op in ops if op.final} == {"n2", "n3", "n4"}


def test_the_faults_of_each_mode_are_listed_beside_its_history(histories):
    for path in histories.values():
        faults = json.loads(path.with_name(path.name.replace(".jsonl", ".faults.json")).read_text())
        assert [entry["fault"] for entry in faults][:4] == ["slow", "up", "freeze", "up"]
        assert "stop" in {entry["fault"] for entry in faults}
