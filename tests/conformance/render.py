"""Write the README's conformance matrix from a run of the suite: ``python3 tests/conformance/render.py``.

The suite runs in the main cell of the version matrix (the one with every framework, so every entry is
selected) with a JUnit report; each test's outcome lands in the row of its adapter and the column named by its
test name. Nothing in the table is typed by hand: ``--check`` only compares, and ``test_readme_matrix.py`` fails
when the README's block no longer matches the suite's parametrization.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SUITE = "tests/conformance/test_semantics.py"
START = "<!-- conformance:start -->"
END = "<!-- conformance:end -->"

if __package__:  # part of the suite: pytest imports this module as conformance.render
    from .catalog import ENTRIES, ENTRY_IDS, PROPERTIES, property_of
else:  # run as a script: the repository root makes the suite importable by its full name, as mypy names it
    sys.path.insert(0, str(ROOT))
    from tests.conformance.catalog import ENTRIES, ENTRY_IDS, PROPERTIES, property_of

Outcomes = dict[tuple[str, str], list[bool]]


def outcomes_from(results: Iterable[tuple[str, bool]]) -> Outcomes:
    """Group ``(pytest test name with [entry id], passed)`` pairs by (entry, property)."""
    outcomes: Outcomes = defaultdict(list)
    for name, passed in results:
        match = re.fullmatch(r"(test_\w+)\[(.+)\]", name)
        if match is None or match.group(2) not in ENTRY_IDS:
            raise ValueError(f"{name!r} is not a conformance test parametrized over an adapter entry")
        outcomes[(match.group(2), property_of(match.group(1)))].append(passed)
    return dict(outcomes)


def table(outcomes: Outcomes) -> str:
    total = sum(len(results) for results in outcomes.values())
    headings = [heading for _, heading in PROPERTIES]
    lines = [
        f"Rendered by `python3 tests/conformance/render.py` from a run of `{SUITE}` ({total} tests): one test",
        "module plays each row of the semantics table against every adapter, from a parent inside a Flask or a",
        "Quart request. ✓ every test of that row passed, ✗ one failed, — the row does not apply.",
        "",
        "| adapter | parent | " + " | ".join(headings) + " |",
        "| --- | --- |" + " :-: |" * len(headings),
    ]
    for entry in ENTRIES:
        cells = []
        for key, _ in PROPERTIES:
            results = outcomes.get((entry.id, key))
            cells.append("—" if not results else "✓" if all(results) else "✗")
        lines.append(f"| {entry.adapter} | {entry.host.capitalize()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def block_of(readme: str) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {START} ... {END}")
    return readme[start + len(START) : end].strip("\n")


def with_block(readme: str, block: str) -> str:
    start, end = readme.index(START), readme.index(END)
    return readme[: start + len(START)] + "\n" + block + "\n" + readme[end:]


def run_suite(python: str) -> Outcomes:
    with tempfile.TemporaryDirectory(prefix="ctxsnap-conformance-") as directory:
        report = Path(directory) / "report.xml"
        command = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", SUITE]
        code = subprocess.run(command, cwd=ROOT).returncode
        if not report.exists() or code not in (0, 1):
            raise SystemExit(f"the conformance suite did not run (pytest exit code {code})")
        results = []
        for case in ET.parse(report).getroot().iter("testcase"):
            if case.find("skipped") is not None:
                raise SystemExit(f"{case.get('name')} was skipped; the matrix only shows tests that ran")
            failed = case.find("failure") is not None or case.find("error") is not None
            results.append((case.get("name", ""), not failed))
    return outcomes_from(results)


def main_cell_python() -> str:
    """The main cell's interpreter, its environment built or refreshed by nox without running its tests."""
    from tools.matrix import MAIN, VENVS

    session = ["nox", "-s", f"tests-{MAIN.name}", "--install-only"]
    subprocess.run([sys.executable, str(ROOT / "dev.py"), *session], check=True)
    return str(VENVS / MAIN.name / "bin" / "python")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the README is out of date")
    parser.add_argument("--python", help="interpreter to run the suite with (default: the main cell's venv)")
    args = parser.parse_args(argv)

    outcomes = run_suite(args.python or main_cell_python())
    block = table(outcomes)
    readme = README.read_text(encoding="utf-8")
    failed = sum(not passed for results in outcomes.values() for passed in results)
    if args.check:
        current = block_of(readme) == block
        print("README matrix is up to date" if current else "README matrix is out of date: run render.py")
        return 0 if current and not failed else 1
    README.write_text(with_block(readme, block), encoding="utf-8")
    print(f"README.md: matrix of {len(ENTRIES)} adapters x {len(PROPERTIES)} properties written; {failed} failing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
