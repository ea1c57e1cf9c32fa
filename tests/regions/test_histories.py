"""The regions' spectrum histories (loadtest/histories/regions.py): a short recording on the
real regions parses in the checker's format, with every mode and final reads per region."""

from __future__ import annotations

import pytest

from regions.conf import REGION_NAMES
from regions.models import RegionNetwork

checker = pytest.importorskip("checker", reason="the history checker (issue 14) is on main")

from loadtest.histories.regions import MODES, record  # noqa: E402 - needs the checker

pytestmark = [pytest.mark.regions, pytest.mark.django_db]


@pytest.fixture(scope="module")
def histories(tmp_path_factory, django_db_setup, django_db_blocker, regions_up):
    """One recording for the module (it takes about 20 s); the network row it committed in
    the default database is removed again, as other tests start without one."""
    with django_db_blocker.unblock():
        try:
            yield record(out_dir=tmp_path_factory.mktemp("histories"), duration_s=3)
        finally:
            RegionNetwork.objects.all().delete()


def test_every_mode_records_a_history_the_checker_parses(histories):
    assert set(histories) == set(MODES)
    for path in histories.values():
        assert len(checker.load(path).ops) > 0


def test_every_region_reads_every_key_finally(histories):
    for path in histories.values():
        history = checker.load(path)
        finals = {(op.key, op.replica) for op in history.ops if op.final and op.status == "ok"}
        assert finals == {(key, region) for key in history.datatypes for region in REGION_NAMES}


@pytest.mark.parametrize("mode", ["lww-register", "mv-register", "counter", "or-set"])
def test_the_store_converges_after_the_partition_heals(histories, mode):
    verdict = checker.check(histories[mode], "convergence")

    assert verdict.outcome == checker.HOLDS, verdict.reason


def test_the_vignettes_histories_parse_with_final_reads_of_every_region(regions, tmp_path):
    from regions.splitbrain import split_brain_run

    split_brain_run(partition_s=1.0, keys=4, out_dir=tmp_path, echo=lambda _: None)

    for name in ("split_brain_history.jsonl", "split_brain_naive_history.jsonl"):
        history = checker.load(tmp_path / name)
        finals = {op.replica for op in history.ops if op.final}
        assert finals == set(REGION_NAMES), name
