"""The HA pattern's spectrum histories (loadtest/histories/ha.py), recorded briefly on the real
cluster across real leader kills: every mode present, every file a history the checker reads,
with final reads of every member."""

from __future__ import annotations

import json

import pytest

# The checker (issue 14) is on main; this branch's history module needs it once merged.
checker = pytest.importorskip("checker")
from loadtest.histories.ha import MODES, record  # noqa: E402 - after the importorskip

pytestmark = [pytest.mark.ha, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    # Without the frozen leader (20 s of Patroni's ttl per mode): tests/ha/test_failover.py
    # has the zombie; `make spectrum` records it.
    return record(out_dir=tmp_path_factory.mktemp("spectrum-ha"), duration_s=2, zombie=False)


def test_every_mode_records_a_history_the_checker_reads_with_final_reads_per_member(histories):
    assert set(histories) == set(MODES)
    for mode, path in histories.items():
        ops = checker.load(path).ops
        assert {op.f for op in ops} == {"read", "write"}, mode
        assert len({op.replica for op in ops if op.final}) == 3, mode


def test_each_history_has_its_leader_kill_listed_beside_it(histories):
    for mode, path in histories.items():
        faults = json.loads(path.with_name(path.name.replace(".jsonl", ".faults.json")).read_text())
        assert faults[0]["fault"] in {"kill_leader", "kill_etcd_leader"}, mode
        assert (faults[-1]["fault"], faults[-1]["equal"]) == ("etcd_hashkv", True), mode
