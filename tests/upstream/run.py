"""Run anyio's and Flask's own tests with ctxsnap's drop-ins substituted: ``python tests/upstream/run.py``.

ctxsnap's ``run_sync`` and ``copy_current_request_context`` claim to be drop-ins. The strongest check of that
claim is the upstream projects' own tests of the functions they replace, so this script takes those tests from
the source distributions of exactly the anyio and Flask installed in the running interpreter (the ``upstream``
cell of ``dev.py`` pins them), unpacks them into a temporary directory and runs them with
``ctxsnap_substitution`` (a pytest plugin next to this file) in place. Upstream test code is read at run time and
never stored in the project; the sdists are kept in ``.venvs/upstream-sdists/`` (outside git) between runs.

Each suite runs under its own project's pytest configuration (anyio's ``[tool.pytest]``, Flask's
``[tool.pytest.ini_options]``), as its maintainers run it. ``--junitxml=PATH`` writes one report holding a test
suite per upstream project, which ``dev.py`` reads like any other cell's; other arguments go to pytest.
The script fails if a suite cannot be fetched, collects nothing, or never calls the substitute.

Usage: ``python tests/upstream/run.py [--suite anyio|flask ...] [--junitxml=PATH] [pytest arguments]``; a test
id among the pytest arguments (``tests/test_to_thread.py::test_contextvar_propagation``) replaces the suite's
files.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / ".venvs" / "upstream-sdists"


@dataclass(frozen=True)
class Suite:
    """The upstream ``files`` of ``distribution`` that test the function ctxsnap replaces."""

    name: str
    distribution: str
    files: tuple[str, ...]


SUITES = (
    Suite("anyio", "anyio", ("tests/test_to_thread.py", "tests/test_from_thread.py")),
    Suite("flask", "flask", ("tests/test_reqctx.py", "tests/test_appctx.py")),
    # Its sdist ships no tests: only with --source, a checkout of github.com/pallets/quart at the installed
    # version's tag (docs/async.md, "Upstream test suites").
    Suite("quart", "quart", ("tests",)),
)


def sdist(distribution: str, version: str) -> Path:
    """The sdist of ``distribution==version`` from the package index, downloaded once into the cache."""
    stem = f"{re.sub(r'[-_.]+', '_', distribution).lower()}-{version}"
    found = sorted(CACHE.glob(f"{stem}.tar.gz")) + sorted(CACHE.glob(f"{stem}.zip"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    # --no-build-isolation: pip reads the sdist's metadata with the build backends the cell installs, instead
    # of downloading them into a fresh environment for every sdist (about a minute for anyio's setuptools-scm).
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "-q",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        "-d",
        str(CACHE),
        f"{distribution}=={version}",
    ]
    subprocess.run(command, check=True)
    found = sorted(CACHE.glob(f"{stem}.tar.gz"))
    if not found:
        raise SystemExit(f"pip downloaded no {stem}.tar.gz into {CACHE}: the index has no sdist of it")
    return found[0]


def unpack(archive: Path, into: Path) -> Path:
    """Unpack only the test tree and the project's pytest configuration; return the unpacked project root."""
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if (m.isfile() or m.isdir())
            and len(Path(m.name).parts) >= 2
            and (Path(m.name).parts[1] == "tests" or Path(m.name).parts[1:] == ("pyproject.toml",))
        ]
        tar.extractall(into, members=members, filter="data")
    (project,) = {Path(m.name).parts[0] for m in members}
    return into / project


def run_suite(suite: Suite, workdir: Path, pytest_args: list[str], source: Path | None) -> tuple[int, Path]:
    try:
        version = importlib.metadata.version(suite.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            f"{suite.distribution} is not installed in {sys.executable}. Run the suite in its matrix cell: "
            f"python3 dev.py test --cell upstream-{suite.name}"
        ) from None
    if source is not None:
        project, origin = source.resolve(), str(source)
    elif suite.name == "quart":
        raise SystemExit(
            "Quart's sdist ships no tests. Pass --source with a checkout of github.com/pallets/quart at the "
            "tag of the installed Quart."
        )
    else:
        archive = sdist(suite.distribution, version)
        project, origin = unpack(archive, workdir / suite.name), archive.name
    report = workdir / f"{suite.name}.xml"
    # Test ids or paths among the arguments (tests/test_to_thread.py::test_x) replace the suite's files; a run
    # narrowed that way or by -k/-m cannot see every test the plugin's lists name, so only a whole run checks.
    files = [] if any(arg.startswith("tests/") for arg in pytest_args) else list(suite.files)
    narrowed = not files or any(arg.startswith(("-k", "-m", "--deselect")) for arg in pytest_args)
    whole_run = [] if narrowed else ["--ctxsnap-whole-run"]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "ctxsnap_substitution",
        f"--ctxsnap-substitute={suite.name}",
        *whole_run,
        f"--rootdir={project}",
        "-c",
        str(project / "pyproject.toml"),
        f"--junitxml={report}",
        "-o",
        f"junit_suite_name=upstream-{suite.name}",
        *files,
        *pytest_args,
    ]
    print(f"[upstream] {suite.distribution} {version} from {origin}: pytest {' '.join(command[3:])}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    code = subprocess.run(command, cwd=project, env=env).returncode
    return code, report


def merge(reports: list[Path], target: Path) -> None:
    """One JUnit report with a ``<testsuite>`` per upstream project, the form ``dev.py`` reads."""
    merged = ET.Element("testsuites")
    for report in reports:
        if report.exists() and report.stat().st_size:
            root = ET.parse(report).getroot()
            merged.extend(root.iter("testsuite"))
    ET.ElementTree(merged).write(target, encoding="utf-8", xml_declaration=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/upstream/run.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suite",
        action="append",
        choices=[s.name for s in SUITES],
        help="run only this suite (repeatable); default: all",
    )
    parser.add_argument("--junitxml", type=Path, help="write the merged JUnit report here")
    parser.add_argument("--source", type=Path, help="run the one --suite from this unpacked project tree")
    args, pytest_args = parser.parse_known_args(argv)
    suites = [s for s in SUITES if s.name in (args.suite or ("anyio", "flask"))]
    if args.source is not None and len(suites) != 1:
        parser.error("--source needs exactly one --suite: the project the tree belongs to")
    workdir = Path(tempfile.mkdtemp(prefix="ctxsnap-upstream-"))
    try:
        results = [run_suite(suite, workdir, pytest_args, args.source) for suite in suites]
        if args.junitxml is not None:
            merge([report for _, report in results], args.junitxml)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [suite.name for suite, (code, _) in zip(suites, results, strict=False) if code != 0]
    if failed:
        print(f"[upstream] failed: {', '.join(failed)}", flush=True)
    # pytest's own exit codes: 5 (nothing collected) counts as a failure, like every other non-zero code.
    return max((code for code, _ in results), default=0)


if __name__ == "__main__":
    sys.exit(main())
