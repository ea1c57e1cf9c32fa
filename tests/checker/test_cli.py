"""``python -m checker``: verdicts on stdout, the exit code says which."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .builders import info, invoke, op

REPOSITORY = Path(__file__).resolve().parents[2]


def write_history(path, *parts):
    events = []
    for part in parts:
        events.extend(part if isinstance(part, list) else [part])
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "checker", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        timeout=120,
        check=False,
    )


@pytest.fixture
def linearizable_history(tmp_path):
    return write_history(tmp_path / "ok.jsonl", op(1, "write", 1), op(2, "read", 1))


@pytest.fixture
def stale_history(tmp_path):
    return write_history(
        tmp_path / "stale.jsonl", op(1, "write", 1), op(1, "write", 2), op(2, "read", 1)
    )


def test_a_history_that_satisfies_the_model_exits_0(linearizable_history):
    result = run(linearizable_history, "--model", "linearizable")

    assert result.returncode == 0
    assert "HOLDS" in result.stdout


def test_a_violated_model_exits_1_with_the_operations_involved(stale_history):
    result = run(stale_history, "--model", "linearizable")

    assert result.returncode == 1
    assert "read -> 1" in result.stdout


def test_the_json_verdict_carries_the_counterexample(stale_history):
    result = run(stale_history, "--model", "linearizable", "--json")

    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "violated"
    assert [o["value"] for o in verdict["counterexample"]["operations"]] == [1, 2, 1]


def test_a_search_out_of_budget_exits_2(tmp_path):
    events = [invoke(p, "write", p) for p in range(6)] + [info(p, "write", p) for p in range(6)]
    path = write_history(tmp_path / "wide.jsonl", *events, op(9, "read", 3), op(9, "read", 1))

    result = run(path, "--model", "linearizable", "--budget", "2")

    assert result.returncode == 2
    assert "budget" in result.stdout


def test_a_model_the_history_cannot_inform_exits_2(linearizable_history):
    assert run(linearizable_history, "--model", "convergence").returncode == 2


def test_a_malformed_history_exits_3_with_the_reason_on_stderr(tmp_path):
    path = write_history(tmp_path / "bad.jsonl", invoke(1, "write", 1), invoke(1, "write", 2))

    result = run(path, "--model", "linearizable")

    assert result.returncode == 3
    assert "line 2" in result.stderr


def test_an_unknown_model_exits_3(linearizable_history):
    assert run(linearizable_history, "--model", "strict").returncode == 3


def test_a_history_read_from_stdin_is_checked(linearizable_history):
    result = run("-", "--model", "linearizable", stdin=linearizable_history.read_text())

    assert result.returncode == 0


def test_all_models_print_one_row_each(stale_history):
    result = run(stale_history, "--model", "all", "--json")

    rows = json.loads(result.stdout)
    assert rows["linearizable"]["verdict"] == "violated"
    assert rows["session"]["verdict"] == "holds"
    assert result.returncode == 1


def test_a_model_the_history_is_malformed_for_is_an_invalid_row(tmp_path):
    path = write_history(
        tmp_path / "dup.jsonl", op(1, "write", 1), op(2, "write", 1), op(3, "read", 1)
    )

    result = run(path, "--model", "all", "--json")

    rows = json.loads(result.stdout)
    assert rows["causal"]["verdict"] == "invalid"
    assert rows["linearizable"]["verdict"] == "holds"
    assert result.returncode == 3


def test_the_benchmark_reports_a_rate_for_each_model():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "checker.bench",
            "--operations",
            "200",
            "--keys",
            "5",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert {row[0] for row in rows} >= {"linearizable", "sequential", "causal", "session"}
    assert all(row[-1] == "holds" for row in rows if row[0] != "parse")
