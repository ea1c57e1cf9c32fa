"""The benchmark's ratios and report, from a document shaped like a real run's."""

from loadtest.bench import scenario_blocks
from loadtest.locust_runs import Scenario
from loadtest.ratios import compute_ratios
from loadtest.report import write_markdown, write_plots


def _scenario(rps: float) -> dict:
    return {
        "users": 16,
        "rps": rps,
        "rps_min": rps - 10,
        "rps_max": rps + 10,
        "p50_ms": 30.0,
        "p99_ms": 90.0,
        "failures": 0,
        "server_cpu_ms_per_request": 3.5,
        "locust_cpu_percent_max": 40.0,
        "valid": True,
    }


def _document() -> dict:
    document = {
        "started_at": "20260101T000000Z",
        "profile": {"name": "quick", "warmup_s": 2, "rounds": 1, "duration_s": 5},
        "machine": {
            "cores": 2,
            "memory_gib": 24,
            "python": "3.11",
            "django": "5.2",
            "postgres": "16.2",
            "locust": "2.47",
        },
        "scenarios": {
            "trivial": _scenario(400.0),
            "profile_cached": _scenario(380.0),
            "profile_replica": _scenario(300.0),
            "profile_primary": _scenario(330.0),
        },
        "baselines": {"redis": {"get_per_s": 20000.0}},
        "extras": {
            "routing": {
                "lsn_stale_reads": 0,
                "table": [{"strategy": "lsn", "stale_rate": 0.0}],
                "plot": {"kind": "bars", "title": "t", "x": ["lsn"], "series": {"stale": [0.0]}},
            }
        },
        "goodput": {},
    }
    document["ratios"] = compute_ratios(document)
    return document


def _ratio(document: dict, figure_start: str) -> dict:
    return next(r for r in document["ratios"] if r["figure"].startswith(figure_start))


def test_a_ratio_is_computed_and_judged_against_its_aim():
    ratio = _ratio(_document(), "cached profile read")

    assert ratio["value"] == 0.95
    assert ratio["met"] is True


def test_a_missed_aim_is_reported_as_missed():
    ratio = _ratio(_document(), "replica-routed read")

    assert ratio["value"] == 0.909
    assert ratio["met"] is False


def test_a_figure_that_was_not_measured_is_not_judged():
    ratio = _ratio(_document(), "completed transfers")

    assert ratio["value"] is None
    assert ratio["met"] is None


def test_an_upper_bound_aim_is_met_at_the_bound():
    assert _ratio(_document(), "stale reads")["met"] is True


def test_the_report_has_a_table_and_plots(tmp_path):
    document = _document()

    write_markdown(tmp_path / "summary.md", document)
    write_plots(tmp_path, document)

    summary = (tmp_path / "summary.md").read_text()
    assert "| cached profile read RPS / trivial endpoint RPS | 0.95 | >= 0.9 | yes |" in summary
    assert "**no**" in summary
    assert (tmp_path / "scenarios.png").stat().st_size > 1000
    assert (tmp_path / "routing.png").stat().st_size > 1000


def test_scenarios_of_one_group_share_a_block_and_the_others_stand_alone():
    names = ["a", "b", "c", "d", "e"]
    groups = ["reads", "reads", "", "x", "x"]
    scenarios = [Scenario(n, "User", group=g) for n, g in zip(names, groups, strict=True)]

    blocks = [[scenario.name for scenario in block] for block in scenario_blocks(scenarios)]

    assert blocks == [["a", "b"], ["c"], ["d", "e"]]
