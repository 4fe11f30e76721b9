"""Static typing: ``wrap``, ``run`` and the executors keep the wrapped function's signature for type checkers, and
the package and its tests pass ``mypy --strict``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.typing
def test_paramspec_is_kept_through_wrap_run_and_submit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "tests/core/check_wrap_types.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.typing
def test_the_package_and_its_tests_pass_mypy_strict(tmp_path: Path) -> None:
    """What pre-commit's mypy hook and ``nox -s typecheck`` run: mypy on the files ``[tool.mypy]`` names.

    The tests exercise the typed API, so a public signature that lies fails here too. A cold cache: a cache
    written by a run against other installed packages can hide an error.
    """
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert {"ctxsnap", "tests"} <= set(files), f"[tool.mypy] files must name the package and the tests: {files}"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
