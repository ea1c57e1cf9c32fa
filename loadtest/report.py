"""The benchmark report: a Markdown summary and PNG plots from ``results.json``'s document
(each extra read back as the ``ExtraResult`` it stored)."""

from __future__ import annotations

from pathlib import Path

from loadtest.extras import ExtraResult


def _cell(value) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:,}" if isinstance(value, int) else f"{value}"


def write_markdown(path: Path, document: dict) -> None:
    machine = document["machine"]
    lines = [
        f"# statelab benchmark {document['started_at']} ({document['profile']['name']} profile)",
        "",
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}, "
        f"Django {machine['django']}, Postgres {machine['postgres']}, "
        f"Locust {machine['locust']}. "
        f"Each scenario: {document['profile']['warmup_s']} s warm-up, then "
        f"{document['profile']['rounds']} x {document['profile']['duration_s']} s; "
        "median (min-max).",
        "",
        "## Ratios",
        "",
        "| figure | value | aim | met |",
        "|---|---|---|---|",
    ]
    for ratio in document["ratios"]:
        met = "n/a" if ratio["met"] is None else ("yes" if ratio["met"] else "**no**")
        lines.append(f"| {ratio['figure']} | {_cell(ratio['value'])} | {ratio['aim']} | {met} |")
    lines += [
        "",
        "## Scenarios",
        "",
        "| scenario | users | RPS median (min-max) | p50 ms | p99 ms | failures "
        "| server CPU ms/req | Locust CPU % | valid |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, figures in document["scenarios"].items():
        lines.append(
            f"| {name} | {figures['users']} "
            f"| {figures['rps']} ({figures['rps_min']}-{figures['rps_max']}) "
            f"| {figures['p50_ms']} | {figures['p99_ms']} | {figures['failures']} "
            f"| {_cell(figures['server_cpu_ms_per_request'])} "
            f"| {figures['locust_cpu_percent_max']} "
            f"| {'yes' if figures['valid'] else '**no: load generator saturated**'} |"
        )
    lines += ["", "## Baselines (same run)", "", "| baseline | figures |", "|---|---|"]
    for name, figures in document["baselines"].items():
        shown = ", ".join(
            f"{key} {value}" for key, value in figures.items() if key != "description"
        )
        lines.append(f"| {name} | {shown} |")
    if document.get("goodput"):
        goodput = document["goodput"]
        lines += [
            "",
            f"## Goodput at the SLO (p99 <= {goodput['slo_p99_ms']} ms, errors < "
            f"{goodput['slo_max_error_ratio'] * 100:g} %): {goodput['goodput_rps']} RPS",
            "",
            "| users | RPS | p99 ms | error ratio | within SLO |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {step['users']} | {step['rps']} | {step['p99_ms']} | {step['error_ratio']} | "
            f"{'yes' if step['within_slo'] else 'no'} |"
            for step in goodput["steps"]
        ]
    for name, extra in document["extras"].items():
        lines += ["", f"## {name}", "", *_extra_markdown(ExtraResult.from_document(extra))]
    path.write_text("\n".join(lines) + "\n")


def _extra_markdown(result: ExtraResult) -> list[str]:
    lines = []
    if result.table:
        header = list(result.table[0])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [
            "| " + " | ".join(_cell(row[key]) for key in header) + " |" for row in result.table
        ]
    return lines + [f"- {key}: {_cell(value)}" for key, value in result.figures.items()]


def write_plots(out_dir: Path, document: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = document["scenarios"]
    if scenarios:
        names = list(scenarios)
        figure, (throughput, latency) = plt.subplots(1, 2, figsize=(12, 4.5))
        rps = [scenarios[name]["rps"] for name in names]
        errors = [
            [r - scenarios[n]["rps_min"] for n, r in zip(names, rps, strict=True)],
            [scenarios[n]["rps_max"] - r for n, r in zip(names, rps, strict=True)],
        ]
        throughput.bar(names, rps, yerr=errors, color="#4c72b0", capsize=4)
        throughput.set_title("Throughput (requests/s, median with min-max)")
        throughput.tick_params(axis="x", rotation=30)
        positions = range(len(names))
        latency.bar(
            [p - 0.2 for p in positions],
            [scenarios[n]["p50_ms"] for n in names],
            0.4,
            label="p50",
            color="#55a868",
        )
        latency.bar(
            [p + 0.2 for p in positions],
            [scenarios[n]["p99_ms"] for n in names],
            0.4,
            label="p99",
            color="#c44e52",
            hatch="//",
        )
        latency.set_xticks(list(positions), names, rotation=30)
        latency.set_title("Latency (ms)")
        latency.legend()
        figure.tight_layout()
        figure.savefig(out_dir / "scenarios.png", dpi=110)
        plt.close(figure)
    for name, extra in document["extras"].items():
        plot = ExtraResult.from_document(extra).plot
        if not plot:
            continue
        figure, axis = plt.subplots(figsize=(8, 4.5))
        if plot.kind == "bars":
            count = len(plot.series)
            width = 0.8 / count
            hatches = ["", "//", "..", "xx"]
            for index, (series, values) in enumerate(plot.series.items()):
                offsets = [x + (index - (count - 1) / 2) * width for x in range(len(plot.x))]
                axis.bar(offsets, values, width, label=series, hatch=hatches[index % len(hatches)])
            axis.set_xticks(range(len(plot.x)), plot.x)
        else:
            for series, values in plot.series.items():
                axis.plot(plot.x, values, marker="o", label=series)
        axis.set_title(plot.title)
        axis.set_xlabel(plot.xlabel)
        axis.set_ylabel(plot.ylabel)
        axis.legend()
        figure.tight_layout()
        figure.savefig(out_dir / f"{name}.png", dpi=110)
        plt.close(figure)
