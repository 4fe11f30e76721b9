"""The project's task runner: ``python dev.py demo | test | bench | stress | cells``.

It needs nothing but Python 3.11 and pip. Each matrix cell gets its own virtual environment under ``.venvs/``
(rebuilt only when its requirements, its interpreter or ``pyproject.toml`` change), so the whole Flask/Quart
version matrix runs from a clean clone with one command. The cells for other Pythons (3.12, 3.13) find their
interpreter on PATH or through pyenv; where none is installed the cell is skipped with a message, except under
``CI=true``, where a missing interpreter fails the run. ``test`` fails when a cell fails, collects no test, or
skips one: a green run means every selected test ran and passed; a cell whose marker expression selects Quart
tests (it does not say ``not quart``) also fails when none of them ran, so a wrong expression cannot turn the
Quart part off.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENVS = ROOT / ".venvs"

# asgiref is Flask's "async" extra: copy_current_request_context runs an async function through app.ensure_sync.
TEST_TOOLS = ["pytest>=8,<10", "hypothesis>=6.100", "anyio>=4.4,<5", "trio>=0.25", "httpx>=0.27", "asgiref>=3.2"]
ASGI = ["hypercorn>=0.16", "wsproto>=1.2"]
INTEROP = [
    "flask-sqlalchemy>=3.1",
    "opentelemetry-sdk>=1.25",
    "structlog>=24.1",
    # ctxsnap.instrument() beside the two thread patches the field uses (docs/instrument.md)
    "opentelemetry-instrumentation-threading==0.66b1",
    "sentry-sdk==2.75.0",
]
TYPING = ["mypy>=1.10"]
#: The docs site's pinned tools, read from pyproject's ``docs`` extra so the pins live in one place.
DOCS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["docs"]
#: The linters (ruff, codespell) at the versions pre-commit uses, read from pyproject's ``lint`` extra.
LINT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["lint"]
#: Exact pins: an unpinned resolve of Celery together with the other packages backtracked for minutes. The same
#: pins as the ``celery`` extra in pyproject.toml.
CELERY = ["celery==5.7.0", "kombu==5.7.0", "redis==8.1.0"]
#: The tracing integrations the Celery adapter must coexist with (tests/adapters/celery/test_celery_tracing.py).
#: 0.66b1, not 0.66b2: every OpenTelemetry instrumentation pins opentelemetry-instrumentation exactly, and the
#: threading one (INTEROP) has no 0.66b2.
CELERY_INTEROP = ["opentelemetry-instrumentation-celery==0.66b1", "sentry-sdk==2.75.0"]
LEGACY_ONLY = "not quart and not interop and not typing and not stress and not celery"
#: Where the JUnit report shows a Quart test: it has no markers, so by module, or by conformance entry id.
QUART_MODULES = ("tests.providers.quart.", "tests.adapters.quart.", "tests.examples.test_quart_app")


@dataclass(frozen=True)
class Cell:
    name: str
    requirements: list[str]
    markers: str = LEGACY_ONLY
    paths: list[str] = field(default_factory=lambda: ["tests"])
    #: The Python the cell runs on, as "3.13"; None is the interpreter running dev.py.
    python: str | None = None
    #: A script run in the cell's interpreter instead of plain pytest; it gets ``--junitxml=`` and any extra
    #: arguments, and reports in the same JUnit form (the upstream suites need their own pytest configuration).
    script: tuple[str, ...] = ()


# The version matrix from the design brief. Flask 1.1.1 runs with its real legacy pin set; Werkzeug below 2.0
# gets a cell of its own that checks ctxsnap refuses it clearly instead of silently carrying nothing.
CELLS = [
    Cell(
        "flask-3.1-quart-0.22",
        [
            "flask==3.1.3",
            "quart==0.22.0",
            *ASGI,
            *TEST_TOOLS,
            *INTEROP,
            *TYPING,
            *DOCS,
            *LINT,
            *CELERY,
            *CELERY_INTEROP,
        ],
        markers="not stress",
    ),
    Cell(
        "flask-3.1-quart-0.20",
        ["flask==3.1.3", "quart==0.20.0", *ASGI, *TEST_TOOLS],
        markers="not interop and not typing and not stress and not celery",
    ),
    Cell(
        "flask-3.0-quart-0.19",
        ["flask==3.0.3", "werkzeug==3.0.6", "quart==0.19.9", *ASGI, *TEST_TOOLS],
        markers="not interop and not typing and not stress and not celery",
    ),
    Cell("flask-2.3", ["flask==2.3.3", "werkzeug==2.3.8", *TEST_TOOLS]),
    Cell("flask-2.2", ["flask==2.2.5", "werkzeug==2.2.3", *TEST_TOOLS]),
    Cell("flask-2.0", ["flask==2.0.3", "werkzeug==2.0.3", "jinja2==3.0.3", "itsdangerous==2.0.1", *TEST_TOOLS]),
    Cell(
        "flask-1.1",
        [
            "flask==1.1.1",
            "werkzeug==2.0.3",
            "jinja2==3.0.3",
            "itsdangerous==2.0.1",
            "markupsafe==2.0.1",
            *TEST_TOOLS,
        ],
    ),
    Cell(
        "flask-1.1-werkzeug-1.0",
        [
            "flask==1.1.1",
            "werkzeug==1.0.1",
            "jinja2==3.0.3",
            "itsdangerous==2.0.1",
            "markupsafe==2.0.1",
            *TEST_TOOLS,
        ],
        # test_deprecations: the old import paths and ctxsnap.providers() on the per-thread layout too.
        paths=["tests/providers/flask/test_legacy_werkzeug.py", "tests/test_deprecations.py"],
    ),
]
# The newer Pythons. Quart 0.23 needs Python >= 3.13 and has the merged context layout (request and websocket
# state in the app context, one ContextVar): that cell runs every Quart test and the whole conformance suite
# there, plus the Flask adapter's tests on 3.13. The 3.12 cell runs the Flask and Quart adapters' own tests
# and the conformance suite; the examples, interop, reliability and benchmark-harness tests are not
# interpreter-sensitive and already run in the main cell, so the new cells leave them out to keep CI short.
NEW_PYTHON_PATHS = [
    "tests/providers",
    "tests/adapters",
    "tests/conformance",
    "tests/core",
    "tests/test_packaging.py",
    "tests/test_deprecations.py",
]
CELLS += [
    Cell(
        "py3.13-flask-3.1-quart-0.23",
        ["flask==3.1.3", "quart==0.23.1", *ASGI, *TEST_TOOLS],
        markers="not interop and not typing and not stress and not celery",
        paths=[*NEW_PYTHON_PATHS, "tests/examples/test_quart_app.py"],
        python="3.13",
    ),
    Cell(
        "py3.12-flask-3.1-quart-0.22",
        ["flask==3.1.3", "quart==0.22.0", *ASGI, *TEST_TOOLS],
        markers="not interop and not typing and not stress and not celery",
        paths=NEW_PYTHON_PATHS,
        python="3.12",
    ),
]
# anyio's to_thread/from_thread tests and Flask's test_reqctx/test_appctx, taken at run time from the sdists of
# exactly these versions, run with ctxsnap substituted (tests/upstream/run.py; docs/async.md, "Upstream test
# suites"). Each brings its project's own test dependencies, and the build backend that lets ``pip download`` read
# the sdist's metadata without building an isolated environment first. Two cells, because the two suites need
# different pytests: anyio's configuration is pytest 9's [tool.pytest] table, and Flask 3.1.3's conftest uses
# _pytest.monkeypatch.notset, which pytest 9 removed. Werkzeug is the release Flask 3.1.3's tests were written
# against: from 3.1.7 a non-printable Host gets 404 where test_bad_environ_raises_bad_request expects 400 (it
# fails that way without ctxsnap too).
UPSTREAM_ANYIO = [
    "anyio==4.16.0",
    "pytest>=9,<10",
    "trio>=0.32",
    "sniffio>=1.3",
    "blockbuster>=1.5.29",
    "pytest-mock>=3.14",
    "pytest-timeout>=2.4",
    "trustme>=1.0",
    "truststore>=0.9.1",
    "uvloop>=0.22.1",
    "psutil>=5.9",
    "hypothesis>=6.100",
    "setuptools>=77",
    "setuptools-scm>=8",
]
UPSTREAM_FLASK = [
    "flask==3.1.3",
    "werkzeug==3.1.6",
    "pytest>=8,<9",
    "asgiref>=3.8",
    "greenlet>=3.0",
    "python-dotenv>=1.0",
    "flit_core>=3.11,<4",
]
CELLS.extend(
    [
        Cell("upstream-anyio", UPSTREAM_ANYIO, script=("tests/upstream/run.py", "--suite", "anyio")),
        Cell("upstream-flask", UPSTREAM_FLASK, script=("tests/upstream/run.py", "--suite", "flask")),
    ]
)
MAIN = CELLS[0]
BENCH = Cell(
    "bench",
    [*MAIN.requirements, "flask-executor==1.0.0", "flask-threads==0.2.0", "matplotlib>=3.8"],
)
#: The other interpreters the instruction-count scenario measures on (issue 14: the floor got cheaper on 3.12
#: and 3.13, so a ratio met on 3.11 says nothing about them). Only what the measured cases import.
BENCH_PYTHONS = [
    Cell(f"bench-{version}", ["flask==3.1.3", "flask-executor==1.0.0"], python=version)
    for version in ("3.12", "3.13")
]


def _python(cell: Cell) -> Path:
    return VENVS / cell.name / "bin" / "python"


# -- progress: a cold start builds an environment per cell and a full run takes minutes, so say so ----------
#: How long each cell's environment build and full test run took the last time, to print estimates.
TIMINGS = VENVS / "timings.json"
#: "cell 3/8" for each cell of the current `test` run, set by command_test; other commands print the name only.
_POSITION: dict[str, str] = {}


def _label(cell: Cell) -> str:
    position = _POSITION.get(cell.name)
    return f"[{position}] {cell.name}" if position else f"[{cell.name}]"


def _last_time(cell: Cell, step: str) -> float | None:
    try:
        return float(json.loads(TIMINGS.read_text())[cell.name][step])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record_time(cell: Cell, step: str, seconds: float) -> None:
    try:
        timings = json.loads(TIMINGS.read_text())
    except (OSError, ValueError):
        timings = {}
    timings.setdefault(cell.name, {})[step] = round(seconds, 1)
    VENVS.mkdir(exist_ok=True)
    # Written aside and renamed: two runs finishing at once leave one whole file, never a torn one.
    scratch = TIMINGS.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(timings, indent=1, sort_keys=True))
    os.replace(scratch, TIMINGS)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class MissingInterpreter(Exception):
    """No interpreter for a cell's Python version could be found on this machine."""


def _reports_version(command: list[str], version: str, env: dict[str, str] | None = None) -> bool:
    # A pyenv shim for a version that is installed but not selected exists on PATH and exits 127: only an
    # interpreter that runs and reports the right version counts.
    try:
        out = subprocess.run(
            [*command, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find_interpreter(version: str) -> str:
    """The path of a working ``python<version>``: on PATH, else through pyenv (selected or installed).

    pyenv's global version may be another one, in which case the bare ``python3.13`` shim exits 127; the
    interpreter is then asked for its own ``sys.executable`` through ``PYENV_VERSION``, or found in
    ``$(pyenv root)/versions``.
    """
    name = f"python{version}"
    on_path = shutil.which(name)
    if on_path and _reports_version([on_path], version):
        return on_path
    if shutil.which("pyenv"):
        installed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        for candidate in sorted((v for v in installed if v.startswith(version + ".")), reverse=True):
            env = {**os.environ, "PYENV_VERSION": candidate}
            if _reports_version([name], version, env):
                found = subprocess.run(
                    [name, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, env=env
                ).stdout.strip()
                if found and _reports_version([found], version):
                    return found
    else:
        root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for found in sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", name)), reverse=True):
        if _reports_version([found], version):
            return found
    raise MissingInterpreter(
        f"no Python {version} interpreter found: {name} is not on PATH (or does not run) and pyenv has no "
        f"{version}.x installed; install one (pyenv install {version}) or put {name} on PATH"
    )


def ensure_venv(cell: Cell) -> Path:
    """Create or refresh the cell's virtual environment; return its interpreter.

    A file lock serialises concurrent runs that need the same cell, so two of them never rebuild it at once.
    """
    # Found first: a cell whose interpreter is missing leaves nothing behind under .venvs/.
    interpreter = find_interpreter(cell.python) if cell.python else None
    VENVS.mkdir(exist_ok=True)
    with open(VENVS / f"{cell.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_venv_locked(cell, interpreter)


def _ensure_venv_locked(cell: Cell, interpreter: str | None) -> Path:
    target = VENVS / cell.name
    stamp_file = target / ".ctxsnap-stamp"
    digest = hashlib.sha256(
        "\n".join([*cell.requirements, interpreter or "", (ROOT / "pyproject.toml").read_text()]).encode()
    ).hexdigest()
    if stamp_file.exists() and stamp_file.read_text() == digest and _python(cell).exists():
        return _python(cell)
    last = _last_time(cell, "build")
    why = "requirements changed" if stamp_file.exists() else "first run"
    estimate = f"~{_duration(last)} last time" if last else "about 1-2 min"
    print(
        f"{_label(cell)}: building environment in {target.relative_to(ROOT)} ({why}, {estimate}) ...", flush=True
    )
    started = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)
    if interpreter is None:
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
    else:
        subprocess.run([interpreter, "-m", "venv", "--clear", str(target)], check=True)
    pip = [str(_python(cell)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-e", str(ROOT), *cell.requirements], check=True)
    stamp_file.write_text(digest)
    _record_time(cell, "build", time.monotonic() - started)
    print(f"{_label(cell)}: environment ready in {_duration(time.monotonic() - started)}", flush=True)
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
    #: Set when the cell's interpreter is not installed here (outside CI only: CI fails instead).
    missing: str = ""

    @property
    def ok(self) -> bool:
        if self.missing:
            return True
        quart = self.quart_ran > 0 or not self.quart_expected
        return self.exit_code == 0 and self.failed == 0 and self.skipped == 0 and self.passed > 0 and quart


def is_quart_case(case: ET.Element) -> bool:
    return case.get("classname", "").startswith(QUART_MODULES) or case.get("name", "").endswith("@quart]")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def run_cell(cell: Cell, extra: list[str], check_quart: bool = False) -> Outcome:
    try:
        python = ensure_venv(cell)
    except MissingInterpreter as exc:
        if _in_ci():
            # CI must run every cell: a machine without the interpreter fails loudly rather than going green.
            print(f"[{cell.name}] FAILED: {exc}. CI=true, so a missing interpreter fails the run", flush=True)
            return Outcome(cell.name, exit_code=3)
        print(f"[{cell.name}] not run: {exc}", flush=True)
        return Outcome(cell.name, missing=str(exc))
    report = Path(tempfile.mkstemp(prefix=f"ctxsnap-{cell.name}-", suffix=".xml")[1])
    command = [
        str(python),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-m",
        cell.markers,
        f"--junitxml={report}",
        *cell.paths,
        *extra,
    ]
    if cell.script:
        command = [str(python), *cell.script, f"--junitxml={report}", *extra]
    last = _last_time(cell, "tests")
    # Only a full run of the cell is an estimate for the next one; -k or a path narrows it.
    estimate = "" if extra else f" (~{_duration(last)} last time)" if last else " (first timed run)"
    print(f"{_label(cell)}: running tests{estimate}: {' '.join(command[1:])}", flush=True)
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
    if not extra and outcome.exit_code in (0, 1):
        _record_time(cell, "tests", outcome.seconds)
    print(
        f"{_label(cell)}: {outcome.passed} passed, {outcome.failed} failed in {_duration(outcome.seconds)}",
        flush=True,
    )
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
    _POSITION.update({cell.name: f"cell {i}/{len(cells)}" for i, cell in enumerate(cells, 1)})
    known = [_last_time(cell, "tests") for cell in cells]
    if all(known) and not args.pytest_args:
        total = _duration(sum(filter(None, known)))
        print(
            f"{len(cells)} cell(s); their tests took {total} last time, plus any environment to rebuild",
            flush=True,
        )
    else:
        print(
            f"{len(cells)} cell(s); a cell without an environment builds one first (about 1-2 min); the whole "
            "matrix takes 10-25 min on a 2-core machine",
            flush=True,
        )
    # Extra pytest arguments (-k, a path) may narrow a run on purpose; the Quart check guards the cells' own.
    outcomes = [run_cell(cell, args.pytest_args, check_quart=not args.pytest_args) for cell in cells]
    print("\ncell                        passed  failed  skipped  exit  seconds")
    for o in outcomes:
        mark = "NOT RUN (no interpreter)" if o.missing else "ok" if o.ok else "FAIL"
        counts = f"{o.passed:>6}  {o.failed:>6}  {o.skipped:>7}  {o.exit_code:>4}  {o.seconds:>7.1f}"
        print(f"{o.cell:<27} {counts}  {mark}")
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
    rest = list(args.rest)
    if rest[:1] == ["instructions"]:
        # `dev.py bench instructions`: the instruction-count scenario alone, on every interpreter it measures.
        rest = ["--only", "instructions", *rest[1:]]
    interpreters = []
    if "--list" not in rest:
        for cell in BENCH_PYTHONS:
            try:
                interpreters.append(str(ensure_venv(cell)))
            except MissingInterpreter as exc:
                print(f"[bench] {cell.name}: {exc}; measured on the other interpreters only")
    env = {**os.environ, "CTXSNAP_BENCH_PYTHONS": os.pathsep.join(interpreters)}
    return subprocess.run([str(ensure_venv(BENCH)), "-m", "benchmarks", *rest], cwd=ROOT, env=env).returncode


def command_stress(args: argparse.Namespace) -> int:
    outcome = run_cell(Cell(MAIN.name, MAIN.requirements, markers="stress"), ["-s", *args.rest])
    print(f"stress: {outcome.passed} passed, {outcome.failed} failed")
    return 0 if outcome.ok else 1


def command_cells(args: argparse.Namespace) -> int:
    for cell in CELLS:
        python = f"python{cell.python}" if cell.python else f"python{sys.version_info[0]}.{sys.version_info[1]}"
        print(f"{cell.name:<27} {python:<10} {' '.join(r for r in cell.requirements if r not in TEST_TOOLS)}")
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
