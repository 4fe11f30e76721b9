"""nox sessions for ctxsnap: ``nox -l`` lists them, ``nox -s NAME`` runs one.

The version matrix has one source of truth, ``CELLS`` in ``dev.py``: each cell becomes a ``tests-<cell>``
session with the cell's pinned requirements, marker expression and test paths, so a cell added there is a
session here without an edit. ``python3 dev.py test`` stays the README's command for the whole matrix (it also
fails a cell that skips a test or runs no Quart test where it should); these sessions are for running one
check the way the ecosystem's tools do, in an environment of nox's own under ``.nox/``.

Tool versions come from ``pyproject.toml`` (the ``docs`` and ``lint`` extras), the same pins pre-commit and the
docs test use.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
import dev  # noqa: E402 (dev.py is a script beside this file, not an installed module)

EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "spell", "typecheck", "docs", f"tests-{dev.MAIN.name}"]


def _tests_session(cell: dev.Cell) -> None:
    # A cell may name its interpreter (Python 3.12 and 3.13 cells); without one, nox's own Python runs it.
    python = getattr(cell, "python", None)

    def tests(session: nox.Session) -> None:
        session.install("-e", ".", *cell.requirements)
        pytest = ["python", "-m", "pytest", "-p", "no:cacheprovider"]
        env = {"CTXSNAP_CELL": cell.name, "PYTHONDONTWRITEBYTECODE": "1"}
        session.run(*pytest, "-m", cell.markers, *cell.paths, *session.posargs, env=env)

    tests.__doc__ = f"The tests of matrix cell {cell.name} (dev.py CELLS); extra arguments go to pytest."
    nox.session(name=f"tests-{cell.name}", python=python)(tests)


for _cell in dev.CELLS:
    _tests_session(_cell)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff's checks and its formatter, in check mode: nothing is rewritten."""
    session.install(*EXTRAS["lint"])
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session
def spell(session: nox.Session) -> None:
    """codespell over the whole tree; project words are listed in pyproject's [tool.codespell]."""
    session.install(*EXTRAS["lint"])
    session.run("codespell", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the files pyproject's [tool.mypy] names, against the main cell's frameworks."""
    session.install("-e", ".", *dev.MAIN.requirements)
    session.run("python", "-m", "mypy", "--strict", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors, into docs/_build/html (``-- -b linkcheck`` for links)."""
    session.install("-e", ".[all,docs]")
    builder = session.posargs or ["-b", "html"]
    session.run("sphinx-build", "-c", "docs", "-W", "--keep-going", *builder, ".", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite (long: minutes); writes benchmarks/results/. Extra arguments go to it."""
    session.install("-e", ".", *dev.BENCH.requirements)
    session.run("python", "-m", "benchmarks", *session.posargs)
