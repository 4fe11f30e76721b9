"""The task runner's promises: a cell's interpreter is found or its absence is loud in CI, and green means ran.

``python3 dev.py test`` runs ``noxfile.py``'s ``matrix`` session over the cells of ``tools/matrix.py``. The
Python 3.12 and 3.13 cells use interpreters that pyenv installs but does not select (the bare ``python3.13``
shim then exits 127). Outside CI a machine without one reports the cell as not run; under ``CI=true`` the run
fails, so a CI machine that lost an interpreter can never go green by skipping. A cell whose tests were skipped,
that collected none, or that selects Quart tests and ran none, is not green either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import matrix  # noqa: E402


def test_the_interpreter_of_this_python_is_found_and_runs() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = matrix.find_interpreter(version)
    out = subprocess.run([found, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert out.stdout.strip() == str(tuple(sys.version_info[:2]))


def test_every_cell_names_a_python_the_matrix_supports() -> None:
    assert {cell.python for cell in matrix.CELLS} == {None, "3.12", "3.13"}
    quart_023 = [cell for cell in matrix.CELLS if "quart==0.23.1" in cell.requirements]
    assert [cell.python for cell in quart_023] == ["3.13"]


@pytest.mark.parametrize(
    ("ci", "exit_code", "verdict"), [("true", 1, "FAIL"), ("", 0, "NOT RUN (no interpreter)")]
)
def test_a_missing_interpreter_fails_the_run_only_in_ci(
    tmp_path: Path, ci: str, exit_code: int, verdict: str
) -> None:
    # The real noxfile's session for a cell whose Python is not installed anywhere, run by nox with the report.
    (tmp_path / "noxfile.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            import noxfile
            from tools import matrix
            noxfile.cell_session(matrix.Cell("py3.99-none", ["pytest"], python="3.99"))
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "nox", "-f", "noxfile.py", "-s", "tests-py3.99-none", "matrix-report"]
        + ["--", "py3.99-none"],
        cwd=tmp_path,
        env={**os.environ, "CI": ci},
        capture_output=True,
        text=True,
        timeout=300,
    )
    printed = run.stdout + run.stderr
    assert run.returncode == exit_code, printed
    assert "no Python 3.99 interpreter found" in printed
    assert ("FAILED" in printed) is (ci == "true")
    assert [line.split(maxsplit=6)[-1] for line in run.stdout.splitlines() if line.startswith("py3.99")] == [
        verdict
    ]
    # No environment was made for it, where nox keeps its environments or anywhere under them.
    assert not [path for path in tmp_path.rglob("*") if "3.99" in path.name or "3-99" in path.name]
    assert not (matrix.VENVS / "py3.99-none").exists()


def _outcome_of(
    tmp_path: Path, source: str, quart_expected: bool = False, module: str = "test_sample.py"
) -> matrix.Outcome:
    # A real pytest run and its real JUnit report, read the way a cell's is; the ini file makes tmp_path the
    # rootdir, so a module's JUnit class name is its path from there, as in the project.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / module).write_text(textwrap.dedent(source))
    report = tmp_path / "report.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", module]
    # Without the installed plugins (hypothesis, anyio): the sample needs none, and they take seconds to load.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    code = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True).returncode
    outcome = matrix.Outcome("sample", exit_code=code, quart_expected=quart_expected)
    matrix.read_report(report, outcome)
    return outcome


def test_a_cell_that_skips_a_test_is_not_green(tmp_path: Path) -> None:
    # In a Quart test module, so the same report also shows Quart tests being counted where they are expected.
    source = "import pytest\ndef test_a(): pass\n@pytest.mark.skip\ndef test_b(): pass\n"
    quart_module = f"{matrix.QUART_MODULES[0].replace('.', '/')}test_sample.py"
    outcome = _outcome_of(tmp_path, source, quart_expected=True, module=quart_module)
    assert (outcome.passed, outcome.skipped, outcome.exit_code, outcome.quart_ran) == (1, 1, 0, 2)
    assert not outcome.ok
    assert outcome.problems() == ["1 test(s) skipped: a skipped test is not a passed one"]


def test_a_cell_that_collects_no_test_is_not_green(tmp_path: Path) -> None:
    outcome = _outcome_of(tmp_path, "VALUE = 1\n")
    assert (outcome.passed, outcome.exit_code, outcome.ok) == (0, 5, False)
    assert outcome.problems() == ["pytest collected no test: that is a failure here"]


def test_a_cell_selecting_quart_tests_that_runs_none_is_not_green(tmp_path: Path) -> None:
    outcome = _outcome_of(tmp_path, "def test_a(): pass\n", quart_expected=True)
    assert (outcome.passed, outcome.quart_ran, outcome.ok) == (1, 0, False)
    assert outcome.problems() == ["its marker expression selects Quart tests, but none ran: a failure"]
    outcome.quart_expected = False  # a cell that says "not quart", or a run narrowed on purpose
    assert outcome.ok


def test_a_path_after_the_double_dash_narrows_the_cell_to_it() -> None:
    # `dev.py test --cell X -- tests/core` runs tests/core only, not the cell's `tests` with tests/core again.
    assert matrix.own_paths(matrix.MAIN, ["tests/core", "-q"]) == []
    assert matrix.own_paths(matrix.MAIN, ["tests/core/test_registry.py::test_anything"]) == []
    assert matrix.own_paths(matrix.MAIN, ["-k", "upload"]) == matrix.MAIN.paths


def test_both_implementations_run_the_suite_in_one_matrix_run() -> None:
    # Issue 14: the compiled accelerator where wheels put it (the main cell), the pure-Python fallback in the
    # older-framework cells, Quart's tests included, without a cell of its own.
    assert matrix.MAIN.implementation == "compiled"
    pure = [cell for cell in matrix.CELLS if cell.pure_python]
    assert pure and all(cell.environment()["CTXSNAP_PURE_PYTHON"] == "1" for cell in pure)
    assert any("not quart" not in cell.markers and cell.paths == ["tests"] for cell in pure)
    for cell in matrix.CELLS:
        assert cell.environment()["CTXSNAP_EXPECT_IMPLEMENTATION"] == cell.implementation
        assert ("CTXSNAP_PURE_PYTHON" in cell.environment()) == cell.pure_python


def test_a_changed_extension_source_rebuilds_ctxsnap_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ["pyproject.toml", *matrix.EXTENSION_INPUTS]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text())
    monkeypatch.setattr(matrix, "ROOT", tmp_path)
    built = matrix.environment_digest(["flask==3.1.3"], "python3.11")
    assert not matrix.only_extension_changed(built, built)

    (tmp_path / "ctxsnap" / "_speedups.c").write_text("/* changed */\n")
    changed = matrix.environment_digest(["flask==3.1.3"], "python3.11")
    assert changed != built and matrix.only_extension_changed(built, changed)

    # Anything else that changed makes the environment again, as before.
    assert not matrix.only_extension_changed(built, matrix.environment_digest(["flask==3.1.2"], "python3.11"))
    (tmp_path / "pyproject.toml").write_text("# changed\n")
    assert not matrix.only_extension_changed(built, matrix.environment_digest(["flask==3.1.3"], "python3.11"))
    assert not matrix.only_extension_changed(None, changed)
