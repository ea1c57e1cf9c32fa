"""Sharded counters recorded over HTTP while the hot key's bucket moves to another shard and
back: the history is the checker's, and no acknowledged increment is lost."""

import pytest

from checker import HOLDS, check, load
from loadtest.histories import counters


@pytest.fixture(scope="module")
def histories(service, tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        return counters.record(
            out_dir=tmp_path_factory.mktemp("counters"),
            duration_s=6,
            service=service,
            modes=("fresh",),
        )


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_fresh_mode_records_increments_reads_and_final_reads(histories):
    ops = load(histories["fresh"]).ops

    assert set(histories) == {"fresh"}
    assert any(op.f == "increment" and op.status == "ok" for op in ops)
    assert {op.replica for op in ops if op.final} == {"fresh", "cached"}


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_across_bucket_moves_every_acknowledged_increment_is_in_the_final_reads(histories):
    verdict = check(histories["fresh"], "convergence")

    assert verdict.outcome == HOLDS, verdict.render()
