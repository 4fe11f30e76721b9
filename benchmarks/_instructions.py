"""Instruction counts per call, and wall ratios beside them, for one interpreter: the child of ``instructions``.

Wall-clock ratios on a shared machine move with its load; the number of instructions an operation executes
does not (it is what CodSpeed measures, the same way: under callgrind). This module runs in the interpreter
being measured (3.11, 3.12, 3.13, each with its own environment) and has two modes:

* ``--mode callgrind``, started under ``valgrind --tool=callgrind --dump-before=getppid``: for every case it
  calls ``os.getppid()`` as a marker (each call makes callgrind write the counts since the previous one to a
  dump file of its own), runs the case ``N`` times, marks, runs it ``2N`` times, marks. The parent takes
  ``(count(2N) - count(N)) / N`` per case, so interpreter start-up, imports, warm-up, the loop's own cost and
  the marker cancel out and only the per-call cost remains;
* ``--mode wall``: the same cases timed with the harness's interleaved batches, pinned to one CPU.

The parent starts it once more under callgrind with ``CTXSNAP_PURE_PYTHON=1`` when the first run reports
``"compiled"``, so the report shows what the pure-Python fallback costs beside the accelerated path; the result
always names the implementation that ran (``ctxsnap._compiled.IMPLEMENTATION``).

Three groups, each in a process of its own: ``contextvars`` (ten ContextVars set, Flask never imported, the way a
plain library runs) and ``flask`` (inside a request with ten ``g`` attributes; the task reads ``g``, a ContextVar
and a header, as in every Flask scenario), and ``instrument`` (Flask imported, no context, issue 15).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextvars
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import ctxsnap
from ctxsnap._compiled import IMPLEMENTATION

from ._harness import Alternative, Settings, compare, pin_to_one_cpu, sync_batch

#: (case name, zero-argument operation); the first case of a group is its floor.
Cases = list[tuple[str, Callable[[], Any]]]

#: The names the parent and the report use; one place, so that a renamed case cannot silently drop a target.
CV_FLOOR = "copy_context().run(task)"
CV_CAPTURE_RUN = "ctxsnap.capture().run(task)"
CV_COPY_RUN = "ctx.copy().run(task)"
CV_WRAPPED = "snap.wrap(task)() (prebuilt)"
CV_SNAP_RUN = "snap.run(task)"
CV_WRAP_CALL = "ctxsnap.wrap(task)()"
BARE_SUBMIT = "bare pool.submit(task).result()"
CTXSNAP_SUBMIT = "ctxsnap.ThreadPoolExecutor.submit(task).result()"
#: The pool round trip that carries the context and nothing else: the least any carrier can cost from a request.
RAW_SUBMIT = "raw pool.submit(copy_context().run, task).result()"
#: The cases read against the bare submit rather than the group's floor.
VS_BARE_SUBMIT = frozenset({CTXSNAP_SUBMIT, RAW_SUBMIT})
FLASK_FLOOR = "copy_context().run(task)"
FLASK_CAPTURE_RUN = "ctxsnap.capture().run(task)"
FLASK_WRAP_CALL = "ctxsnap.wrap(task)()"
FLASK_WRAPPED = "snap.wrap(task)() (prebuilt)"
FLASK_CAPTURE = "ctxsnap.capture()"
CLOSURE = "closure from DESIGN.md"
FLASK_EXECUTOR = "Flask-Executor wrapper"
UNPATCHED_SUBMIT = "pool.submit(task).result(), unpatched"
INSTRUMENTED_SUBMIT = "pool.submit(task).result(), instrumented"


@contextmanager
def contextvars_cases() -> Iterator[Cases]:
    from .scenarios.inline import VARIABLES

    for index, var in enumerate(VARIABLES):
        var.set(f"value-{index}")
    first = VARIABLES[0]

    def task() -> Any:
        return first.get(None)

    context = contextvars.copy_context()
    snapshot = ctxsnap.capture()
    wrapped = snapshot.wrap(task)
    copy_context = contextvars.copy_context
    with ExitStack() as stack:
        bare = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        pool = stack.enter_context(ctxsnap.ThreadPoolExecutor(max_workers=1))
        yield [
            (CV_FLOOR, lambda: copy_context().run(task)),
            (CV_CAPTURE_RUN, lambda: ctxsnap.capture().run(task)),
            (CV_COPY_RUN, lambda: context.copy().run(task)),
            (CV_WRAPPED, wrapped),
            (CV_SNAP_RUN, lambda: snapshot.run(task)),
            (CV_WRAP_CALL, lambda: ctxsnap.wrap(task)()),
            (BARE_SUBMIT, lambda: bare.submit(task).result()),
            (CTXSNAP_SUBMIT, lambda: pool.submit(task).result()),
        ]


@contextmanager
def flask_cases() -> Iterator[Cases]:
    from . import _flask

    app, executor = _flask.make_app()
    task = _flask.task
    copy_context = contextvars.copy_context
    with ExitStack() as stack:
        stack.enter_context(_flask.request_context(app))
        bare = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        pool = stack.enter_context(ctxsnap.ThreadPoolExecutor(max_workers=1))
        snapshot = ctxsnap.capture()
        wrapped = snapshot.wrap(task)
        assert ctxsnap.capture().run(task) == _flask.EXPECTED, "the measured snapshot must carry everything"
        yield [
            (FLASK_FLOOR, lambda: copy_context().run(task)),
            (FLASK_CAPTURE_RUN, lambda: ctxsnap.capture().run(task)),
            (FLASK_CAPTURE, ctxsnap.capture),
            (FLASK_WRAPPED, wrapped),
            (FLASK_WRAP_CALL, lambda: ctxsnap.wrap(task)()),
            (CLOSURE, lambda: _flask.closure(task)()),
            (FLASK_EXECUTOR, lambda: executor._prepare_fn(task)()),
            (BARE_SUBMIT, lambda: bare.submit(task).result()),
            (RAW_SUBMIT, lambda: bare.submit(copy_context().run, task).result()),
            (CTXSNAP_SUBMIT, lambda: pool.submit(task).result()),
        ]
        executor.shutdown(wait=True)


@contextmanager
def instrument_cases() -> Iterator[Cases]:
    """Issue 15's no-context case: Flask imported (its providers registered), no Flask context active."""
    import flask  # noqa: F401 - imported for its providers, as in the instrument scenario

    from .scenarios.inline import VARIABLES

    for index, var in enumerate(VARIABLES):
        var.set(f"value-{index}")
    first = VARIABLES[0]

    def task() -> Any:
        return first.get(None)

    # The unpatched reference is the standard submit function itself, called directly: instrument() replaces
    # the class attribute, and the group runs instrumented throughout.
    unpatched_submit = concurrent.futures.ThreadPoolExecutor.submit
    with ExitStack() as stack:
        pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        stack.enter_context(ctxsnap.instrumented())
        yield [
            (UNPATCHED_SUBMIT, lambda: unpatched_submit(pool, task).result()),
            (INSTRUMENTED_SUBMIT, lambda: pool.submit(task).result()),
        ]


GROUPS = {"contextvars": contextvars_cases, "flask": flask_cases, "instrument": instrument_cases}


def _loop(operation: Callable[[], Any], number: int) -> None:
    for _ in range(number):
        operation()


def run_callgrind(cases: Cases, calls: int) -> list[str]:
    """Marker, N calls, marker, 2N calls, marker, for every case; the parent reads the dumps in this order."""
    mark = os.getppid
    for _, operation in cases:
        _loop(operation, 200)  # warm: adaptive specialisation, caches, the first capture's plan
    for _, operation in cases:
        _loop(operation, 20)
        gc.collect()
        gc.disable()
        mark()
        _loop(operation, calls)
        mark()
        _loop(operation, 2 * calls)
        mark()
        gc.enable()
    return [name for name, _ in cases]


def run_wall(cases: Cases, settings: Settings) -> list[dict[str, Any]]:
    floor = cases[0][0]
    rows = compare([Alternative(name, sync_batch(op)) for name, op in cases], reference=floor, settings=settings)
    return [row.as_dict() for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._instructions")
    parser.add_argument("--group", choices=sorted(GROUPS), required=True)
    parser.add_argument("--mode", choices=("callgrind", "wall"), required=True)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    pinning = pin_to_one_cpu() if args.mode == "wall" else "not pinned (instruction counts)"
    with GROUPS[args.group]() as cases:
        if args.mode == "callgrind":
            result: dict[str, Any] = {"cases": run_callgrind(cases, args.calls), "calls": args.calls}
        else:
            result = {"rows": run_wall(cases, Settings.for_mode(args.quick)), "pinning": pinning}
    result["python"] = sys.version.split()[0]
    result["implementation"] = IMPLEMENTATION
    args.out.write_text(json.dumps(result, default=str))
    sys.stdout.flush()
    # Pool threads are joined by the ExitStack above; nothing else is left to wait for.
    return 0


if __name__ == "__main__":
    sys.exit(main())
