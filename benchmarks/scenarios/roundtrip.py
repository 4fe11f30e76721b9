"""Round trip: submit one task to a one-worker pool and wait for its result, pinned to one CPU.

This is what a view pays per task it hands off. The thread hop itself (queue, wake the worker, hand the result
back) costs tens of microseconds and dominates; the question is how much carrying the context adds on top. The
process is pinned to one CPU before any pool exists (workers inherit the pinning): unpinned, the scheduler
moving two threads between cores adds noise as large as the effect being measured.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
from collections.abc import Callable
from typing import Any

import ctxsnap

from .._harness import Alternative, Settings, compare, pin_if_allowed, sync_batch
from .._report import find, fmt_ratio, target, timing_table
from .inline import VARIABLES, _read_one, _set_variables


def _round_trip(submit: Callable[[], concurrent.futures.Future[Any]]) -> Callable[[], Any]:
    def once() -> Any:
        return submit().result()

    return once


def contextvars_only(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    context = contextvars.Context()
    context.run(_set_variables)
    return context.run(_contextvars_only, settings, pinning)


def _contextvars_only(settings: Settings, pinning: str) -> dict[str, Any]:
    task = _read_one
    expected = VARIABLES[0].get()
    bare = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    raw = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    wrapped_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    snap_pool = ctxsnap.ThreadPoolExecutor(max_workers=1)
    context_executor = ctxsnap.ContextExecutor(wrapped_pool)
    copy_context = contextvars.copy_context
    pools = [bare, raw, wrapped_pool, snap_pool]
    try:
        seen = {
            "bare submit": bare.submit(task).result(),
            "raw submit(copy_context().run, task)": raw.submit(copy_context().run, task).result(),
            "ctxsnap.ThreadPoolExecutor.submit": snap_pool.submit(task).result(),
            "ctxsnap.ContextExecutor(pool).submit": context_executor.submit(task).result(),
        }
        alternatives = [
            Alternative(
                "bare submit",
                sync_batch(_round_trip(lambda: bare.submit(task))),
                note="concurrent.futures.ThreadPoolExecutor, nothing carried",
            ),
            Alternative(
                "raw submit(copy_context().run, task)",
                sync_batch(_round_trip(lambda: raw.submit(copy_context().run, task))),
            ),
            Alternative(
                "ctxsnap.ThreadPoolExecutor.submit",
                sync_batch(_round_trip(lambda: snap_pool.submit(task))),
                note="captures at each submit",
            ),
            Alternative(
                "ctxsnap.ContextExecutor(pool).submit",
                sync_batch(_round_trip(lambda: context_executor.submit(task))),
            ),
        ]
        for alt in alternatives:
            alt.note = f"{alt.note}; worker saw the variable: {'yes' if seen[alt.name] == expected else 'no'}"
            alt.note = alt.note.lstrip("; ")
        rows = compare(alternatives, reference="bare submit", settings=settings)
    finally:
        for pool in pools:
            pool.shutdown(wait=True)
    ratio = find(rows, "ctxsnap.ThreadPoolExecutor.submit").ratio
    return {
        "title": "Round trip through a one-worker pool, contextvars only",
        "notes": [f"Process {pinning}. Each operation is `pool.submit(task).result()`."],
        "tables": [timing_table("submit + result, per task", rows, "bare submit")],
        "targets": [
            target(
                "round trip ≤ 1.1× a bare submit (contextvars only)",
                1.1,
                ratio,
                why_missed="capture + the per-run Context copy are paid on top of the hop",
            ),
        ],
        "plots": [],
    }


def flask_full(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    from .. import _flask

    app, executor = _flask.make_app(executor_workers=1)
    try:
        with _flask.request_context(app):
            return _flask_full(settings, pinning, executor)
    finally:
        executor.shutdown(wait=True)


def _flask_full(settings: Settings, pinning: str, executor: Any) -> dict[str, Any]:
    import flask
    from flaskthreads import ThreadPoolWithAppContextExecutor

    from ctxsnap.adapters import flask as ctxsnap_flask

    from .. import _flask

    task = _flask.task
    copy_context = contextvars.copy_context
    bare = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    snap_pool = ctxsnap.ThreadPoolExecutor(max_workers=1)
    # Flask-Threads captures the app context when its pool is built, so it is built inside the request.
    threads_pool = ThreadPoolWithAppContextExecutor(max_workers=1)
    submits: dict[str, tuple[Callable[[], concurrent.futures.Future[Any]], str]] = {
        "bare submit": (lambda: bare.submit(task), "nothing carried"),
        "raw submit(copy_context().run, task)": (
            lambda: bare.submit(copy_context().run, task),
            "shares the request's g object",
        ),
        "ctxsnap.ThreadPoolExecutor.submit": (lambda: snap_pool.submit(task), "captures at each submit"),
        "submit(ctxsnap_flask.copy_current_request_context(task))": (
            lambda: bare.submit(ctxsnap_flask.copy_current_request_context(task)),
            "",
        ),
        "submit(closure from DESIGN.md)": (lambda: bare.submit(_flask.closure(task)), "runs both teardowns"),
        "submit(flask.copy_current_request_context(task))": (
            lambda: bare.submit(flask.copy_current_request_context(task)),
            "runs both teardowns",
        ),
        "Flask-Executor submit": (lambda: executor.submit(task), "EXECUTOR_MAX_WORKERS=1"),
        "Flask-Threads pool submit": (lambda: threads_pool.submit(task), "one app context shared by all tasks"),
    }
    alternatives = []
    for name, (submit, note) in submits.items():
        try:
            seen = _flask.describe_seen(submit().result(timeout=30))
        except Exception as exc:  # recorded as data by compare() through the check below
            seen = f"fails: {type(exc).__name__}"
        alternatives.append(
            Alternative(name, sync_batch(_round_trip(submit)), note=f"{note}; sees {seen}".lstrip("; "))
        )
    try:
        rows = compare(alternatives, reference="bare submit", settings=settings)
    finally:
        bare.shutdown(wait=True)
        snap_pool.shutdown(wait=True)
        threads_pool.shutdown(wait=True)
    ratio = find(rows, "ctxsnap.ThreadPoolExecutor.submit").ratio
    raw = find(rows, "raw submit(copy_context().run, task)").ratio
    return {
        "title": "Round trip through a one-worker pool, full Flask snapshot",
        "notes": [
            f"Process {pinning}. Inside a request with 10 g attributes; each operation is "
            '`submit(task).result()`; "sees" is what the worker\'s task saw (g, the ContextVar, the request).'
        ],
        "tables": [timing_table("submit + result, per task", rows, "bare submit")],
        "targets": [
            target(
                "round trip ≤ 1.1× a bare submit (full Flask snapshot)",
                1.1,
                ratio,
                why_missed="the full Flask capture + apply (fork of the app context, private g) is paid on "
                "top of the hop; the bare submit carries nothing at all, so its task finds no context and "
                f"skips its reads; the raw submit(copy_context().run, task) measured {fmt_ratio(raw)}",
            ),
        ],
        "plots": [
            {
                "file": "roundtrip_flask.png",
                "kind": "bars",
                "title": "Round trip through a one-worker pool, full Flask snapshot (median µs per task)",
                "ylabel": "µs per task (lower is better)",
                "series": {r.name: (r.median * 1e6 if r.median is not None else None) for r in rows},
            }
        ],
    }
