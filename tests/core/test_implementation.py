"""Each matrix cell runs the implementation of the hot path it is meant to (issue 14).

The matrix tests both: most cells run the compiled accelerator, the older-framework cells run the pure-Python
fallback (``pure_python`` in tools/matrix.py, which sets ``CTXSNAP_PURE_PYTHON=1``). Nothing else in the suite
tells the two apart, so without this check a cell whose module failed to build or to import would pass its
whole suite on the Python path, and the compiled one would go untested without anyone seeing it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from ctxsnap import _compiled


def expected_implementation() -> str:
    """What this run must be using.

    A nox cell names it (``CTXSNAP_EXPECT_IMPLEMENTATION``, beside ``CTXSNAP_CELL``); a cell that names no
    expectation is a noxfile mistake, so it fails rather than guessing. By hand (plain ``pytest``, neither
    variable set) the expectation follows from the environment: the pure-Python path when
    ``CTXSNAP_PURE_PYTHON`` asks for it or when no module was built (a machine without a compiler installs the
    pure-Python package), and the compiled one whenever a built module is there: one that is there but does not
    import still fails here.
    """
    named = os.environ.get("CTXSNAP_EXPECT_IMPLEMENTATION")
    if named is not None:
        return named
    cell = os.environ.get("CTXSNAP_CELL")
    if cell is not None:
        pytest.fail(
            f"Cell {cell} does not say which implementation it runs. Set CTXSNAP_EXPECT_IMPLEMENTATION "
            "(noxfile.py sets it from the cell's pure_python field in tools/matrix.py)."
        )
    if os.environ.get("CTXSNAP_PURE_PYTHON", "") not in ("", "0"):
        return "python"
    return "compiled" if importlib.util.find_spec("ctxsnap._speedups") is not None else "python"


def way_out(expected: str) -> str:
    if expected == "python":
        return "Check that CTXSNAP_PURE_PYTHON=1 reaches the tests."
    if os.environ.get("CTXSNAP_PURE_PYTHON", "") not in ("", "0"):
        return "Unset CTXSNAP_PURE_PYTHON, which selects the Python one."
    return (
        "Rebuild ctxsnap here (pip install -e . with a C compiler and Python's headers; in a matrix cell, delete "
        "the .ctxsnap-stamp file of its environment under .venvs/ and run the cell again)."
    )


def test_the_expected_implementation_runs() -> None:
    expected, running = expected_implementation(), _compiled.IMPLEMENTATION
    assert expected in ("compiled", "python"), f"CTXSNAP_EXPECT_IMPLEMENTATION={expected!r}"
    assert running == expected, (
        f"This run uses the {running} implementation, not the {expected} one. {way_out(expected)}"
    )
    assert (_compiled.speedups is None) == (expected == "python")


def test_pure_python_switch_wins_over_a_built_module() -> None:
    # In a fresh interpreter: the selection is made once, at import.
    code = "import ctxsnap._compiled as c; print(c.IMPLEMENTATION, c.speedups)"
    env = {**os.environ, "CTXSNAP_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["python", "None"]
