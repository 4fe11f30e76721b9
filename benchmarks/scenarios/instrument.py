"""What ``ctxsnap.instrument()`` adds to ``Thread.start`` and ``ThreadPoolExecutor.submit``.

Two questions, two tables. With no Flask or Quart context active (a script, a worker process), how much does the
patched call cost next to the unpatched one (target ≤ 1.2×)? Inside a Flask request, how does the patched
standard call compare with the explicit ctxsnap helper doing the same work (``ctxsnap.Thread``,
``ctxsnap.ThreadPoolExecutor``; target ≤ 1.1×)? Every batch switches instrumentation on or off for itself, outside
the timed loop, so each alternative is timed in the state it names, interleaved with the others.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

import ctxsnap

from .._harness import Alternative, Batch, Settings, compare, pin_if_allowed, ratio_between
from .._report import find, target, timing_table


def _batch(operation: Callable[[], Any], instrumented: bool) -> Batch:
    def batch(number: int) -> float:
        if instrumented:
            ctxsnap.instrument()
        else:
            ctxsnap.uninstrument()
        loop = range(number)
        start = time.perf_counter()
        for _ in loop:
            operation()
        elapsed = time.perf_counter() - start
        ctxsnap.uninstrument()
        return elapsed

    return batch


def _start_join(make: Callable[[], threading.Thread]) -> Callable[[], None]:
    def start_join() -> None:
        thread = make()
        thread.start()
        thread.join()

    return start_join


def _alternatives(task: Callable[[], Any], plain: Any, own: Any, explicit: bool) -> list[Alternative]:
    pool_names = (
        ("ctxsnap.ThreadPoolExecutor.submit (explicit)", own) if explicit else ("submit, unpatched", plain)
    )
    thread_name = "ctxsnap.Thread.start (explicit)" if explicit else "Thread.start, unpatched"
    thread_class: type[threading.Thread] = ctxsnap.Thread if explicit else threading.Thread
    return [
        Alternative(thread_name, _batch(_start_join(lambda: thread_class(target=task)), instrumented=False)),
        Alternative(
            "Thread.start, instrumented",
            _batch(_start_join(lambda: threading.Thread(target=task)), instrumented=True),
        ),
        Alternative(pool_names[0], _batch(lambda: pool_names[1].submit(task).result(), instrumented=False)),
        Alternative("submit, instrumented", _batch(lambda: plain.submit(task).result(), instrumented=True)),
    ]


def instrument_overhead(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    from .. import _flask
    from .inline import _read_one, _set_variables

    plain = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    own = ctxsnap.ThreadPoolExecutor(max_workers=1)
    import flask

    app = flask.Flask("ctxsnap_bench")  # no Flask-Executor needed: the scenario runs in the main cell too
    try:

        def no_framework() -> list[Any]:
            _set_variables()
            return _timed(_alternatives(_read_one, plain, own, explicit=False), settings)

        bare = contextvars.Context().run(no_framework)
        with _flask.request_context(app):
            in_request = _timed(_alternatives(_flask.task, plain, own, explicit=True), settings)
    finally:
        ctxsnap.uninstrument()
        for pool in (plain, own):
            pool.shutdown(wait=True)

    def ratio(rows: list[Any], patched: str, reference: str) -> float | None:
        return ratio_between(find(rows, patched), find(rows, reference))

    return {
        "title": "ctxsnap.instrument(): cost added to Thread.start and submit",
        "notes": [
            f"Process {pinning}. A thread row is `Thread(target=task).start(); join()`; a submit row is "
            "`pool.submit(task).result()` on a one-worker pool. Without a framework context the task reads one "
            "of 10 ContextVars; in the request it reads g, a ContextVar and a request header."
        ],
        "tables": [
            timing_table(
                "No Flask/Quart context: instrumented against unpatched", bare, "Thread.start, unpatched"
            ),
            timing_table(
                "Inside a Flask request: instrumented against the explicit helpers",
                in_request,
                "ctxsnap.Thread.start (explicit)",
            ),
        ],
        "targets": [
            target(
                "instrumented Thread.start ≤ 1.2× unpatched (no framework context)",
                1.2,
                ratio(bare, "Thread.start, instrumented", "Thread.start, unpatched"),
            ),
            target(
                "instrumented submit ≤ 1.2× unpatched (no framework context)",
                1.2,
                ratio(bare, "submit, instrumented", "submit, unpatched"),
                why_missed="the capture (a copy of the context) and the run in a fresh copy are paid per call",
            ),
            target(
                "instrumented Thread.start ≤ 1.1× ctxsnap.Thread (in a request)",
                1.1,
                ratio(in_request, "Thread.start, instrumented", "ctxsnap.Thread.start (explicit)"),
            ),
            target(
                "instrumented submit ≤ 1.1× ctxsnap.ThreadPoolExecutor (in a request)",
                1.1,
                ratio(in_request, "submit, instrumented", "ctxsnap.ThreadPoolExecutor.submit (explicit)"),
            ),
        ],
        "plots": [],
    }


def _timed(alternatives: list[Alternative], settings: Settings) -> list[Any]:
    return compare(alternatives, reference=alternatives[0].name, settings=settings)
