"""Turning scenario results into what people read: Markdown tables, PNG plots, the machine description.

Scenarios return plain data (dicts of strings and numbers, so the child process that measured them can hand
them over as JSON); this module owns every decision about presentation. matplotlib is imported only when plots
are drawn, with the Agg backend, so a headless machine and the test suite never need a display.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ._harness import Row

__all__ = [
    "fmt_bytes",
    "fmt_ratio",
    "fmt_time",
    "machine_info",
    "render_markdown",
    "render_plots",
    "target",
    "timing_table",
]

#: The distributions whose versions the result set records.
PACKAGES = (
    "ctxsnap",
    "flask",
    "werkzeug",
    "quart",
    "hypercorn",
    "anyio",
    "flask-executor",
    "flask-threads",
    "matplotlib",
)
#: How the header names each value of ``ctxsnap._compiled.IMPLEMENTATION``.
IMPLEMENTATIONS = {
    "compiled": "the compiled hot path (`ctxsnap._speedups`)",
    "python": "the pure-Python hot path (`ctxsnap._speedups` not built, or `CTXSNAP_PURE_PYTHON=1`)",
}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def fmt_ratio(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "–"
    if abs(count) >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB"
    if abs(count) >= 10 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count:.0f} B"


def timing_table(title: str, rows: Sequence[Row], reference: str, note: str = "") -> dict[str, Any]:
    """A table of :class:`Row` results: median per call, min-max, the paired ratio to ``reference``."""
    headers = ["alternative", "median / call", "min – max", f"ratio to {reference}", "ratio min – max", "note"]
    body = []
    for row in rows:
        if row.error is not None:
            body.append([row.name, "fails", "", "", "", _cell(f"{row.error}. {row.note}".strip(" ."))])
            continue
        body.append(
            [
                f"**{row.name}**" if row.name == reference else row.name,
                fmt_time(row.median),
                f"{fmt_time(row.minimum)} – {fmt_time(row.maximum)}",
                fmt_ratio(row.ratio),
                f"{fmt_ratio(row.ratio_min)} – {fmt_ratio(row.ratio_max)}",
                _cell(row.note),
            ]
        )
    return {"title": title, "headers": headers, "rows": body, "note": note, "data": [r.as_dict() for r in rows]}


def find(rows: Iterable[Row], name: str) -> Row:
    for row in rows:
        if row.name == name:
            return row
    raise KeyError(f"no row named {name!r}")


def target(
    text: str, limit: float, measured: float | None, *, why_missed: str = "", unit: str = "×", failed: str = ""
) -> dict[str, Any]:
    """One line of the targets table: met when ``measured <= limit``; a note says why when it is missed."""
    shown_limit = f"≤ {limit:g}{unit}" if unit == "×" else f"≤ {limit:g} {unit}"
    if measured is None:
        return {
            "target": text,
            "limit": shown_limit,
            "measured": "–",
            "status": "missed",
            "note": failed or "not measured (the alternative failed or is unavailable)",
        }
    met = measured <= limit
    return {
        "target": text,
        "limit": shown_limit,
        "measured": f"{measured:.2f}{unit}" if unit == "×" else f"{measured:,.2f} {unit}",
        "status": "met" if met else "missed",
        "note": "" if met else why_missed,
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table_markdown(table: dict[str, Any]) -> list[str]:
    lines = [f"#### {table['title']}", ""]
    headers = table["headers"]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("| " + " | ".join("---" for _ in headers) + " |")
    for row in table["rows"]:
        lines.append("| " + " | ".join(_cell(str(c)) for c in row) + " |")
    if table.get("note"):
        lines += ["", table["note"]]
    lines.append("")
    return lines


def targets_markdown(results: Sequence[dict[str, Any]]) -> list[str]:
    """The targets table alone: what docs/benchmarks.md copies from the committed result set."""
    lines = [
        "| target | limit | measured | met / missed | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for t in result.get("targets", []):
            lines.append(
                f"| {_cell(t['target'])} | {t['limit']} | {t['measured']} | {t['status']} | {_cell(t['note'])} |"
            )
    return lines


def render_markdown(results: Sequence[dict[str, Any]], machine: dict[str, Any], *, quick: bool) -> str:
    """The whole result set as one Markdown document: targets first, then every scenario, then the machine."""
    lines = ["# ctxsnap benchmark results", ""]
    if quick:
        lines += ["> **Quick smoke run** (`--quick`): loop counts are tiny, the numbers mean nothing.", ""]
    lines += [
        f"Generated {machine['date']} by `python3 dev.py bench` on {machine['cpu']} "
        f"({machine['cpus']} CPUs), Python {machine['python']}. Times are medians of interleaved batches; "
        "ratios are medians of per-round ratios to the reference row (min – max across rounds). "
        "See [docs/benchmarks.md](../../docs/benchmarks.md) for the method.",
        "",
    ]
    run_implementation = machine.get("ctxsnap implementation")
    if run_implementation:
        lines += [
            f"ctxsnap ran {IMPLEMENTATIONS.get(run_implementation, run_implementation)} in every scenario "
            "unless the scenario says otherwise.",
            "",
        ]
    lines += [
        "## Targets",
        "",
        *targets_markdown(results),
        "",
    ]
    for result in results:
        lines += [f"## {result['title']}", ""]
        if result.get("error"):
            lines += [f"**The scenario failed:** `{_cell(result['error'])}`", ""]
        implementation = result.get("implementation")
        if implementation and run_implementation and implementation != run_implementation:
            lines += [
                f"ctxsnap implementation in this scenario: {IMPLEMENTATIONS.get(implementation, implementation)}.",
                "",
            ]
        for text in result.get("notes", []):
            lines += [text, ""]
        for table in result.get("tables", []):
            lines += _table_markdown(table)
        for plot in result.get("plots", []):
            lines += [f"![{plot['title']}]({plot['file']})", ""]
    lines += ["## Machine and versions", "", "| | |", "| --- | --- |"]
    for key, value in machine.items():
        if key != "packages":
            lines.append(f"| {key} | {_cell(str(value))} |")
    for name, version in machine["packages"].items():
        lines.append(f"| {name} | {version} |")
    lines.append("")
    return "\n".join(lines)


def render_plots(results: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """Draw every plot the scenarios asked for as a PNG in ``directory``; return the files written."""
    if not any(result.get("plots") for result in results):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for result in results:
        for plot in result.get("plots", []):
            if plot["kind"] == "grouped":
                # One cluster of bars per group (an interpreter), one bar per series in each.
                groups, series = plot["groups"], plot["series"]
                height = 6.0 if plot.get("legend") == "below" else 4.8
                figure, axes = plt.subplots(figsize=(9, height), dpi=110)
                width = 0.8 / max(1, len(series))
                for index, (name, values) in enumerate(series.items()):
                    xs = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
                    bars = axes.bar(xs, [v or 0.0 for v in values], width, label=name)
                    for bar, value in zip(bars, values, strict=True):
                        label = "–" if value is None else plot.get("format", "{:.2f}").format(value)
                        axes.annotate(
                            label,
                            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            xytext=(0, 2),
                            textcoords="offset points",
                            ha="center",
                            fontsize="small",
                        )
                for name, limit in plot.get("limits", {}).items():
                    axes.axhline(limit, linestyle="--", linewidth=0.8, color="grey")
                    axes.annotate(
                        name,
                        (len(groups) - 0.5, limit),
                        xytext=(2, 2),
                        textcoords="offset points",
                        fontsize="x-small",
                        color="grey",
                        ha="right",
                    )
                axes.set_xticks(range(len(groups)), [f"Python {g}" for g in groups])
                axes.set_ylabel(plot["ylabel"])
                if plot.get("legend") == "below":
                    # Many series (both implementations side by side): a legend inside would cover the bars.
                    axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
                else:
                    axes.legend(fontsize="small")
            elif plot["kind"] == "lines":
                figure, axes = plt.subplots(figsize=(8.5, 4.8), dpi=110)
                for name, values in plot["series"].items():
                    points = [(x, y) for x, y in zip(plot["x"], values, strict=True) if y is not None]
                    if points:
                        axes.plot(*zip(*points, strict=True), marker="o", label=name)
                if plot.get("logx"):
                    axes.set_xscale("symlog", linthresh=1)
                if plot.get("logy"):
                    axes.set_yscale("log")
                axes.set_xlabel(plot["xlabel"])
                axes.set_ylabel(plot["ylabel"])
                axes.legend(fontsize="small")
            else:
                names = list(plot["series"])
                figure, axes = plt.subplots(figsize=(10, 1.5 + 0.45 * len(names)), dpi=110)
                values = [v if v is not None else 0.0 for v in plot["series"].values()]
                # ctxsnap's own rows stand out; everything else is a competitor or a reference.
                colours = ["#dd8452" if "ctxsnap" in name else "#4c72b0" for name in names]
                bars = axes.barh(names, values, color=colours)
                for bar, value in zip(bars, plot["series"].values(), strict=True):
                    label = "fails" if value is None else plot.get("format", "{:.2f}").format(value)
                    axes.annotate(
                        label,
                        (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        xytext=(3, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize="small",
                    )
                axes.invert_yaxis()
                axes.margins(x=0.15)
                axes.set_xlabel(plot["ylabel"])
            figure.suptitle(plot["title"], fontsize="medium")
            axes.grid(True, alpha=0.3)
            figure.tight_layout()
            path = directory / plot["file"]
            figure.savefig(path)
            plt.close(figure)
            written.append(path)
    return written


def machine_info() -> dict[str, Any]:
    """Where the numbers come from: CPU, OS, interpreter, package versions, commit, load at start."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "not installed"
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
                cwd=Path(__file__).resolve().parent,
            ).stdout.strip()
            or "unknown"
        )
    except OSError:
        commit = "unknown"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    # Read here, in the parent, from the same environment (and CTXSNAP_PURE_PYTHON) every scenario's process
    # inherits; each scenario records what its own process ran as well.
    from ctxsnap._compiled import IMPLEMENTATION

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0] + f" ({platform.python_implementation()})",
        "commit": commit,
        "ctxsnap implementation": IMPLEMENTATION,
        "load average at start": "unknown" if load is None else " ".join(f"{x:.2f}" for x in load),
        "packages": packages,
    }
