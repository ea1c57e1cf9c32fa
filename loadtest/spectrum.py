"""The consistency spectrum, measured: ``make spectrum`` (``python -m loadtest.spectrum``), also
an extra of ``make bench``.

Every module of ``loadtest/histories/`` (but ``_``-prefixed helpers) is a pattern with
``record(*, out_dir, duration_s) -> {mode: history file}``: it runs the pattern's real
components under its faults and records a history per mode in the checker's format
(``checker``). A ``record`` that also takes ``service`` is given the running service when
there is one (``make bench``); otherwise it starts what it needs. Each history is checked
against every model (``checker.check_all``); the table has a row per pattern and mode and a
column per model: ``holds``, ``violated`` (with the counterexample's size and file),
``undecided`` (the search budget ran out) or ``n/a`` (the history has nothing the model
judges, e.g. no register for the session models).

Writes ``<out>/<stamp>/``: the histories, ``spectrum.json`` (every verdict), ``spectrum.md``
(the table) and ``counterexamples/``; ``--publish`` also puts the table (and the
counterexamples it links to) into README.md and docs/patterns/checker.md.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import shutil
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.db import connections

from checker import HOLDS, MODELS, UNKNOWN, VIOLATED, Verdict, check_all
from loadtest.extras import Extra, ExtraResult
from loadtest.results import RESULTS_DIR
from loadtest.service import ROOT

if TYPE_CHECKING:
    from loadtest.service import Service

HISTORIES_PACKAGE = "loadtest.histories"
SPECTRUM_DIR = RESULTS_DIR / "spectrum"
PUBLISHED_DIR = ROOT / "docs" / "patterns" / "spectrum"
PUBLISH_TARGETS = (ROOT / "README.md", ROOT / "docs" / "patterns" / "checker.md")
TABLE_START, TABLE_END = "<!-- spectrum-table:start -->", "<!-- spectrum-table:end -->"
DURATION_S = 20.0
UNDECIDED, NOT_APPLICABLE, ERROR = "undecided", "n/a", "error"
SHORT_NAMES = {
    "read-your-writes": "RYW",
    "monotonic-reads": "MR",
    "monotonic-writes": "MW",
    "writes-follow-reads": "WFR",
}


@dataclass
class Row:
    pattern: str
    mode: str
    history: Path | None
    faults: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    operations: int = 0
    error: str = ""

    @property
    def name(self) -> str:
        return f"{self.pattern}/{self.mode}"


def pattern_modules(only: list[str] | None = None) -> dict[str, ModuleType]:
    """Every pattern module present in ``loadtest/histories`` (the lead merges them from the
    patterns' branches: whichever are here run, the others are simply absent)."""
    package = importlib.import_module(HISTORIES_PACKAGE)
    modules = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        if info.name.startswith("_") or (only and info.name not in only):
            continue
        module = importlib.import_module(f"{HISTORIES_PACKAGE}.{info.name}")
        if callable(getattr(module, "record", None)):
            modules[info.name] = module
    return modules


def patterns_record(
    modules: dict[str, ModuleType],
    out_dir: Path,
    duration_s: float,
    *,
    service: Service | None = None,
) -> list[Row]:
    """Record every pattern's histories; a pattern that fails gets an ``error`` row and the
    others still run."""
    rows = []
    for name, module in modules.items():
        print(f"spectrum: recording {name} ({duration_s:g} s per mode)", flush=True)
        kwargs: dict[str, Any] = {"out_dir": out_dir / name, "duration_s": duration_s}
        if service is not None and "service" in inspect.signature(module.record).parameters:
            kwargs["service"] = service
        started = time.monotonic()
        # A pattern before this one may have killed the database leader (ha, chaos): this
        # process's connections to it are dead, and each pattern starts with fresh ones.
        connections.close_all()
        try:
            histories = module.record(**kwargs)
        except Exception as error:  # one pattern's failure is a row, not the end of the run
            traceback.print_exc()
            rows.append(Row(name, "-", None, error=f"{type(error).__name__}: {error}"))
            continue
        print(f"spectrum: {name} recorded in {time.monotonic() - started:.0f} s", flush=True)
        for mode, history in histories.items():
            faults_file = history.with_name(history.name.replace(".jsonl", ".faults.json"))
            faults = json.loads(faults_file.read_text()) if faults_file.exists() else []
            rows.append(Row(name, mode, Path(history), faults=faults))
    return rows


def rows_check(rows: list[Row]) -> None:
    for row in rows:
        if row.history is None:
            continue
        try:
            row.verdicts = check_all(row.history)
            row.operations = sum(1 for line in row.history.open() if '"invoke"' in line)
        except Exception as error:  # a history the checker cannot read is a row's error
            row.error = f"{type(error).__name__}: {error}"


def cell(verdict: Verdict) -> str:
    if verdict.outcome == HOLDS:
        return HOLDS
    if verdict.outcome == VIOLATED:
        return VIOLATED
    if verdict.outcome == UNKNOWN and "budget" in verdict.reason:
        return UNDECIDED
    return NOT_APPLICABLE


def counterexamples_write(rows: list[Row], out_dir: Path) -> dict[tuple[str, str], Path]:
    """One JSON file per violated cell: the verdict with its counterexample."""
    folder = out_dir / "counterexamples"
    written = {}
    for row in rows:
        for model, verdict in row.verdicts.items():
            if verdict.outcome == VIOLATED:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{row.pattern}-{row.mode}-{model}.json"
                path.write_text(json.dumps(verdict.to_dict(), indent=2, default=str))
                written[(row.name, model)] = path
    return written


def table_markdown(rows: list[Row], links: dict[tuple[str, str], str] | None = None) -> str:
    """The table: a row per pattern and mode, a column per model; a violated cell names the
    counterexample's size (operations) and links to it when ``links`` has it."""
    links = links or {}
    header = ["pattern / mode", "ops", *(SHORT_NAMES.get(model, model) for model in MODELS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row.error:
            lines.append(f"| {row.name} | - | {ERROR}: {row.error} |" + " |" * (len(MODELS) - 1))
            continue
        cells = []
        for model in MODELS:
            verdict = row.verdicts[model]
            text = cell(verdict)
            if text == VIOLATED and verdict.counterexample is not None:
                size = f"{len(verdict.counterexample.ops)} ops"
                link = links.get((row.name, model))
                text = f"**violated** ([{size}]({link}))" if link else f"**violated** ({size})"
            cells.append(text)
        lines.append(f"| {row.name} | {row.operations} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_document(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "pattern": row.pattern,
            "mode": row.mode,
            "history": str(row.history) if row.history else None,
            "operations": row.operations,
            "faults": row.faults,
            "error": row.error,
            "verdicts": {model: verdict.to_dict() for model, verdict in row.verdicts.items()},
        }
        for row in rows
    ]


def spectrum_run(
    out_dir: Path,
    duration_s: float,
    *,
    only: list[str] | None = None,
    service: Service | None = None,
) -> tuple[list[Row], dict[tuple[str, str], Path]]:
    """Record, check, and write spectrum.json, spectrum.md and the counterexamples."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = patterns_record(pattern_modules(only), out_dir, duration_s, service=service)
    rows_check(rows)
    counterexamples = counterexamples_write(rows, out_dir)
    (out_dir / "spectrum.json").write_text(json.dumps(rows_document(rows), indent=2, default=str))
    links = {cell_: str(path.relative_to(out_dir)) for cell_, path in counterexamples.items()}
    (out_dir / "spectrum.md").write_text(table_markdown(rows, links) + "\n")
    return rows, counterexamples


def publish(rows: list[Row], counterexamples: dict[tuple[str, str], Path]) -> None:
    """Copy the counterexamples to docs/patterns/spectrum/ and put the table, linking to
    them, between the markers of README.md and docs/patterns/checker.md."""
    if PUBLISHED_DIR.exists():
        shutil.rmtree(PUBLISHED_DIR)
    PUBLISHED_DIR.mkdir(parents=True)
    published = {}
    for cell_, path in counterexamples.items():
        shutil.copy(path, PUBLISHED_DIR / path.name)
        published[cell_] = PUBLISHED_DIR / path.name
    for target in PUBLISH_TARGETS:
        links = {cell_: os.path.relpath(path, target.parent) for cell_, path in published.items()}
        text = target.read_text()
        start, end = text.find(TABLE_START), text.find(TABLE_END)
        if start < 0 or end < start:
            print(f"spectrum: no {TABLE_START} ... {TABLE_END} in {target}: not updated")
            continue
        table = table_markdown(rows, links)
        target.write_text(text[: start + len(TABLE_START)] + "\n" + table + "\n" + text[end:])


def spectrum_extra(*, service: Service, scale: float, work_dir: Path) -> ExtraResult:
    """``make bench``'s spectrum: every pattern, ``DURATION_S x scale`` per mode, against the
    benchmark's service where a pattern takes one."""
    rows, counterexamples = spectrum_run(
        work_dir / "spectrum", max(DURATION_S * scale, 5.0), service=service
    )
    table = []
    for row in rows:
        cells = {model: cell(verdict) for model, verdict in row.verdicts.items()}
        table.append({"pattern": row.name, "ops": row.operations, **cells, "error": row.error})
    return ExtraResult(
        figures={
            "histories": sum(1 for row in rows if row.verdicts),
            "errors": sum(1 for row in rows if row.error),
            "violated_cells": len(counterexamples),
        },
        table=table,
        details={"rows": rows_document(rows)},
    )


SPECTRUM = Extra(
    "spectrum",
    spectrum_extra,
    "every pattern and mode under its faults, checked against every consistency model",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.spectrum", description=__doc__)
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds per mode")
    parser.add_argument("--only", nargs="*", help="patterns (modules of loadtest/histories)")
    parser.add_argument("--out", type=Path, default=SPECTRUM_DIR)
    parser.add_argument(
        "--publish", action="store_true", help="write the table into README and the docs"
    )
    options = parser.parse_args(argv)

    from loadtest.cli import django_setup

    django_setup()
    from django.core.management import call_command

    call_command("migrate_all", verbosity=0)
    call_command("seed_demo", verbosity=0)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = options.out / stamp
    rows, counterexamples = spectrum_run(out_dir, options.duration, only=options.only)
    print((out_dir / "spectrum.md").read_text())
    for row in rows:
        for verdict in row.verdicts.values():
            if verdict.outcome == VIOLATED:
                print(f"{row.name} {verdict.render()}\n")
    if options.publish:
        publish(rows, counterexamples)
    print(f"spectrum: {out_dir}")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
