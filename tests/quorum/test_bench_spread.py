"""The quorum benchmark's figures over repeated runs (pure: no node is involved)."""

from loadtest.quorum_bench import repeated, spread


def test_each_number_becomes_its_median_and_range_over_the_runs():
    runs = [
        {"w1r1": {"stale_rate": 0.5, "w_plus_r_gt_n": False, "node": "n2"}},
        {"w1r1": {"stale_rate": 0.2, "w_plus_r_gt_n": False, "node": "n2"}},
        {"w1r1": {"stale_rate": 0.4, "w_plus_r_gt_n": False, "node": "n2"}},
    ]

    assert spread(runs) == {
        "w1r1": {
            "stale_rate": {"median": 0.4, "min": 0.2, "max": 0.5},
            "w_plus_r_gt_n": False,
            "node": "n2",
        }
    }


def test_a_repeated_run_writes_each_run_apart_and_the_spread(tmp_path):
    counts = iter([3, 1, 2])

    def run_once(duration_s, out_dir):
        out_dir.mkdir(parents=True)
        return {"acknowledged": next(counts)}

    summary = repeated(10, tmp_path, 3, run_once=run_once)

    assert summary == {"runs": 3, "figures": {"acknowledged": {"median": 2, "min": 1, "max": 3}}}
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "quorum-spread.json",
        "run-1",
        "run-2",
        "run-3",
    ]
