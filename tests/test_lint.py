"""The tree stays lint-clean: ruff's checks, ruff's formatter and codespell report nothing.

This is the lint check of CI: ``python3 dev.py test`` runs it in the main matrix cell, which installs the pinned
tools of pyproject's ``lint`` extra (the versions pre-commit and ``nox -s lint spell`` use). Each tool runs from
the repository root with the configuration in ``pyproject.toml``, exactly as a contributor runs it, and a failure
shows the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.typing

#: Each check as the command line a contributor types (after ``python -m``). ``--no-cache``: ruff would leave a
#: ``.ruff_cache`` in the tree. codespell's module is ``codespell_lib``; it reads ``[tool.codespell]``.
CHECKS = {
    "ruff check": ["ruff", "check", "--no-cache", "."],
    "ruff format --check": ["ruff", "format", "--check", "--no-cache", "."],
    "codespell": ["codespell_lib"],
}


@pytest.mark.parametrize("command", CHECKS.values(), ids=CHECKS.keys())
def test_the_tree_passes(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, (
        f"python -m {' '.join(command)} found something:\n{result.stdout}{result.stderr}"
    )
