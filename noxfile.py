"""nox sessions for ctxsnap: ``nox -l`` lists them, ``nox -s NAME`` runs one.

``python3 dev.py test`` and ``python3 dev.py demo`` (the README's two commands) install the nox version
pyproject's ``nox`` extra pins into ``.venvs/_nox`` and run the ``matrix`` and ``demo`` sessions;
``python3 dev.py nox ARGS`` runs any other.

The version matrix is data, in ``tools/matrix.py``: each cell there is a ``tests-<cell>`` session here, with the
cell's interpreter, pinned requirements, marker expression and test paths. ``matrix`` queues every cell (or the
``--cell`` ones) and ends with ``matrix-report``, the per-cell table. A cell session fails when a test fails,
when it collects none, when one is skipped, and, for a full run of a cell whose marker expression selects
Quart tests, when no Quart test ran.

Environments live under ``.venvs/`` (``.venvs/<cell>`` links to the cell's) and are reused: a session installs
only when its requirements, its interpreter or ``pyproject.toml`` changed since the environment was built, so a
warm run spends no time in pip; when only the C accelerator's sources changed (``setup.py``,
``ctxsnap/_speedups.c``), it reinstalls ctxsnap alone, which compiles the module again: a warm environment never
runs a stale compiled module. Tool versions come from ``pyproject.toml`` (the ``docs``, ``lint`` and ``nox``
extras), the same pins pre-commit and the docs test use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nox
from nox.command import CommandFailed
from nox.virtualenv import VirtualEnv

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from tools import matrix  # noqa: E402 (tools/ is beside this file, not an installed package)

nox.options.envdir = ".venvs"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
# A missing interpreter is reported by the cell's own session (tools/matrix.py finds pyenv's); nox must not
# fetch one from the network instead.
nox.options.download_python = "never"
nox.options.sessions = ["lint", "spell", "typecheck", "docs", f"tests-{matrix.MAIN.name}"]

#: Filled as the sessions of this nox run go: what ``matrix-report`` prints, and each cell's "cell 3/10".
OUTCOMES: dict[str, matrix.Outcome] = {}
POSITION: dict[str, str] = {}


def _label(name: str) -> str:
    position = POSITION.get(name)
    return f"[{position}] {name}" if position else f"[{name}]"


def _say(name: str, text: str) -> None:
    # Plain prints, not session.log: the per-cell lines are the run's progress report and read the same
    # whether nox colours its own lines or not.
    print(f"{_label(name)}: {text}", flush=True)


def install(session: nox.Session, name: str, requirements: Sequence[str], project: str | None = "-e .") -> None:
    """Install ``requirements`` (and ctxsnap, editable) unless the environment is already built from them.

    nox reuses environments but would run pip on every session; pip's "already satisfied" pass and the editable
    rebuild of ctxsnap take seconds per cell, paid again on every run. The stamp in the environment records what
    it was built from, so a warm run installs nothing. When the requirements changed, the environment is made
    again from empty: nothing left over from the old set can be imported.
    """
    project_args = project.split() if project else []
    if project_args[:1] == ["-e"]:
        # setuptools' default editable install maps the ctxsnap package alone; the compat mode puts the checkout
        # itself on sys.path, as a plain development install does, so that scripts the tests start in a
        # subprocess (tests/interop, the examples) import tests.support too. It builds the C module in place.
        project_args += ["--config-settings", "editable_mode=compat"]
    args = [*project_args, *requirements]
    venv = session.virtualenv
    if not isinstance(venv, VirtualEnv):  # --no-venv: nox's own rules apply
        session.install(*args)
        return
    python = session.python if isinstance(session.python, str) else f"{sys.base_prefix} {sys.version}"
    digest = matrix.environment_digest(args, python)
    built = matrix.built_from(venv.location)
    if built == digest:
        return
    if matrix.only_extension_changed(built, digest):
        # ctxsnap alone is rebuilt, which compiles the new module in seconds; a new environment takes minutes.
        if project:
            _say(name, "rebuilding ctxsnap: the C accelerator's sources changed ...")
            session.install("--disable-pip-version-check", "-q", "--no-deps", *project_args)
        matrix.mark_built(venv.location, digest)
        return
    if built is not None:
        venv.reuse_existing = False
        venv.create()
    last = matrix.last_time(name, "build")
    estimate = f"~{matrix.duration(last)} last time" if last else "about 1-2 min"
    why = "its requirements, interpreter or pyproject.toml changed" if built else "first run"
    _say(name, f"building environment in {os.path.relpath(venv.location, ROOT)} ({why}, {estimate}) ...")
    started = time.monotonic()
    session.install("--disable-pip-version-check", "-q", *args)
    matrix.mark_built(venv.location, digest)
    matrix.record_time(name, "build", time.monotonic() - started)
    _say(name, f"environment ready in {matrix.duration(time.monotonic() - started)}")


def _link_cell_environment(session: nox.Session, cell: matrix.Cell) -> None:
    # nox names the directory after the session ("tests-flask-2-2"); ``.venvs/<cell>/bin/python`` is the path
    # the docs give for calling pytest by hand, and the old runner's environment there is replaced.
    if not isinstance(session.virtualenv, VirtualEnv):
        return
    link, target = matrix.VENVS / cell.name, Path(session.virtualenv.location)
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    # Relative, so the tree can move; absolute when ``nox --envdir`` put the environment elsewhere.
    link.symlink_to(target.name if target.parent.resolve() == matrix.VENVS.resolve() else target)


def run_tests(
    session: nox.Session, cell: matrix.Cell, extra: Sequence[str], check_quart: bool
) -> matrix.Outcome | None:
    """Run the cell's tests (or its script) with a JUnit report, and read what ran from the report.

    None under ``nox --install-only``, where nox runs no command.
    """
    report = Path(tempfile.mkstemp(prefix=f"ctxsnap-{cell.name}-", suffix=".xml")[1])
    if cell.script:
        command = ["python", *cell.script, f"--junitxml={report}", *extra]
    else:
        command = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-m", cell.markers, f"--junitxml={report}"]
        command += [*matrix.own_paths(cell, extra), *extra]
    last = matrix.last_time(cell.name, "tests")
    # Only a full run of the cell is an estimate for the next one; -k or a path narrows it.
    estimate = "" if extra else f" (~{matrix.duration(last)} last time)" if last else " (first timed run)"
    _say(cell.name, f"running tests{estimate}")
    started = time.monotonic()
    try:
        if session.run(*command, env={**cell.environment(), "PYTHONDONTWRITEBYTECODE": "1"}) is None:
            report.unlink(missing_ok=True)
            return None
        code = 0
    except CommandFailed as exc:
        code = exc.return_code if exc.return_code is not None else 1
    outcome = matrix.Outcome(cell.name, exit_code=code, seconds=time.monotonic() - started)
    outcome.quart_expected = check_quart and "not quart" not in cell.markers
    matrix.read_report(report, outcome)
    report.unlink(missing_ok=True)
    if not extra and outcome.exit_code in (0, 1):
        matrix.record_time(cell.name, "tests", outcome.seconds)
    _say(cell.name, f"{outcome.passed} passed, {outcome.failed} failed in {matrix.duration(outcome.seconds)}")
    for problem in outcome.problems():
        print(f"[{cell.name}] {problem}", flush=True)
    return outcome


def cell_session(cell: matrix.Cell) -> None:
    """Register ``tests-<cell>``: the cell's environment and tests, or the report that its Python is missing."""
    interpreter = matrix.interpreter_for(cell.python)
    doc = f"Matrix cell {cell.name} (tools/matrix.py); arguments after -- go to pytest."
    if isinstance(interpreter, matrix.MissingInterpreter):
        missing = interpreter

        def report_missing(session: nox.Session) -> None:
            # No environment is made for it: nothing is left under .venvs/ for an interpreter that is not here.
            if matrix.in_ci():
                # CI must run every cell: a machine without the interpreter fails loudly rather than going green.
                OUTCOMES[cell.name] = matrix.Outcome(cell.name, exit_code=3)
                print(
                    f"[{cell.name}] FAILED: {missing}. CI=true, so a missing interpreter fails the run", flush=True
                )
                session.error(
                    f"No Python {cell.python} on this CI machine. Install it (pyenv install {cell.python})"
                )
            OUTCOMES[cell.name] = matrix.Outcome(cell.name, missing=str(missing))
            print(f"[{cell.name}] not run: {missing}", flush=True)
            session.skip(f"No Python {cell.python} here. Install it to run this cell")

        report_missing.__doc__ = doc
        nox.session(name=f"tests-{cell.name}", venv_backend="none", default=False)(report_missing)
        return

    def tests(session: nox.Session) -> None:
        install(session, cell.name, cell.requirements)
        _link_cell_environment(session, cell)
        # Extra pytest arguments (-k, a path) may narrow a run on purpose; the Quart check guards the cell's own.
        outcome = run_tests(session, cell, session.posargs, check_quart=not session.posargs)
        if outcome is None:
            return  # --install-only: the environment was what was asked for
        OUTCOMES[cell.name] = outcome
        if not outcome.ok:
            session.error(f"Cell {cell.name} is not green. The lines above say why")

    tests.__doc__ = doc
    nox.session(name=f"tests-{cell.name}", python=interpreter if cell.python else None, default=False)(tests)


for _cell in matrix.CELLS:
    cell_session(_cell)


@nox.session(name="matrix", venv_backend="none", default=False)
def run_matrix(session: nox.Session) -> None:
    """The whole version matrix, then a table: what CI runs. ``-- [--cell NAME ...] [-- pytest args]``."""
    parser = argparse.ArgumentParser(prog="nox -s matrix --", add_help=False)
    parser.add_argument("--cell", action="append", default=[])
    parser.add_argument("pytest_args", nargs="*")
    # Unknown options are pytest's (``nox -s matrix -- -x``), as they are after a second ``--``.
    args, pytest_options = parser.parse_known_args(session.posargs)
    pytest_args = [*pytest_options, *args.pytest_args]
    try:
        cells = [matrix.cell_named(name) for name in args.cell] or matrix.CELLS
    except KeyError as exc:
        session.error(exc.args[0])
    print(matrix.plan(cells, narrowed=bool(pytest_args)), flush=True)
    for number, cell in enumerate(cells, 1):
        POSITION[cell.name] = f"cell {number}/{len(cells)}"
        session.notify(f"tests-{cell.name}", posargs=pytest_args)
    session.notify("matrix-report", posargs=[cell.name for cell in cells])


@nox.session(name="matrix-report", venv_backend="none", default=False)
def matrix_report(session: nox.Session) -> None:
    """The per-cell table of the cells ``matrix`` ran (it queues this last); fails unless every cell is green."""
    names = session.posargs or list(OUTCOMES)
    # A cell whose session stopped before its tests (its environment failed to build) has no outcome: a failure.
    outcomes = [OUTCOMES.get(name) or matrix.Outcome(name, exit_code=1) for name in names]
    if not outcomes:
        session.error("No cell ran in this nox run. Run the matrix: python3 dev.py test")
    print("\n" + matrix.table(outcomes), flush=True)
    if not all(outcome.ok for outcome in outcomes):
        session.error("The matrix is not green. The table above names the cells")


@nox.session(venv_backend="none", default=False)
def cells(session: nox.Session) -> None:
    """The matrix cells: name, Python, and the pins besides the test tools."""
    for cell in matrix.CELLS:
        print(matrix.describe(cell), flush=True)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """The example apps on real servers on loopback, ctxsnap beside what apps use today (the main cell's pins)."""
    install(session, "demo", matrix.MAIN.requirements)
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session(default=False)
def stress(session: nox.Session) -> None:
    """The long isolation run (at least 50,000 requests): the main cell's tests marked ``stress``."""
    install(session, "stress", matrix.MAIN.requirements)
    cell = matrix.Cell(matrix.MAIN.name, matrix.MAIN.requirements, markers="stress")
    outcome = run_tests(session, cell, ["-s", *session.posargs], check_quart=False)
    if outcome is None:
        return
    print(f"stress: {outcome.passed} passed, {outcome.failed} failed", flush=True)
    if not outcome.ok:
        session.error("The stress run is not green. The lines above say why")


#: The interpreters the instruction-count benchmark measures besides the bench environment's own, filled by the
#: ``bench-3.x`` sessions that ``bench`` requires.
BENCH_INTERPRETERS: list[str] = []


def bench_python_session(cell: matrix.Cell) -> None:
    interpreter = matrix.interpreter_for(cell.python)

    def bench_python(session: nox.Session) -> None:
        if isinstance(interpreter, matrix.MissingInterpreter):
            session.skip(f"{interpreter}; the benchmarks measure the other interpreters only")
        install(session, cell.name, cell.requirements)
        BENCH_INTERPRETERS.append(os.path.join(session.bin, "python"))

    bench_python.__doc__ = f"The Python {cell.python} environment the instruction-count benchmark measures on."
    if isinstance(interpreter, matrix.MissingInterpreter):
        nox.session(name=cell.name, venv_backend="none", default=False)(bench_python)
    else:
        nox.session(name=cell.name, python=interpreter, default=False)(bench_python)


for _cell in matrix.BENCH_PYTHONS:
    bench_python_session(_cell)


@nox.session(default=False, requires=[cell.name for cell in matrix.BENCH_PYTHONS])
def bench(session: nox.Session) -> None:
    """The benchmark suite (minutes); writes benchmarks/results/. ``-- instructions`` runs the callgrind one."""
    rest = list(session.posargs)
    if rest[:1] == ["instructions"]:
        # `dev.py bench instructions`: the instruction-count scenario alone, on every interpreter it measures.
        rest = ["--only", "instructions", *rest[1:]]
    install(session, matrix.BENCH.name, matrix.BENCH.requirements)
    env = {"CTXSNAP_BENCH_PYTHONS": os.pathsep.join(BENCH_INTERPRETERS)}
    session.run("python", "-m", "benchmarks", *rest, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff's checks and its formatter, in check mode: nothing is rewritten."""
    install(session, "lint", matrix.EXTRAS["lint"], project=None)
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session
def spell(session: nox.Session) -> None:
    """codespell over the whole tree; project words are listed in pyproject's [tool.codespell]."""
    install(session, "spell", matrix.EXTRAS["lint"], project=None)
    session.run("codespell", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the files pyproject's [tool.mypy] names, against the main cell's frameworks."""
    install(session, "typecheck", matrix.MAIN.requirements)
    session.run("python", "-m", "mypy", "--strict", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors, into docs/_build/html (``-- -b linkcheck`` for links)."""
    install(session, "docs", [], project="-e .[all,docs]")
    builder = session.posargs or ["-b", "html"]
    session.run("sphinx-build", "-c", "docs", "-W", "--keep-going", *builder, ".", "docs/_build/html")
