"""The task runner's promise about other Pythons: a cell's interpreter is found, or its absence is loud in CI.

``python dev.py test`` runs the Python 3.12 and 3.13 cells with interpreters that pyenv installs but does not
select (the bare ``python3.13`` shim then exits 127). Outside CI a machine without one reports the cell as not
run; under ``CI=true`` the run fails, so a CI machine that lost an interpreter can never go green by skipping.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dev  # noqa: E402


def test_the_interpreter_of_this_python_is_found_and_runs() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = dev.find_interpreter(version)
    out = subprocess.run([found, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert out.stdout.strip() == str(tuple(sys.version_info[:2]))


def test_every_cell_names_a_python_the_matrix_supports() -> None:
    assert {cell.python for cell in dev.CELLS} == {None, "3.12", "3.13"}
    quart_023 = [cell for cell in dev.CELLS if "quart==0.23.1" in cell.requirements]
    assert [cell.python for cell in quart_023] == ["3.13"]


@pytest.mark.parametrize(("ci", "ok", "exit_code"), [("true", False, 3), ("", True, 0)])
def test_a_missing_interpreter_fails_the_run_only_in_ci(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ci: str, ok: bool, exit_code: int
) -> None:
    monkeypatch.setenv("CI", ci)
    outcome = dev.run_cell(dev.Cell("py3.99-none", ["pytest"], python="3.99"), [])
    assert (outcome.ok, outcome.exit_code, outcome.passed) == (ok, exit_code, 0)
    printed = capsys.readouterr().out
    assert "no Python 3.99 interpreter found" in printed
    assert ("FAILED" in printed) is (ci == "true")
    assert not (dev.VENVS / "py3.99-none").exists() and not (dev.VENVS / "py3.99-none.lock").exists()
