"""Importing an adapter or provider without its framework names the extra to install (issue 11, defect 14).

Each case runs in a fresh interpreter with the framework hidden (``sys.modules[name] = None`` makes Python refuse
the import exactly as for a package that is not installed), so the test runs in every cell.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import TIMEOUT

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys
sys.modules[{framework!r}] = None   # not installed, as far as import is concerned
import ctxsnap
print(ctxsnap.capture().providers)  # the core does not count the hidden framework as in use
try:
    import {module}
except ModuleNotFoundError as exc:
    print(exc.name)
    print(exc)
"""


@pytest.mark.parametrize(
    ("module", "framework"),
    [
        ("ctxsnap.adapters.anyio", "anyio"),
        ("ctxsnap.adapters.celery", "celery"),
        ("ctxsnap.adapters.flask", "flask"),
        ("ctxsnap.adapters.quart", "quart"),
        ("ctxsnap.providers.flask", "flask"),
        ("ctxsnap.providers.quart", "quart"),
    ],
)
def test_importing_a_module_without_its_framework_names_the_extra_to_install(module: str, framework: str) -> None:
    code = textwrap.dedent(PROGRAM).format(framework=framework, module=module)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "('contextvars',)",
        framework,
        f'{module} needs {framework}, which is not installed. Install it with: pip install "ctxsnap[{framework}]"',
    ]


def test_a_framework_that_is_installed_but_broken_keeps_its_own_error() -> None:
    # Hiding a dependency of anyio (not anyio itself): the error must name what is really missing.
    code = "import sys; sys.modules['anyio._core'] = None\nimport ctxsnap.adapters.anyio"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT
    )
    assert result.returncode == 1
    assert "anyio._core" in result.stderr.splitlines()[-1]
    assert "ctxsnap[anyio]" not in result.stderr
