"""The benchmark's shared helpers: percentiles, Zipf keys, the extras' protocol and the plan."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest.extras import ExtraResult, Plot
from loadtest.results import (
    latest_point,
    routing_comparison_latest,
    routing_comparison_store,
    run_folder_create,
)
from loadtest.stats import percentile
from loadtest.zipf import counter_keys

samples = st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=200)
fractions = st.floats(min_value=0.0, max_value=1.0)


@given(samples, fractions)
def test_a_percentile_is_a_sample_with_at_most_that_share_below_it(values, fraction):
    value = percentile(values, fraction)

    below = sum(sample < value for sample in values)
    at_or_below = sum(sample <= value for sample in values)
    assert value in values
    assert below <= len(values) * fraction
    assert at_or_below > len(values) * fraction or at_or_below == len(values)


def test_a_percentile_of_no_samples_is_refused():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.99)


def test_zipf_keys_give_the_celebrity_its_share_and_low_ranks_the_most_draws():
    keys = counter_keys(celebrity="star", keys=1000, celebrity_share=0.3)
    rng = random.Random(7)  # noqa: S311 - a workload, not security

    drawn = Counter(keys.draw(rng) for _ in range(20_000))

    assert 0.28 < drawn["star"] / 20_000 < 0.32
    assert drawn["user:1"] > drawn["user:2"] > drawn["user:10"] > drawn["user:500"]
    assert all(key == "star" or 1 <= int(key.removeprefix("user:")) <= 1000 for key in drawn)


def test_an_extra_result_survives_the_results_document():
    result = ExtraResult(
        figures={"stale_pct": 0.0, "pairs": 50, "hot": True, "missing": None},
        table=[{"strategy": "lsn", "stale_pct": 0.0}],
        plot=Plot(title="t", x=["lsn"], series={"stale": [0.0]}, kind="bars"),
        details={"per_shard": {"shard_0": 3}, "sample": ["500 oops"]},
    )

    assert ExtraResult.from_document(result.as_document()) == result


def test_the_plan_names_each_extra_once_and_every_extra_a_ratio_reads():
    from loadtest.plan import EXTRAS
    from loadtest.ratios import RATIOS

    names = [extra.name for extra in EXTRAS]
    read = {
        path.split(".")[1]
        for ratio in RATIOS
        for path in (ratio.numerator, ratio.denominator)
        if path and path.startswith("extras.")
    }
    assert len(names) == len(set(names))
    assert read <= set(names)


def test_an_unknown_extra_is_refused_before_anything_runs(monkeypatch, tmp_path):
    from loadtest.bench import main

    monkeypatch.setenv("DJANGO_DEBUG", "false")

    with pytest.raises(SystemExit) as refused:
        main(["--extras", "no_such_extra", "--out", str(tmp_path)])

    assert refused.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_the_newest_routing_comparison_is_named_by_its_run_not_by_the_latest_link(tmp_path):
    run = run_folder_create(tmp_path, "20260101T000000Z")
    routing_comparison_store(run.work, {"lsn": {"stale_read_backs_pct": 0.0, "note": "x"}})
    latest_point(tmp_path, run)

    comparison = routing_comparison_latest(tmp_path)

    assert comparison is not None
    assert comparison.run == "20260101T000000Z"
    assert comparison.strategies == {"lsn": {"stale_read_backs_pct": 0.0}}
