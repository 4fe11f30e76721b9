"""``python -m benchmarks``: run every scenario, each in a fresh process, and write the result set.

``python3 dev.py bench`` runs this in the ``bench`` environment (the main matrix cell plus Flask-Executor
1.0.0, Flask-Threads 0.2.0 and matplotlib). Options:

    --quick            a smoke run: tiny loops, written to a temporary directory unless --out is given
    --only NAME        run only this scenario (repeatable); --list shows the names
    --out DIR          where to write results.md, results.json and the PNGs (default: benchmarks/results)

Each scenario runs in a child process of its own: a scenario then starts from a clean interpreter (no Flask
imported for the contextvars-only ones, no leftover pool threads, a CPU pinning that ends with it), and a
competitor that hangs or crashes the interpreter costs one scenario, recorded as such, not the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from ._harness import Settings
from ._report import machine_info, render_markdown, render_plots, targets_markdown
from .scenarios import SCENARIOS, load

RESULTS = Path(__file__).resolve().parent / "results"
DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_START, DOCS_END = "<!-- results:start -->", "<!-- results:end -->"
#: A scenario that takes longer than this is stopped and reported as failed; the full run has a budget of
#: about 15 minutes for everything.
TIMEOUT_FULL = 420.0
TIMEOUT_QUICK = 120.0
#: Scenarios that run children of their own on several interpreters (callgrind is ~50x slower than native).
#: With the compiled module built, the instruction counts run twice per interpreter (compiled, then pure
#: Python): about 20 minutes on a quiet machine.
TIMEOUT_LONG = {"instructions": 2700.0, "conformance": 900.0}


def run_child(name: str, quick: bool) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter; a crash, hang or error comes back as a result with ``error``."""
    with tempfile.TemporaryDirectory(prefix="ctxsnap-bench-") as tmp:
        output = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "benchmarks", "--child", name, "--json", str(output)]
        if quick:
            command.append("--quick")
        started = time.monotonic()
        try:
            completed = subprocess.run(
                command,
                cwd=Path(__file__).resolve().parent.parent,
                timeout=TIMEOUT_LONG.get(name, TIMEOUT_QUICK if quick else TIMEOUT_FULL),
                capture_output=True,
                text=True,
            )
        except subprocess.TimeoutExpired:
            return {"name": name, "title": name, "error": "timed out", "seconds": time.monotonic() - started}
        seconds = time.monotonic() - started
        if completed.returncode != 0 or not output.exists():
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
            return {
                "name": name,
                "title": name,
                "error": f"exit code {completed.returncode}: {' / '.join(tail)}",
                "seconds": seconds,
            }
        result: dict[str, Any] = json.loads(output.read_text())
        result["seconds"] = seconds
        return result


def child(name: str, output: Path, quick: bool) -> None:
    """The body of a scenario's process. Ends with ``os._exit``: see below."""
    code = 0
    try:
        result = load(name)(Settings.for_mode(quick))
        result["name"] = name
        # Imported after the scenario ran, so that a contextvars-only scenario measured a process in which
        # nothing but what it imported was loaded. A scenario whose children run on other interpreters (the
        # instruction counts) records its own.
        from ctxsnap._compiled import IMPLEMENTATION

        result.setdefault("implementation", IMPLEMENTATION)
        output.write_text(json.dumps(result, indent=1, default=str))
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Flask-Threads 0.2.0 joins its worker threads at exit, and the concurrency scenarios can leave one hung
    # on purpose (that is the finding); the results are written, so leave without the atexit handlers.
    os._exit(code)


def write_results(
    results: list[dict[str, Any]], out: Path, *, quick: bool, machine: dict[str, Any] | None = None
) -> Path:
    """Write results.md, results.json and the plots into ``out``; return the Markdown file."""
    out.mkdir(parents=True, exist_ok=True)
    machine = dict(machine or machine_info())
    if hasattr(os, "getloadavg"):
        # With the start value, this brackets how busy the shared machine was while the numbers were taken.
        machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    render_plots(results, out)
    markdown = out / "results.md"
    markdown.write_text(render_markdown(results, machine, quick=quick))
    (out / "results.json").write_text(
        json.dumps({"machine": machine, "quick": quick, "scenarios": results}, indent=1, default=str)
    )
    return markdown


def refresh_docs(results: list[dict[str, Any]], machine: dict[str, Any], page: Path = DOCS_PAGE) -> bool:
    """Copy the targets table of a full run into the docs page, between its markers. False if it has none."""
    if not page.exists():
        return False
    text = page.read_text()
    if DOCS_START not in text or DOCS_END not in text:
        return False
    head, rest = text.split(DOCS_START, 1)
    _, tail = rest.split(DOCS_END, 1)
    body = [
        "",
        f"From the committed run of {machine['date']} ({machine['cpu']}, {machine['cpus']} CPUs, Python "
        f"{machine['python']}, load average {machine['load average at start']} at start and "
        f"{machine.get('load average at end', 'unknown')} at the end; ctxsnap implementation "
        f"{machine.get('ctxsnap implementation', 'unknown')}); every table and plot "
        "is in [benchmarks/results/results.md](../benchmarks/results/results.md).",
        "",
        *targets_markdown(results),
        "",
    ]
    page.write_text(head + DOCS_START + "\n".join(body) + DOCS_END + tail)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny loops, meaningless numbers")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this scenario (repeatable)")
    parser.add_argument("--out", type=Path, help="output directory (default: benchmarks/results)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--child", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    if args.child:
        if args.json is None:
            parser.error("--child needs --json PATH")
        child(args.child, args.json, args.quick)
    names = args.only or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; run with --list to see them")
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="ctxsnap-bench-quick-")) if args.quick else RESULTS
    started = time.monotonic()
    machine = machine_info()  # before the run: the load average it records is the one the run started in
    results = []
    for name in names:
        print(f"[bench] {name} ...", flush=True, end=" ")
        result = run_child(name, args.quick)
        status = f"FAILED ({result['error']})" if result.get("error") else "ok"
        print(f"{status} in {result['seconds']:.0f} s", flush=True)
        results.append(result)
    markdown = write_results(results, out, quick=args.quick, machine=machine)
    complete_run = out.resolve() == RESULTS and not args.quick and args.only is None
    if complete_run and refresh_docs(results, json.loads((out / "results.json").read_text())["machine"]):
        print(f"[bench] refreshed the current results in {DOCS_PAGE}")
    print(f"[bench] {len(results)} scenario(s) in {time.monotonic() - started:.0f} s; wrote {markdown}")
    for result in results:
        for t in result.get("targets", []):
            print(f"  {t['status']:>6}  {t['target']}: {t['measured']} (limit {t['limit']})")
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
