"""The package's promises about itself: an import-clean core, a typed public face, a diagnostic command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ctxsnap
from ctxsnap import _compiled

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout


def test_core_imports_no_framework() -> None:
    out = _run(
        "import sys, ctxsnap, ctxsnap.adapters.asyncio; "
        "print(sorted(m for m in ('flask', 'quart', 'werkzeug', 'anyio', 'trio') if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_public_names_are_exactly_all() -> None:
    public = {name for name in dir(ctxsnap) if not name.startswith("_")} - {"adapters", "annotations"}
    assert public == set(ctxsnap.__all__)


def test_diagnostic_names_python_flag_frameworks_and_providers() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ctxsnap"], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert f"python {sys.version.split()[0]}" in out
    assert f"implementation: {_compiled.IMPLEMENTATION} (" in out
    assert "sys.flags.thread_inherit_context" in out
    assert "flask:" in out and "quart:" in out
    assert "active providers: contextvars" in out


@pytest.mark.typing
def test_package_passes_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "ctxsnap"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
