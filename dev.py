"""The project's task runner: ``python dev.py demo | test | bench | stress | cells``.

It needs nothing but Python 3.11 and pip. Each matrix cell gets its own virtual environment under ``.venvs/``
(rebuilt only when its requirements or ``pyproject.toml`` change), so the whole Flask/Quart version matrix runs
from a clean clone with one command. ``test`` fails when a cell fails, collects no test, or skips one: a green
run means every selected test ran and passed; a cell whose marker expression selects Quart tests (it does not
say ``not quart``) also fails when none of them ran, so a wrong expression cannot turn the Quart part off.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENVS = ROOT / ".venvs"

TEST_TOOLS = ["pytest>=8,<10", "hypothesis>=6.100", "anyio>=4.4,<5", "trio>=0.25", "httpx>=0.27"]
ASGI = ["hypercorn>=0.16", "wsproto>=1.2"]
INTEROP = ["flask-sqlalchemy>=3.1", "opentelemetry-sdk>=1.25", "structlog>=24.1",
           # ctxsnap.instrument() beside the two thread patches the field uses (docs/instrument.md)
           "opentelemetry-instrumentation-threading==0.66b1", "sentry-sdk==2.75.0"]
TYPING = ["mypy>=1.10"]
LEGACY_ONLY = "not quart and not interop and not typing and not stress"
#: Where the JUnit report shows a Quart test: it has no markers, so by module, or by conformance entry id.
QUART_MODULES = ("tests.adapters.quart.", "tests.examples.test_quart_app")


@dataclass(frozen=True)
class Cell:
    name: str
    requirements: list[str]
    markers: str = LEGACY_ONLY
    paths: list[str] = field(default_factory=lambda: ["tests"])


# The version matrix from the design brief. Flask 1.1.1 runs with its real legacy pin set; Werkzeug below 2.0
# gets a cell of its own that checks ctxsnap refuses it clearly instead of silently carrying nothing.
CELLS = [
    Cell(
        "flask-3.1-quart-0.22",
        ["flask==3.1.3", "quart==0.22.0", *ASGI, *TEST_TOOLS, *INTEROP, *TYPING],
        markers="not stress",
    ),
    Cell("flask-3.1-quart-0.20", ["flask==3.1.3", "quart==0.20.0", *ASGI, *TEST_TOOLS],
         markers="not interop and not typing and not stress"),
    Cell("flask-3.0-quart-0.19", ["flask==3.0.3", "werkzeug==3.0.6", "quart==0.19.9", *ASGI, *TEST_TOOLS],
         markers="not interop and not typing and not stress"),
    Cell("flask-2.3", ["flask==2.3.3", "werkzeug==2.3.8", *TEST_TOOLS]),
    Cell("flask-2.2", ["flask==2.2.5", "werkzeug==2.2.3", *TEST_TOOLS]),
    Cell("flask-2.0", ["flask==2.0.3", "werkzeug==2.0.3", "jinja2==3.0.3", "itsdangerous==2.0.1", *TEST_TOOLS]),
    Cell(
        "flask-1.1",
        ["flask==1.1.1", "werkzeug==2.0.3", "jinja2==3.0.3", "itsdangerous==2.0.1", "markupsafe==2.0.1",
         *TEST_TOOLS],
    ),
    Cell(
        "flask-1.1-werkzeug-1.0",
        ["flask==1.1.1", "werkzeug==1.0.1", "jinja2==3.0.3", "itsdangerous==2.0.1", "markupsafe==2.0.1",
         *TEST_TOOLS],
        paths=["tests/adapters/flask/test_legacy_werkzeug.py"],
    ),
]
MAIN = CELLS[0]
BENCH = Cell(
    "bench",
    [*MAIN.requirements, "flask-executor==1.0.0", "flask-threads==0.2.0", "matplotlib>=3.8"],
)


def _python(cell: Cell) -> Path:
    return VENVS / cell.name / "bin" / "python"


def ensure_venv(cell: Cell) -> Path:
    """Create or refresh the cell's virtual environment; return its interpreter.

    A file lock serialises concurrent runs that need the same cell, so two of them never rebuild it at once.
    """
    VENVS.mkdir(exist_ok=True)
    with open(VENVS / f"{cell.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_venv_locked(cell)


def _ensure_venv_locked(cell: Cell) -> Path:
    target = VENVS / cell.name
    stamp_file = target / ".ctxsnap-stamp"
    digest = hashlib.sha256(
        "\n".join([*cell.requirements, (ROOT / "pyproject.toml").read_text()]).encode()
    ).hexdigest()
    if stamp_file.exists() and stamp_file.read_text() == digest and _python(cell).exists():
        return _python(cell)
    print(f"[{cell.name}] creating environment in {target.relative_to(ROOT)} ...", flush=True)
    shutil.rmtree(target, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    pip = [str(_python(cell)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-e", str(ROOT), *cell.requirements], check=True)
    stamp_file.write_text(digest)
    return _python(cell)


@dataclass
class Outcome:
    cell: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    exit_code: int = 0
    seconds: float = 0.0
    quart_expected: bool = False
    quart_ran: int = 0

    @property
    def ok(self) -> bool:
        quart = self.quart_ran > 0 or not self.quart_expected
        return self.exit_code == 0 and self.failed == 0 and self.skipped == 0 and self.passed > 0 and quart


def is_quart_case(case: ET.Element) -> bool:
    return case.get("classname", "").startswith(QUART_MODULES) or case.get("name", "").endswith("@quart]")


def run_cell(cell: Cell, extra: list[str], check_quart: bool = False) -> Outcome:
    python = ensure_venv(cell)
    report = Path(tempfile.mkstemp(prefix=f"ctxsnap-{cell.name}-", suffix=".xml")[1])
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-m", cell.markers,
               f"--junitxml={report}", *cell.paths, *extra]
    print(f"[{cell.name}] {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    env = {**os.environ, "CTXSNAP_CELL": cell.name, "PYTHONDONTWRITEBYTECODE": "1"}
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    outcome = Outcome(cell.name, exit_code=code, seconds=time.monotonic() - started)
    outcome.quart_expected = check_quart and "not quart" not in cell.markers
    if report.stat().st_size:
        root = ET.parse(report).getroot()
        outcome.quart_ran = sum(map(is_quart_case, root.iter("testcase")))
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped = int(suite.get("skipped", 0))
            outcome.failed += failed
            outcome.skipped += skipped
            outcome.passed += tests - failed - skipped
    report.unlink(missing_ok=True)
    if code == 5:
        print(f"[{cell.name}] pytest collected no test: that is a failure here", flush=True)
    if outcome.skipped:
        print(f"[{cell.name}] {outcome.skipped} test(s) skipped: a skipped test is not a passed one", flush=True)
    if outcome.quart_expected and not outcome.quart_ran:
        print(f"[{cell.name}] markers {cell.markers!r} select Quart tests, but none ran: a failure", flush=True)
    return outcome


def command_test(args: argparse.Namespace) -> int:
    cells = [c for c in CELLS if not args.cell or c.name in args.cell]
    unknown = set(args.cell or ()) - {c.name for c in CELLS}
    if unknown:
        print(f"unknown cell(s): {', '.join(sorted(unknown))}; see 'python dev.py cells'")
        return 2
    # Extra pytest arguments (-k, a path) may narrow a run on purpose; the Quart check guards the cells' own.
    outcomes = [run_cell(cell, args.pytest_args, check_quart=not args.pytest_args) for cell in cells]
    print("\ncell                        passed  failed  skipped  exit  seconds")
    for o in outcomes:
        mark = "ok" if o.ok else "FAIL"
        print(f"{o.cell:<27} {o.passed:>6}  {o.failed:>6}  {o.skipped:>7}  {o.exit_code:>4}  {o.seconds:>7.1f}  {mark}")
    passed = sum(o.passed for o in outcomes)
    failed = sum(o.failed for o in outcomes) + sum(o.skipped for o in outcomes)
    failed += sum(1 for o in outcomes if not o.ok and o.failed == 0 and o.skipped == 0)
    print(f"matrix: {passed} passed, {failed} failed")
    return 0 if all(o.ok for o in outcomes) else 1


def _run_in(cell: Cell, argv: list[str]) -> int:
    python = ensure_venv(cell)
    return subprocess.run([str(python), *argv], cwd=ROOT).returncode


def command_demo(args: argparse.Namespace) -> int:
    return _run_in(MAIN, ["examples/demo.py", *args.rest])


def command_bench(args: argparse.Namespace) -> int:
    return _run_in(BENCH, ["-m", "benchmarks", *args.rest])


def command_stress(args: argparse.Namespace) -> int:
    outcome = run_cell(Cell(MAIN.name, MAIN.requirements, markers="stress"), ["-s", *args.rest])
    print(f"stress: {outcome.passed} passed, {outcome.failed} failed")
    return 0 if outcome.ok else 1


def command_cells(args: argparse.Namespace) -> int:
    for cell in CELLS:
        print(f"{cell.name:<27} {' '.join(r for r in cell.requirements if r not in TEST_TOOLS)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python dev.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    test = sub.add_parser("test", help="run every test in every matrix cell (what CI runs)")
    test.add_argument("--cell", action="append", help="run only this cell (repeatable)")
    test.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    test.set_defaults(func=command_test)
    for name, func, text in (
        ("demo", command_demo, "start the example apps on loopback and show what workers see"),
        ("bench", command_bench, "run the benchmarks and write benchmarks/results/"),
        ("stress", command_stress, "the long isolation run (at least 50,000 requests)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("rest", nargs="*")
        p.set_defaults(func=func)
    sub.add_parser("cells", help="list the matrix cells").set_defaults(func=command_cells)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
