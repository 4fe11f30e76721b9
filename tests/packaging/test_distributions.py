"""The sdist and the wheels, built and installed for real: issue 14's rule for the optional C accelerator.

"Wheels that install on a machine without a compiler, with a pure-Python fallback": the sdist is installed with
the compiler made unavailable and must give a working pure-Python package; ``CTXSNAP_NO_EXTENSIONS=1`` must give
a ``py3-none-any`` wheel; a normal wheel must carry the compiled module and install from itself alone
(``--no-index``), with the compiled implementation selected. Everything is built once per run, with the build
backend of this environment (``--no-isolation``: nothing is downloaded), into a temporary directory. Fresh
environments come from virtualenv, whose bundled setuptools builds the sdist offline. About 20 s on a quiet
machine; the main cell only (the ``packaging`` marker), like the lint and docs checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
#: A compiler that fails, the way a machine without gcc (or without Python's headers) fails the build: setuptools
#: reads both from the environment before sysconfig's defaults.
NO_COMPILER = {"CC": "/bin/false", "LDSHARED": "/bin/false"}
#: Run in the fresh environment: which implementation was selected, where ctxsnap was imported from, and a
#: capture applied after the caller's context changed.
PROBE = """
import contextvars
import ctxsnap
from ctxsnap import _compiled

request_id = contextvars.ContextVar("request_id")
request_id.set("r-1")
snapshot = ctxsnap.capture()
request_id.set("r-2")
print(_compiled.IMPLEMENTATION, ctxsnap.__file__, snapshot.run(request_id.get), request_id.get())
"""


def clean_environment(**extra: str) -> dict[str, str]:
    # The cell's own switches must not leak into a build or a fresh environment: each case sets what it tests.
    drop = {"CTXSNAP_PURE_PYTHON", "CTXSNAP_NO_EXTENSIONS", "PYTHONPATH", "PIP_REQUIRE_VIRTUALENV"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def run(command: list[str | Path], cwd: Path, **extra: str) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_environment(**extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path
    pure_wheel: Path


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """The sdist, the wheel built from it, and the wheel built from it with ``CTXSNAP_NO_EXTENSIONS=1``."""
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--no-isolation"]
    # The sdist, then the wheel from the unpacked sdist: the wheel proves the sdist is whole.
    run([*build, "--outdir", out / "normal", ROOT], cwd=out)
    (sdist,) = (out / "normal").glob("*.tar.gz")
    (wheel,) = (out / "normal").glob("*.whl")
    with tarfile.open(sdist) as archive:
        archive.extractall(out / "source", filter="data")
    (source,) = (out / "source").iterdir()
    run([*build, "--wheel", "--outdir", out / "pure", source], cwd=out, CTXSNAP_NO_EXTENSIONS="1")
    (pure_wheel,) = (out / "pure").glob("*.whl")
    return Distributions(sdist, wheel, pure_wheel)


def fresh_environment(where: Path, *, setuptools: bool) -> Path:
    """A new virtual environment with pip (and setuptools, to build an sdist without a download); its python."""
    seed = ["--setuptools", "bundle" if setuptools else "none"]
    run([sys.executable, "-m", "virtualenv", "--quiet", "--no-periodic-update", *seed, where], cwd=where.parent)
    return where / "bin" / "python"


def probe(python: Path, environment: Path) -> str:
    # Run outside the source tree, whose ctxsnap package would otherwise be the one imported.
    implementation, location, captured, current = run([python, "-c", PROBE], cwd=environment).split()
    assert Path(location).is_relative_to(environment), f"ctxsnap came from {location}, not the new environment"
    assert (captured, current) == ("r-1", "r-2")
    return implementation


def names_in_wheel(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_sdist_carries_the_c_source_and_what_the_tests_need(distributions: Distributions) -> None:
    with tarfile.open(distributions.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"setup.py", "ctxsnap/_speedups.c", "ctxsnap/py.typed", "noxfile.py", "tools/matrix.py"} <= names
    assert {"tests/core/test_implementation.py", "docs/benchmarks.md", "README.md"} <= names
    # A module built in place in the working tree (pip install -e .) is no source.
    assert not [name for name in names if name.endswith((".so", ".pyd", ".pyc"))]


def test_wheel_carries_the_compiled_module_and_installs_from_itself(
    distributions: Distributions, tmp_path: Path
) -> None:
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert f"-{tag}-{tag}-" in distributions.wheel.name, distributions.wheel.name
    names = names_in_wheel(distributions.wheel)
    assert [name for name in names if name.startswith("ctxsnap/_speedups.") and name.endswith(".so")]
    assert "ctxsnap/py.typed" in names
    assert "ctxsnap/_speedups.c" not in names

    # No setuptools, no index: the wheel alone installs, with nothing to build.
    python = fresh_environment(tmp_path / "venv", setuptools=False)
    run([python, "-m", "pip", "install", "--no-index", "--no-cache-dir", distributions.wheel], cwd=tmp_path)
    assert probe(python, tmp_path / "venv") == "compiled"


def test_no_extensions_build_gives_a_pure_wheel(distributions: Distributions) -> None:
    assert distributions.pure_wheel.name.endswith("-py3-none-any.whl"), distributions.pure_wheel.name
    names = names_in_wheel(distributions.pure_wheel)
    assert not [name for name in names if name.endswith((".so", ".pyd", ".c"))]
    assert "ctxsnap/py.typed" in names


def test_sdist_installs_as_pure_python_without_a_compiler(distributions: Distributions, tmp_path: Path) -> None:
    python = fresh_environment(tmp_path / "venv", setuptools=True)
    pip = [str(python), "-m", "pip", "install", "-v", "--no-index", "--no-cache-dir", "--no-build-isolation"]
    output = run([*pip, distributions.sdist], cwd=tmp_path, **NO_COMPILER)
    # The compile was attempted and failed, and the build said so, rather than the extension being skipped.
    assert "optional C accelerator could not be compiled" in output
    assert "-py3-none-any.whl" in output
    site_packages = list((tmp_path / "venv").glob("lib/python*/site-packages/ctxsnap"))
    assert site_packages and not list(site_packages[0].glob("_speedups*"))
    assert probe(python, tmp_path / "venv") == "python"
