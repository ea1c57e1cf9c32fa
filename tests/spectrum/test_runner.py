"""``make spectrum``'s runner: it finds the pattern modules present, runs each, and a pattern
that fails becomes a row of its own while the others are still checked."""

from types import ModuleType

from checker import Recorder
from loadtest.spectrum import (
    NOT_APPLICABLE,
    pattern_modules,
    patterns_record,
    rows_check,
    table_markdown,
)


def test_the_runner_finds_the_pattern_modules_and_skips_the_helpers():
    modules = pattern_modules()

    assert {"profiles", "cache", "counters"} <= set(modules)
    assert not any(name.startswith("_") for name in modules)


def _stale_register(out_dir):
    """A history in which a session does not read its own write: a stale read."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "stale.jsonl"
    with Recorder(path) as recorder:
        client = recorder.session("s1")
        client.invoke("write", "k", 1).ok()
        client.invoke("read", "k").ok(None)
        client.invoke("read", "k", final=True).ok(1, replica="a")
    return path


def _pattern(name, record):
    module = ModuleType(name)
    module.record = record
    return module


def test_a_failing_pattern_is_an_error_row_and_the_others_are_checked(tmp_path):
    def broken(*, out_dir, duration_s):
        raise RuntimeError("the cluster did not start")

    def stale(*, out_dir, duration_s):
        return {"stale-mode": _stale_register(out_dir)}

    rows = patterns_record(
        {"broken": _pattern("broken", broken), "stale": _pattern("stale", stale)},
        tmp_path,
        duration_s=1,
    )
    rows_check(rows)

    assert [(row.name, bool(row.error)) for row in rows] == [
        ("broken/-", True),
        ("stale/stale-mode", False),
    ]
    verdicts = rows[1].verdicts
    assert verdicts["read-your-writes"].outcome == "violated"
    assert verdicts["convergence"].outcome == "holds"


def test_the_table_names_each_violation_with_its_size_and_link(tmp_path):
    def stale(*, out_dir, duration_s):
        return {"m": _stale_register(out_dir)}

    rows = patterns_record({"p": _pattern("p", stale)}, tmp_path, duration_s=1)
    rows_check(rows)
    table = table_markdown(rows, {("p/m", "read-your-writes"): "ce/p-m-ryw.json"})

    row = next(line for line in table.splitlines() if line.startswith("| p/m"))
    cells = [text.strip() for text in row.strip("|").split("|")]
    header = [text.strip() for text in table.splitlines()[0].strip("|").split("|")]
    by_column = dict(zip(header, cells, strict=True))
    assert by_column["RYW"] == "**violated** ([2 ops](ce/p-m-ryw.json))"
    assert by_column["convergence"] == "holds"
    assert NOT_APPLICABLE not in (by_column["linearizable"], by_column["RYW"])
