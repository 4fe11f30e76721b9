"""The conformance suite's run, as part of the benchmark report: speed figures count only if no semantic moved.

Issue 14 allows no semantic to be traded for speed, so the report that shows the speed also shows, from the
same checkout and the same environment, that every conformance row (every adapter against the one semantics
table), the core's property-based state machine and the reliability tests still pass.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .._harness import Settings
from .._report import target

ROOT = Path(__file__).resolve().parents[2]
SUITES = {
    "conformance (every adapter, one semantics table)": ["tests/conformance"],
    "core property-based state machine": ["tests/core/test_properties.py"],
    "reliability (not stress)": ["tests/reliability", "-m", "not stress"],
}
QUICK_SUITES = {"conformance (every adapter, one semantics table)": ["tests/conformance"]}


def _run(arguments: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ctxsnap-conformance-") as tmp:
        report = Path(tmp) / "report.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *arguments,
        ]
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        counts = {"passed": 0, "failed": 0, "skipped": 0, "exit code": completed.returncode}
        if report.exists() and report.stat().st_size:
            for suite in ET.parse(report).getroot().iter("testsuite"):
                failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
                skipped = int(suite.get("skipped", 0))
                counts["failed"] += failed
                counts["skipped"] += skipped
                counts["passed"] += int(suite.get("tests", 0)) - failed - skipped
        summary = (completed.stdout.strip().splitlines() or ["(no output)"])[-1]
        return {**counts, "summary": summary, "command": " ".join(["python", *command[1:3], *arguments])}


def conformance(settings: Settings) -> dict[str, Any]:
    runs = {name: _run(arguments) for name, arguments in (QUICK_SUITES if settings.quick else SUITES).items()}
    not_green = sum(r["failed"] + r["skipped"] + (r["exit code"] != 0) for r in runs.values())
    return {
        "title": "Semantics: the conformance suite's run (from the same checkout and environment)",
        "notes": ["A speed figure above counts only with every row here green."],
        "tables": [
            {
                "title": "Test runs",
                "headers": ["suite", "command", "passed", "failed", "skipped", "pytest's last line"],
                "rows": [
                    [name, f"`{r['command']}`", r["passed"], r["failed"], r["skipped"], r["summary"]]
                    for name, r in runs.items()
                ],
                "note": "",
                "data": runs,
            }
        ],
        "targets": [
            target(
                "no semantic traded: conformance, state machine and reliability runs green "
                f"({sum(r['passed'] for r in runs.values())} passed)",
                0,
                not_green,
                unit="failed or skipped",
                why_missed="see the test runs table",
            ),
        ],
        "plots": [],
    }
