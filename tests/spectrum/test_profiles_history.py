"""The checker on the real service: profile reads recorded over HTTP under a real replica
apply delay. ``eventual`` reads show the anomalies the seed names; ``session`` keeps its four
guarantees."""

import pytest
from django.conf import settings

from checker import HOLDS, VIOLATED, check, load
from loadtest.histories import profiles

pytestmark = [pytest.mark.replication]


@pytest.fixture(scope="module")
def histories(service, tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        return profiles.record(
            out_dir=tmp_path_factory.mktemp("profiles"),
            duration_s=8,
            service=service,
            modes=("session", "eventual"),
            faults=("replica_delay",),
        )


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_each_mode_records_a_history_the_checker_reads_with_final_reads(histories):
    assert set(histories) == {"session", "eventual"}
    for path in histories.values():
        ops = load(path).ops
        assert any(op.f == "write" and op.status == "ok" for op in ops)
        served = {op.replica for op in ops if op.final}
        # Any standby in rotation may serve the replica's final reads: one alias per standby.
        assert "primary" in served
        assert served & set(settings.REPLICA_ALIASES)


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_eventual_reads_under_replica_delay_violate_read_your_writes_or_monotonic_reads(
    histories,
):
    verdicts = {
        model: check(histories["eventual"], model)
        for model in ("read-your-writes", "monotonic-reads")
    }

    assert VIOLATED in {verdict.outcome for verdict in verdicts.values()}
    violated = next(v for v in verdicts.values() if v.outcome == VIOLATED)
    assert len(violated.counterexample.ops) >= 2


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_session_reads_under_replica_delay_keep_the_session_guarantees(histories):
    verdict = check(histories["session"], "session")

    assert verdict.outcome == HOLDS, verdict.render()
