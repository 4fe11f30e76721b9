"""The README's commands: ``python3 dev.py demo | test | bench | stress | cells | nox ...``.

A thin entry point over nox, for a machine with nothing but Python 3.11 and pip. The first run creates
``.venvs/_nox`` with the nox version pyproject's ``nox`` extra pins (under a minute); every command then runs a
session of ``noxfile.py``, which holds the version matrix's sessions, their environments and their checks:

    python3 dev.py test [--cell NAME ...] [-- PYTEST ARGS]   nox -s matrix (every cell, then the table)
    python3 dev.py demo | bench | stress [-- ARGS]           nox -s demo | bench | stress
    python3 dev.py cells                                     nox -s cells
    python3 dev.py nox ARGS                                  nox ARGS (``nox -l`` lists the sessions)
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NOX_VENV = ROOT / ".venvs" / "_nox"


def nox_python() -> Path:
    """The interpreter of ``.venvs/_nox``, made (again) when the pinned nox changed."""
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["nox"]
    python = NOX_VENV / "bin" / "python"
    stamp = NOX_VENV / ".ctxsnap-stamp"
    digest = hashlib.sha256("\n".join([*pins, sys.version]).encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    print(
        f"[dev.py] installing {' '.join(pins)} into {NOX_VENV.relative_to(ROOT)} (once, under a minute) ...",
        flush=True,
    )
    started = time.monotonic()
    venv.EnvBuilder(with_pip=True, clear=True).create(NOX_VENV)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, *pins], check=True)
    stamp.write_text(digest)
    print(f"[dev.py] nox ready in {time.monotonic() - started:.0f} s", flush=True)
    return python


def nox(*args: str) -> int:
    return subprocess.run(
        [str(nox_python()), "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args], cwd=ROOT
    ).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["nox"]:
        # Passed through whole: argparse would take nox's own options (-s, -l) for dev.py's.
        return nox(*argv[1:])
    parser = argparse.ArgumentParser(prog="python3 dev.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    test = sub.add_parser("test", help="run every test in every matrix cell (what CI runs)")
    test.add_argument("--cell", action="append", default=[], help="run only this cell (repeatable)")
    test.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    for name, text in (
        ("demo", "start the example apps on loopback and show what workers see"),
        ("bench", "run the benchmarks and write benchmarks/results/"),
        ("stress", "the long isolation run (at least 50,000 requests)"),
    ):
        sub.add_parser(name, help=text).add_argument("rest", nargs="*")
    sub.add_parser("cells", help="list the matrix cells")
    sub.add_parser("nox", help="run nox itself, with the arguments that follow: python3 dev.py nox -l")
    args = parser.parse_args(argv)
    if args.command == "test":
        cells = [arg for name in args.cell for arg in ("--cell", name)]
        return nox("-s", "matrix", "--", *cells, "--", *args.pytest_args)
    if args.command == "cells":
        return nox("-s", "cells")
    return nox("-s", args.command, "--", *args.rest)


if __name__ == "__main__":
    sys.exit(main())
