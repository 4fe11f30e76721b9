"""The documentation site builds with warnings as errors, and its links to the project's own pages resolve.

This is the docs check of CI: ``python3 dev.py test`` runs it in the main matrix cell, which installs the
pinned tools of pyproject's ``docs`` extra (``nox -s docs`` runs the same build). A link to a missing page or
heading, a docstring reference to a name that does not exist and malformed reST in a docstring are warnings,
so each of them fails the build. External URLs are not fetched: the build runs offline.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The modules the API reference documents, each with its own ``__all__``.
API_MODULES = [
    "ctxsnap",
    "ctxsnap.adapters.flask",
    "ctxsnap.adapters.quart",
    "ctxsnap.providers.flask",
    "ctxsnap.providers.quart",
    "ctxsnap.adapters.asyncio",
    "ctxsnap.adapters.anyio",
]

pytestmark = pytest.mark.typing


def _sphinx_build(source: Path, conf: Path, out: Path) -> subprocess.CompletedProcess[str]:
    strict = ["-W", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees")]
    command = [sys.executable, "-m", "sphinx", "-c", str(conf), *strict, str(source), str(out / "html")]
    return subprocess.run(command, capture_output=True, text=True, cwd=source)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    result = _sphinx_build(ROOT, ROOT / "docs", out)
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stdout}{result.stderr}"
    return out / "html"


def test_site_builds_without_warnings(site: Path) -> None:
    for page in ["index", "core", "flask", "async", "reliability", "examples", "benchmarks", "api"]:
        assert (site / "docs" / f"{page}.html").is_file(), page
    for page in ["README", "CONTRIBUTING", "CHANGELOG"]:
        assert (site / f"{page}.html").is_file(), page


@pytest.mark.parametrize("module", API_MODULES)
def test_api_reference_has_an_entry_for_every_public_name(site: Path, module: str) -> None:
    api = (site / "docs" / "api.html").read_text(encoding="utf-8")
    names = importlib.import_module(module).__all__
    missing = [name for name in names if f'id="{module}.{name}"' not in api]
    assert not missing, f"docs/api.md has no entry for {module}: {missing} (a docstring is missing?)"


def test_api_reference_names_the_top_level_import(site: Path) -> None:
    # Thread and the executors live in ctxsnap.adapters; users import them from ctxsnap, and so does the page.
    api = (site / "docs" / "api.html").read_text(encoding="utf-8")
    assert 'id="ctxsnap.Thread"' in api and 'id="ctxsnap.adapters.threading.Thread"' not in api
    assert 'id="ctxsnap.ThreadPoolExecutor"' in api and "ctxsnap.adapters.futures.ThreadPoolExecutor" not in api


@pytest.mark.parametrize(
    ("link", "complaint"),
    [("[a page](missing.md)", "missing"), ("[a heading](#no-such-heading)", "no-such-heading")],
)
def test_a_broken_internal_link_fails_the_build(tmp_path: Path, link: str, complaint: str) -> None:
    # The same configuration on a one-page site: proves the link check above can fail.
    source = tmp_path / "site"
    (source / "docs").mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "conf.py", source / "docs" / "conf.py")
    (source / "docs" / "index.md").write_text(f"# Title\n\n## A heading\n\nSee {link}.\n", encoding="utf-8")
    result = _sphinx_build(source, source / "docs", tmp_path / "out")
    assert result.returncode != 0
    assert complaint in result.stderr and "myst.xref_missing" in result.stderr, result.stderr
