"""Where the time of a full Flask snapshot goes, and what measured changes to ctxsnap would save.

The other scenarios say whether a target is met; this one says why not, for whoever works on the hot path
(``Snapshot._run`` and the Flask providers). It times the pieces of one capture + run inside a Flask request,
and "what-if" variants built here, outside the package, from ctxsnap's own internals: each variant is labelled
as such and is never what ctxsnap ships. Private names are reached for on purpose; if they change, the rows
that use them fail with the error in the table and the rest still run.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
from collections.abc import Callable
from typing import Any

import ctxsnap

from .._harness import Alternative, Settings, compare, pin_if_allowed, ratio_between, sync_batch
from .._report import find, fmt_ratio, timing_table

_new = object.__new__


def _what_if_fork_from_template(app_context: Any, values: dict[str, Any]) -> Callable[[], Any]:
    """Fork the app context from a state dict prepared once at capture: one dict copy per run."""
    cls, g_cls = type(app_context), type(app_context.g)
    template = dict(vars(app_context))

    def fork() -> Any:
        child = _new(cls)
        state = template.copy()
        g = _new(g_cls)
        g.__dict__.update(values)
        state["g"] = g
        state["_cv_tokens"] = []
        child.__dict__ = state
        return child

    return fork


def _what_if_minimal(task: Callable[[], Any]) -> Callable[[], Any]:
    """The least any implementation with these semantics can do: copy the context, fork the app context with
    a private g, set the two ContextVars, run. No registry, no providers, no error handling."""
    import flask.globals

    cv_app, cv_request = flask.globals._cv_app, flask.globals._cv_request
    copy_context = contextvars.copy_context

    def capture_and_run() -> Any:
        base = copy_context()
        app_context = cv_app.get()
        request_context = cv_request.get()
        fork = _what_if_fork_from_template(app_context, vars(app_context.g).copy())

        def apply_and_run() -> Any:
            cv_app.set(fork())
            cv_request.set(request_context)
            return task()

        return base.copy().run(apply_and_run)

    return capture_and_run


def _run_snapshot(snapshot: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return snapshot._run(fn, args, kwargs)


class _WhatIfLeanPool(concurrent.futures.ThreadPoolExecutor):
    """``ctxsnap.ThreadPoolExecutor`` minus the per-task ``functools.wraps`` wrapper (same capture, same run)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        return super().submit(_run_snapshot, ctxsnap.capture(), fn, args, kwargs)


def hot_path(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    from .. import _flask

    app, executor = _flask.make_app()
    try:
        with _flask.request_context(app):
            return _hot_path(settings, pinning)
    finally:
        executor.shutdown(wait=True)


def _hot_path(settings: Settings, pinning: str) -> dict[str, Any]:
    import flask.globals

    from ctxsnap.providers._appcontext import fork_app_context, g_values

    task = _flask_task()
    copy_context = contextvars.copy_context
    snapshot = ctxsnap.capture()
    wrapped = snapshot.wrap(task)
    entries = snapshot._entries
    app_provider, app_state, _ = entries[:3]
    app_context = flask.globals._cv_app.get()
    values = g_values(app_context)
    scratch = copy_context()

    pieces = compare(
        [
            Alternative("floor: copy_context().run(task)", sync_batch(lambda: copy_context().run(task))),
            Alternative("task() alone", sync_batch(task)),
            Alternative("ctxsnap.capture().run(task)", sync_batch(lambda: ctxsnap.capture().run(task))),
            Alternative("ctxsnap.capture()", sync_batch(ctxsnap.capture)),
            Alternative("  flask.app provider capture()", sync_batch(app_provider.capture)),
            Alternative("    g_values() (copy of g's attributes)", sync_batch(lambda: g_values(app_context))),
            Alternative("    what-if: vars(g).copy()", sync_batch(lambda: vars(app_context.g).copy())),
            Alternative("snapshot wrapped() (apply + run)", sync_batch(wrapped)),
            Alternative(
                "  flask.app provider apply()", sync_batch(lambda: scratch.run(app_provider.apply, app_state))
            ),
            Alternative("    fork_app_context()", sync_batch(lambda: fork_app_context(app_context, values))),
            Alternative(
                "    what-if: fork from a template made at capture",
                sync_batch(_what_if_fork_from_template(app_context, values)),
            ),
            Alternative(
                "what-if: minimal hand-written equivalent",
                sync_batch(_what_if_minimal(task)),
                note="fork + private g + two ContextVar sets, nothing else",
            ),
            Alternative("snapshot.wrap(task) (build the wrapper)", sync_batch(lambda: snapshot.wrap(task))),
            Alternative("  functools.wraps alone", sync_batch(lambda: functools.wraps(task)(_noop))),
        ],
        reference="floor: copy_context().run(task)",
        settings=settings,
    )

    bare = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    shipped = ctxsnap.ThreadPoolExecutor(max_workers=1)
    lean = _WhatIfLeanPool(max_workers=1)
    try:
        trips = compare(
            [
                Alternative("bare submit", sync_batch(lambda: bare.submit(task).result())),
                Alternative(
                    "ctxsnap.ThreadPoolExecutor.submit", sync_batch(lambda: shipped.submit(task).result())
                ),
                Alternative(
                    "what-if: same capture and run, no functools.wraps wrapper",
                    sync_batch(lambda: lean.submit(task).result()),
                    check=lambda: _expect(lean.submit(task).result()),
                ),
            ],
            reference="bare submit",
            settings=settings,
        )
        plain_trips = contextvars.Context().run(_plain_round_trips, settings, bare, shipped, lean)
    finally:
        for pool in (bare, shipped, lean):
            pool.shutdown(wait=True)

    full = find(pieces, "ctxsnap.capture().run(task)")
    minimal = find(pieces, "what-if: minimal hand-written equivalent")
    return {
        "title": "Hot path breakdown and what-ifs (full Flask snapshot; for the missed targets)",
        "notes": [
            f'Process {pinning}. Indented rows are parts of the row above them. Rows named "what-if" are built '
            "in the benchmark from ctxsnap's internals to measure a possible change; ctxsnap does not ship them. "
            f"The minimal hand-written equivalent (same semantics, no registry or error handling) is "
            f"{fmt_ratio(minimal.ratio)} the floor, so a ≤ 1.5× target is out of reach for any implementation "
            f"that gives the worker its own g; ctxsnap is {fmt_ratio(ratio_between(full, minimal))} the minimal "
            "one."
        ],
        "tables": [
            timing_table("Pieces of one capture + run, inline", pieces, "floor: copy_context().run(task)"),
            timing_table("Round trip through a one-worker pool, full Flask snapshot", trips, "bare submit"),
            timing_table("Round trip through a one-worker pool, contextvars only", plain_trips, "bare submit"),
        ],
        "targets": [],
        "plots": [],
    }


def _plain_round_trips(settings: Settings, bare: Any, shipped: Any, lean: Any) -> list[Any]:
    from .inline import _read_one, _set_variables

    _set_variables()
    return compare(
        [
            Alternative("bare submit", sync_batch(lambda: bare.submit(_read_one).result())),
            Alternative(
                "ctxsnap.ThreadPoolExecutor.submit", sync_batch(lambda: shipped.submit(_read_one).result())
            ),
            Alternative(
                "what-if: same capture and run, no functools.wraps wrapper",
                sync_batch(lambda: lean.submit(_read_one).result()),
            ),
        ],
        reference="bare submit",
        settings=settings,
    )


def _flask_task() -> Callable[[], Any]:
    from .. import _flask

    return _flask.task


def _expect(seen: Any) -> None:
    from .. import _flask

    if seen != _flask.EXPECTED:
        raise AssertionError(f"the what-if pool's task saw {seen!r}, not {_flask.EXPECTED!r}")


def _noop() -> None:
    return None
