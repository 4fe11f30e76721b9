"""The version matrix, and what a matrix run checks: the data ``noxfile.py`` turns into sessions.

A *cell* is one set of pinned framework versions on one Python, with the tests that run there. This module holds
the cell table and everything about a cell that is not nox's job, in the standard library only: finding an
interpreter pyenv installs but does not select, telling whether a cell's environment is current, remembering how
long each cell took (for the estimates a cold run prints), and reading a cell's JUnit report. A green cell is one
where every selected test ran and passed: a failure, a skipped test, no test at all, or, where the marker
expression selects Quart tests, no Quart test run, each fail it.

``tests/test_dev_runner.py`` imports it without nox.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Every environment nox builds for this project, one directory per session.
VENVS = ROOT / ".venvs"
EXTRAS: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "optional-dependencies"
]

#: nox itself, at the version ``dev.py`` bootstraps: tests/test_dev_runner.py runs nox sessions to check what
#: a cell does when its interpreter is missing.
NOX = EXTRAS["nox"]
# asgiref is Flask's "async" extra: copy_current_request_context runs an async function through app.ensure_sync.
TEST_TOOLS = [
    "pytest>=8,<10",
    "hypothesis>=6.100",
    "anyio>=4.4,<5",
    "trio>=0.25",
    "httpx>=0.27",
    "asgiref>=3.2",
    *NOX,
]
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
#: tests/packaging builds the sdist and wheels with the build backend pyproject names (no build isolation, so no
#: download), and makes fresh environments with virtualenv, whose bundled setuptools can build the sdist offline.
PACKAGING = [
    "build>=1.2",
    "virtualenv>=20.31",
    *tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"],
]
#: The docs site's pinned tools, read from pyproject's ``docs`` extra so the pins live in one place.
DOCS = EXTRAS["docs"]
#: The linters (ruff, codespell) at the versions pre-commit uses, read from pyproject's ``lint`` extra.
LINT = EXTRAS["lint"]
#: Exact pins: an unpinned resolve of Celery together with the other packages backtracked for minutes. The same
#: pins as the ``celery`` extra in pyproject.toml.
CELERY = ["celery==5.7.0", "kombu==5.7.0", "redis==8.1.0"]
#: The tracing integrations the Celery adapter must coexist with (tests/adapters/celery/test_celery_tracing.py).
#: 0.66b1, not 0.66b2: every OpenTelemetry instrumentation pins opentelemetry-instrumentation exactly, and the
#: threading one (INTEROP) has no 0.66b2.
CELERY_INTEROP = ["opentelemetry-instrumentation-celery==0.66b1", "sentry-sdk==2.75.0"]
#: The tests that need the main cell's extra tools, or build the package (``packaging``), or run for minutes.
MAIN_ONLY = "not interop and not typing and not stress and not celery and not packaging"
LEGACY_ONLY = f"not quart and {MAIN_ONLY}"
#: Where the JUnit report shows a Quart test: it has no markers, so by module, or by conformance entry id.
QUART_MODULES = ("tests.providers.quart.", "tests.adapters.quart.", "tests.examples.test_quart_app")


@dataclass(frozen=True)
class Cell:
    name: str
    requirements: list[str]
    markers: str = LEGACY_ONLY
    paths: list[str] = field(default_factory=lambda: ["tests"])
    #: The Python the cell runs on, as "3.13"; None is the interpreter running nox.
    python: str | None = None
    #: A script run in the cell's interpreter instead of plain pytest; it gets ``--junitxml=`` and any extra
    #: arguments, and reports in the same JUnit form (the upstream suites need their own pytest configuration).
    script: tuple[str, ...] = ()
    #: Run the tests with ``CTXSNAP_PURE_PYTHON=1``: the pure-Python hot path, although the C accelerator is
    #: built (issue 14). The cell's tests expect that implementation (tests/core/test_implementation.py).
    pure_python: bool = False

    @property
    def implementation(self) -> str:
        """What ``ctxsnap._compiled.IMPLEMENTATION`` must say in this cell."""
        return "python" if self.pure_python else "compiled"

    def environment(self) -> dict[str, str]:
        """What the cell's test run adds to the environment."""
        env = {"CTXSNAP_CELL": self.name, "CTXSNAP_EXPECT_IMPLEMENTATION": self.implementation}
        if self.pure_python:
            env["CTXSNAP_PURE_PYTHON"] = "1"
        return env


# The version matrix from the design brief. Flask 1.1.1 runs with its real legacy pin set; Werkzeug below 2.0
# gets a cell of its own that checks ctxsnap refuses it clearly instead of silently carrying nothing.
#
# Both implementations of the hot path run the suite in one matrix run, at no extra cost (issue 14): the main
# cell, Flask 3.1 with Quart 0.20 and the new-Python cells run the compiled accelerator, what a wheel installs;
# the older-framework cells (Flask 3.0 with Quart 0.19 down to Flask 1.1) run the pure-Python fallback, so the
# fallback sees the core, the conformance suite, every adapter and Quart's tests too.
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
            *PACKAGING,
        ],
        markers="not stress",
    ),
    Cell(
        "flask-3.1-quart-0.20",
        ["flask==3.1.3", "quart==0.20.0", *ASGI, *TEST_TOOLS],
        markers=MAIN_ONLY,
    ),
    Cell(
        "flask-3.0-quart-0.19",
        ["flask==3.0.3", "werkzeug==3.0.6", "quart==0.19.9", *ASGI, *TEST_TOOLS],
        markers=MAIN_ONLY,
        pure_python=True,
    ),
    Cell("flask-2.3", ["flask==2.3.3", "werkzeug==2.3.8", *TEST_TOOLS], pure_python=True),
    Cell("flask-2.2", ["flask==2.2.5", "werkzeug==2.2.3", *TEST_TOOLS], pure_python=True),
    Cell(
        "flask-2.0",
        ["flask==2.0.3", "werkzeug==2.0.3", "jinja2==3.0.3", "itsdangerous==2.0.1", *TEST_TOOLS],
        pure_python=True,
    ),
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
        pure_python=True,
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
        pure_python=True,
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
        markers=MAIN_ONLY,
        paths=[*NEW_PYTHON_PATHS, "tests/examples/test_quart_app.py"],
        python="3.13",
    ),
    Cell(
        "py3.12-flask-3.1-quart-0.22",
        ["flask==3.1.3", "quart==0.22.0", *ASGI, *TEST_TOOLS],
        markers=MAIN_ONLY,
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


def cell_named(name: str) -> Cell:
    """The cell called ``name``; a ``KeyError`` that lists the cells otherwise."""
    for cell in CELLS:
        if cell.name == name:
            return cell
    raise KeyError(f"Unknown cell {name!r}. Pick one of: {', '.join(c.name for c in CELLS)}")


def own_paths(cell: Cell, extra: Sequence[str]) -> list[str]:
    """The cell's test paths for a run with ``extra`` pytest arguments: none when those name a path themselves.

    ``-- tests/core`` after the main cell's own ``tests`` would narrow nothing (pytest drops the duplicate, not
    the rest of the suite), so a path among the extra arguments replaces the cell's paths; the cell's marker
    expression still applies.
    """
    named = [arg for arg in extra if not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists()]
    return [] if named else list(cell.paths)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


# -- interpreters -------------------------------------------------------------------------------------------
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
    ``$(pyenv root)/versions``. nox's own discovery looks on PATH only, hence this.
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


#: The interpreters found before, by version. The search runs pyenv's shims, a second or more per version on a
#: busy machine, and the noxfile asks for every cell's interpreter each time it loads; delete the file to make
#: it search again.
INTERPRETERS = VENVS / "interpreters.json"


@functools.cache
def interpreter_for(version: str | None) -> str | MissingInterpreter:
    """The interpreter of a cell's Python version; None is the interpreter running nox.

    A missing interpreter is returned, not raised, for the cell's session to report; it is never remembered, so
    one installed later is found.
    """
    if version is None:
        return sys.executable
    try:
        remembered: dict[str, str] = json.loads(INTERPRETERS.read_text())
    except (OSError, ValueError):
        remembered = {}
    path = remembered.get(version)
    if path and os.access(path, os.X_OK):
        return path
    try:
        found = find_interpreter(version)
    except MissingInterpreter as exc:
        return exc
    VENVS.mkdir(exist_ok=True)
    scratch = INTERPRETERS.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps({**remembered, version: found}, indent=1, sort_keys=True))
    os.replace(scratch, INTERPRETERS)
    return found


# -- environments: rebuilt only when what they were built from changes ---------------------------------------
STAMP = ".ctxsnap-stamp"


#: The C accelerator's sources: ``pip install -e .`` compiles the module into the tree once, at install time, so
#: an environment built before one of them changed would run a stale compiled module (or none).
EXTENSION_INPUTS = ["setup.py", "ctxsnap/_speedups.c"]


def _sha(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def environment_digest(requirements: Sequence[str], interpreter: str) -> str:
    """What an environment is built from, as two hashes joined by a dot: its requirements, its interpreter and
    pyproject.toml (ctxsnap's own metadata and extras); then the C accelerator's ``EXTENSION_INPUTS``."""
    environment = _sha([*requirements, interpreter, (ROOT / "pyproject.toml").read_text()])
    extension = _sha([(ROOT / name).read_text() for name in EXTENSION_INPUTS])
    return f"{environment}.{extension}"


def only_extension_changed(built: str | None, digest: str) -> bool:
    """Whether an environment differs from ``digest`` in the accelerator's sources alone: reinstalling ctxsnap
    recompiles it, and nothing else needs to change."""
    return built is not None and built != digest and built.split(".")[0] == digest.split(".")[0]


def built_from(location: str | Path) -> str | None:
    """The digest an environment was last built from, None if it never finished building."""
    try:
        return (Path(location) / STAMP).read_text()
    except OSError:
        return None


def mark_built(location: str | Path, digest: str) -> None:
    (Path(location) / STAMP).write_text(digest)


# -- progress: a cold start builds an environment per cell and a full run takes minutes, so say so ----------
#: How long each cell's environment build and full test run took the last time, to print estimates.
TIMINGS = VENVS / "timings.json"


def last_time(name: str, step: str) -> float | None:
    try:
        return float(json.loads(TIMINGS.read_text())[name][step])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_time(name: str, step: str, seconds: float) -> None:
    try:
        timings = json.loads(TIMINGS.read_text())
    except (OSError, ValueError):
        timings = {}
    timings.setdefault(name, {})[step] = round(seconds, 1)
    VENVS.mkdir(exist_ok=True)
    # Written aside and renamed: two runs finishing at once leave one whole file, never a torn one.
    scratch = TIMINGS.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(timings, indent=1, sort_keys=True))
    os.replace(scratch, TIMINGS)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def plan(cells: Sequence[Cell], narrowed: bool) -> str:
    """The line a matrix run starts with: how many cells, and how long they took the last time."""
    known = [last_time(cell.name, "tests") for cell in cells]
    if all(known) and not narrowed:
        total = duration(sum(filter(None, known)))
        return f"{len(cells)} cell(s); their tests took {total} last time, plus any environment to rebuild"
    return (
        f"{len(cells)} cell(s); a cell without an environment builds one first (about 1-2 min); the whole "
        "matrix takes 10-25 min on a 2-core machine"
    )


# -- outcomes -----------------------------------------------------------------------------------------------
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

    def problems(self) -> list[str]:
        """Why a cell that did not fail a test is still not green, one sentence each."""
        found = []
        if self.exit_code == 5:
            found.append("pytest collected no test: that is a failure here")
        if self.skipped:
            found.append(f"{self.skipped} test(s) skipped: a skipped test is not a passed one")
        if self.quart_expected and not self.quart_ran:
            found.append("its marker expression selects Quart tests, but none ran: a failure")
        return found


def is_quart_case(case: ET.Element) -> bool:
    return case.get("classname", "").startswith(QUART_MODULES) or case.get("name", "").endswith("@quart]")


def read_report(report: Path, outcome: Outcome) -> None:
    """Add a JUnit report's counts (pytest's, or the upstream runner's) to ``outcome``."""
    if not report.exists() or not report.stat().st_size:
        return
    root = ET.parse(report).getroot()
    outcome.quart_ran = sum(map(is_quart_case, root.iter("testcase")))
    for suite in root.iter("testsuite"):
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        outcome.failed += failed
        outcome.skipped += skipped
        outcome.passed += tests - failed - skipped


def table(outcomes: Sequence[Outcome]) -> str:
    """The per-cell table a matrix run ends with, and its one-line total."""
    lines = ["cell                        passed  failed  skipped  exit  seconds"]
    for o in outcomes:
        mark = "NOT RUN (no interpreter)" if o.missing else "ok" if o.ok else "FAIL"
        counts = f"{o.passed:>6}  {o.failed:>6}  {o.skipped:>7}  {o.exit_code:>4}  {o.seconds:>7.1f}"
        lines.append(f"{o.cell:<27} {counts}  {mark}")
    passed = sum(o.passed for o in outcomes)
    failed = sum(o.failed for o in outcomes) + sum(o.skipped for o in outcomes)
    failed += sum(1 for o in outcomes if not o.ok and o.failed == 0 and o.skipped == 0)
    lines.append(f"matrix: {passed} passed, {failed} failed")
    return "\n".join(lines)


def describe(cell: Cell) -> str:
    """One line of ``python3 dev.py cells``: the name, the Python and the pins besides the test tools."""
    python = f"python{cell.python}" if cell.python else f"python{sys.version_info[0]}.{sys.version_info[1]}"
    pins = " ".join(r for r in cell.requirements if r not in TEST_TOOLS)
    return f"{cell.name:<27} {python:<10} {pins}"
