"""The benchmark harness computes what the result tables claim, and a scenario produces a well-formed result.

Nothing here measures speed: the statistics run on synthetic batches whose "elapsed times" are fixed numbers,
and the one real scenario runs with smoke-sized loops and is checked for shape only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks._harness import (
    Alternative,
    Batch,
    Settings,
    calibrate,
    compare,
    paired_ratios,
    ratio_between,
    summarise,
)
from benchmarks._report import fmt_bytes, fmt_ratio, fmt_time, render_markdown, target, timing_table
from benchmarks.scenarios import SCENARIOS, load
from ctxsnap._compiled import IMPLEMENTATION

ROOT = Path(__file__).resolve().parents[2]
SMOKE = Settings(rounds=3, batch_seconds=0.0005, quick=True, pin=False)


def fixed_cost(seconds_per_call: float) -> Batch:
    """A synthetic batch: reports ``number * seconds_per_call`` without running anything."""

    def batch(number: int) -> float:
        return number * seconds_per_call

    return batch


def drifting(costs: list[float]) -> Batch:
    """A synthetic batch whose per-call cost changes from one call to the next (machine drift)."""
    remaining = list(costs)

    def batch(number: int) -> float:
        return number * (remaining.pop(0) if len(remaining) > 1 else remaining[0])

    return batch


def test_summarise_gives_median_min_max() -> None:
    assert summarise([3.0, 1.0, 2.0, 10.0, 4.0]) == (3.0, 1.0, 10.0)
    with pytest.raises(ValueError, match="at least one sample"):
        summarise([])


def test_paired_ratios_are_taken_round_by_round() -> None:
    assert paired_ratios([2.0, 6.0], [1.0, 3.0]) == [2.0, 2.0]
    with pytest.raises(ValueError, match="one sample per round"):
        paired_ratios([1.0], [1.0, 2.0])


def test_calibrate_sizes_a_batch_to_the_target_duration() -> None:
    number = calibrate(fixed_cost(1e-6), target_seconds=0.01)
    assert 9_000 <= number <= 11_000


def test_calibrate_is_not_fooled_by_a_slow_first_call() -> None:
    # The first capture in a process loads providers; sizing batches on it would time single calls.
    calibrated = calibrate(drifting([0.5, 1e-6]), target_seconds=0.01)
    assert 9_000 <= calibrated <= 11_000


def test_compare_reports_ratios_to_the_reference_and_failures_as_data() -> None:
    def broken() -> None:
        raise RuntimeError("Token was created in a different Context")

    rows = compare(
        [
            Alternative("floor", fixed_cost(1e-6)),
            Alternative("twice", fixed_cost(2e-6)),
            Alternative("broken", fixed_cost(1e-6), check=broken),
        ],
        reference="floor",
        settings=Settings(rounds=5, batch_seconds=0.001),
        calibrate_with=lambda batch, seconds: 100,
    )
    floor, twice, failed = rows
    assert floor.ratio == pytest.approx(1.0)
    assert twice.median == pytest.approx(2e-6)
    assert twice.ratio == pytest.approx(2.0)
    assert twice.ratio_min == pytest.approx(2.0) and twice.ratio_max == pytest.approx(2.0)
    assert twice.samples == 5 and twice.number == 100
    assert failed.median is None and failed.ratio is None
    assert failed.error == "RuntimeError: Token was created in a different Context"
    assert ratio_between(twice, floor) == pytest.approx(2.0)


def test_paired_ratio_survives_drift_that_moves_both_alternatives() -> None:
    # The machine slows down 10x halfway through: medians of absolute times mix both regimes, the per-round
    # ratio does not. Calibration takes the first value of each list.
    floor = drifting([1e-6, 1e-6, 1e-6, 10e-6, 10e-6, 10e-6])
    double = drifting([2e-6, 2e-6, 2e-6, 20e-6, 20e-6, 20e-6])
    rows = compare(
        [Alternative("floor", floor), Alternative("double", double)],
        reference="floor",
        settings=Settings(rounds=5, batch_seconds=0.001),
        calibrate_with=lambda batch, seconds: (batch(1), 10)[1],
    )
    assert rows[1].ratio == pytest.approx(2.0)
    assert rows[1].maximum == pytest.approx(20e-6)


def test_compare_rejects_an_unknown_reference() -> None:
    with pytest.raises(ValueError, match="reference 'nope' is not one of the alternatives"):
        compare([Alternative("a", fixed_cost(1e-6))], reference="nope", settings=SMOKE)


def test_targets_say_met_or_missed_and_why() -> None:
    assert target("run ≤ 1.3×", 1.3, 1.1)["status"] == "met"
    missed = target("run ≤ 1.3×", 1.3, 1.7, why_missed="an extra frame")
    assert (missed["status"], missed["measured"], missed["note"]) == ("missed", "1.70×", "an extra frame")
    absent = target("run ≤ 1.3×", 1.3, None)
    assert absent["status"] == "missed" and "not measured" in absent["note"]


def test_formatting_picks_readable_units() -> None:
    assert fmt_time(2.5e-6) == "2.50 µs"
    assert fmt_time(33e-9) == "33 ns"
    assert fmt_time(1.5e-3) == "1.50 ms"
    assert fmt_ratio(1.234) == "1.23×"
    assert fmt_bytes(640) == "640 B"
    assert fmt_bytes(2 * 1024 * 1024) == "2.0 MiB"


def test_a_scenario_run_with_smoke_loops_has_the_report_shape() -> None:
    result = load("inline-contextvars")(SMOKE)
    assert result["title"] and result["tables"]
    for table in result["tables"]:
        assert all(len(row) == len(table["headers"]) for row in table["rows"])
        assert all(row["error"] is None and row["median"] > 0 for row in table["data"])
    (run_target,) = result["targets"]
    assert run_target["status"] in {"met", "missed"} and run_target["measured"].endswith("×")
    markdown = render_markdown([result], _machine(), quick=True)
    assert "| contextvars-only run ≤ 1.3× raw ctx.copy().run (inline) |" in markdown
    assert "Quick smoke run" in markdown


def test_a_failed_scenario_is_reported_not_hidden() -> None:
    only = Alternative("only", fixed_cost(1e-6))
    rows = compare([only], reference="only", settings=SMOKE, calibrate_with=lambda batch, seconds: 1)
    table = timing_table("t", rows, "only")
    markdown = render_markdown(
        [{"title": "e2e", "error": "timed out", "tables": [table]}], _machine(), quick=False
    )
    assert "**The scenario failed:** `timed out`" in markdown
    assert "Quick smoke run" not in markdown


def test_the_command_line_writes_a_result_set(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "inline-contextvars", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["quick"] is True
    assert [s["name"] for s in data["scenarios"]] == ["inline-contextvars"]
    assert data["machine"]["packages"]["ctxsnap"] != "not installed"
    # The scenario's process inherited this one's environment, so it ran the implementation this one loads.
    assert data["scenarios"][0]["implementation"] == IMPLEMENTATION
    assert data["machine"]["ctxsnap implementation"] == IMPLEMENTATION
    assert "## Targets" in (tmp_path / "results.md").read_text()


def test_unknown_scenarios_are_refused_with_the_list() -> None:
    with pytest.raises(KeyError, match="the scenarios are: inline-contextvars"):
        load("inline")
    assert "e2e-flask" in SCENARIOS


def _machine() -> dict[str, object]:
    return {"date": "today", "cpu": "test cpu", "cpus": 2, "python": "3.11", "packages": {"ctxsnap": "0.1.0"}}


def test_a_full_run_refreshes_only_the_marked_section_of_the_docs_page(tmp_path: Path) -> None:
    from benchmarks.__main__ import refresh_docs

    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nmethod\n\n<!-- results:start -->\nold table\n<!-- results:end -->\n\nafter\n")
    result = {"targets": [target("memory flat", 1.0, 0.02, unit="B/task")]}
    machine = {**_machine(), "load average at start": "0.10 0.20 0.30"}
    assert refresh_docs([result], machine, page)
    text = page.read_text()
    assert "old table" not in text and text.startswith("# Benchmarks\n\nmethod\n") and text.endswith("after\n")
    assert "| memory flat | ≤ 1 B/task | 0.02 B/task | met |  |" in text
    assert not refresh_docs([result], machine, tmp_path / "missing.md")


def test_the_report_names_the_implementation_of_the_run_and_of_a_scenario_that_differs() -> None:
    machine = {**_machine(), "ctxsnap implementation": "compiled"}
    results = [
        {"title": "inline", "implementation": "compiled"},
        {"title": "instructions", "implementation": "3.11: compiled, 3.13: python"},
    ]
    markdown = render_markdown(results, machine, quick=True)
    assert "ctxsnap ran the compiled hot path (`ctxsnap._speedups`) in every scenario" in markdown
    assert "ctxsnap implementation in this scenario: 3.11: compiled, 3.13: python." in markdown
    assert markdown.count("ctxsnap implementation in this scenario") == 1


def _measured(implementation: str, pure: dict[str, float] | None) -> dict[str, Any]:
    from benchmarks import _instructions as cases

    return {
        "python": "3.11.9",
        "implementation": implementation,
        "instructions": {cases.CV_FLOOR: 1000.0, cases.CV_CAPTURE_RUN: 1500.0},
        "pure_python_instructions": pure,
        "wall": {},
        "pinning": "pinned to CPU 0",
        "calls": 20,
    }


def test_instruction_tables_put_the_pure_python_counts_beside_the_compiled_ones() -> None:
    from benchmarks import _instructions as cases
    from benchmarks.scenarios.instructions import _table

    measured = _measured("compiled", {cases.CV_FLOOR: 1000.0, cases.CV_CAPTURE_RUN: 3000.0})
    table = _table("3.11", "contextvars only", measured, cases.CV_FLOOR)
    assert table["title"] == "Python 3.11, contextvars only [compiled]"
    assert "instructions / call (pure Python)" in table["headers"]
    assert all(len(row) == len(table["headers"]) for row in table["rows"])
    capture_run = dict(zip(table["headers"], table["rows"][1], strict=True))
    assert capture_run["ratio to floor (compiled, instructions)"] == "1.50×"
    assert capture_run["ratio to floor (pure Python, instructions)"] == "3.00×"
    assert capture_run["compiled ÷ pure"] == "0.50×"
    assert "CTXSNAP_PURE_PYTHON=1" in table["note"]


def test_the_flask_pool_target_says_what_the_raw_submit_leaves_a_carrier() -> None:
    from benchmarks import _instructions as cases
    from benchmarks.scenarios.instructions import _carrying_room

    counts = {cases.FLASK_FLOOR: 20_000.0, cases.FLASK_CAPTURE_RUN: 35_000.0, cases.BARE_SUBMIT: 80_000.0}

    def measured(raw: float | None) -> dict[str, Any]:
        found = counts if raw is None else counts | {cases.RAW_SUBMIT: raw}
        return _measured("compiled", None) | {"instructions": found}

    room = _carrying_room(measured(98_000.0), 1.3)
    assert "(1.23× in instructions)" in room
    assert "leaves a carrier 6,000 instructions" in room
    assert "capture().run adds 15,000 to the floor" in room
    over = _carrying_room(measured(110_000.0), 1.3)
    assert "already over 1.3×, which leaves a carrier nothing" in over
    missing = _carrying_room(measured(None), 1.3)
    assert missing == "the raw submit(copy_context().run, task) was not measured"


def test_instruction_tables_of_a_pure_python_default_are_not_duplicated() -> None:
    from benchmarks import _instructions as cases
    from benchmarks.scenarios.instructions import _table

    table = _table("3.11", "contextvars only", _measured("python", None), cases.CV_FLOOR)
    assert table["title"] == "Python 3.11, contextvars only [pure Python]"
    # One set of instruction columns, named after the implementation that ran, and no comparison column.
    assert [h for h in table["headers"] if h.startswith("instructions / call")] == [
        "instructions / call (pure Python)"
    ]
    assert not any("÷" in header for header in table["headers"])
    assert all(len(row) == len(table["headers"]) for row in table["rows"])
    assert "nothing to compare it with" in table["note"]


def test_the_second_instruction_child_runs_the_pure_python_path() -> None:
    from benchmarks.scenarios.instructions import _child

    arguments = ["--group", "contextvars", "--mode", "wall", "--quick"]
    assert _child(sys.executable, arguments)["implementation"] == IMPLEMENTATION
    assert _child(sys.executable, arguments, pure_python=True)["implementation"] == "python"
