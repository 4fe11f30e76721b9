"""Inline: what carrying the context costs with no thread hop, so nothing but the carrying is timed.

Each alternative captures in the "parent" and runs the task in the same thread, in a loop. Capture and run are
timed apart (a snapshot is taken once per submit but may run many times) and together (what one task costs).
The contextvars-only scenario runs in a process that never imported Flask, the way a plain library would.
"""

from __future__ import annotations

import contextvars
from contextvars import ContextVar
from typing import Any

import ctxsnap

from .._harness import Alternative, Settings, compare, pin_if_allowed, ratio_between, sync_batch
from .._report import find, fmt_ratio, target, timing_table

#: Ten variables: a request id, a tenant, a tracing span, a log context... what a real app has set.
VARIABLES: list[ContextVar[str]] = [ContextVar(f"var_{index}") for index in range(10)]


def _set_variables() -> None:
    for index, var in enumerate(VARIABLES):
        var.set(f"value-{index}")


def _read_one() -> Any:
    return VARIABLES[0].get(None)


def contextvars_only(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    context = contextvars.Context()
    context.run(_set_variables)
    return context.run(_contextvars_only, settings, pinning)


def _contextvars_only(settings: Settings, pinning: str) -> dict[str, Any]:
    task = _read_one
    raw_context = contextvars.copy_context()
    snapshot = ctxsnap.capture()
    wrapped = snapshot.wrap(task)
    copy_context = contextvars.copy_context
    fresh_copy = raw_context.copy

    def raw_any_arguments(*args: Any, **kwargs: Any) -> Any:
        return fresh_copy().run(task, *args, **kwargs)

    run_rows = compare(
        [
            Alternative("plain call", sync_batch(task), note="no context carried: the floor of the loop itself"),
            Alternative(
                "raw ctx.copy().run",
                sync_batch(lambda: raw_context.copy().run(task)),
                note="a Context captured once, a fresh copy per run (what ctxsnap does underneath)",
            ),
            Alternative(
                "raw ctx.copy().run in a (*args, **kwargs) wrapper",
                sync_batch(raw_any_arguments),
                note="the same, in a hand-written wrapper that passes arguments on, as any wrapper must",
            ),
            Alternative(
                "ctxsnap wrapped()", sync_batch(wrapped), note="snapshot.wrap(task) called; captured once"
            ),
            Alternative(
                "ctxsnap snap.run(task)",
                sync_batch(lambda: snapshot.run(task)),
                note="the public run(), argument checks included",
            ),
        ],
        reference="raw ctx.copy().run",
        settings=settings,
    )
    capture_rows = compare(
        [
            Alternative("raw copy_context()", sync_batch(copy_context)),
            Alternative("ctxsnap.capture()", sync_batch(ctxsnap.capture)),
            Alternative(
                "raw copy_context().run(task)",
                sync_batch(lambda: copy_context().run(task)),
                note="capture + run in one Context; unsafe to share between workers",
            ),
            Alternative(
                "ctxsnap.wrap(task)()",
                sync_batch(lambda: ctxsnap.wrap(task)()),
                note="capture + wrap + run: what ctxsnap.ThreadPoolExecutor.submit adds per task",
            ),
            Alternative("ctxsnap.capture().run(task)", sync_batch(lambda: ctxsnap.capture().run(task))),
        ],
        reference="raw copy_context().run(task)",
        settings=settings,
    )
    run_ratio = find(run_rows, "ctxsnap wrapped()").ratio
    any_arguments = "raw ctx.copy().run in a (*args, **kwargs) wrapper"
    same_signature = ratio_between(find(run_rows, "ctxsnap wrapped()"), find(run_rows, any_arguments))
    return {
        "title": "Inline, contextvars only (10 ContextVars set, no framework imported)",
        "notes": [
            f"Process {pinning}. Against a hand-written wrapper with the same `(*args, **kwargs)` signature, "
            f"ctxsnap's run is {fmt_ratio(same_signature)} (same rounds)."
        ],
        "tables": [
            timing_table("Apply and run a captured snapshot", run_rows, "raw ctx.copy().run"),
            timing_table("Capture, and capture + run", capture_rows, "raw copy_context().run(task)"),
        ],
        "targets": [
            target(
                "contextvars-only run ≤ 1.3× raw ctx.copy().run (inline)",
                1.3,
                run_ratio,
                why_missed="a wrapper that accepts any arguments (`*args, **kwargs`) costs "
                f"{_added(find(run_rows, any_arguments), find(run_rows, 'raw ctx.copy().run'))} "
                "more per call on this CPython than the zero-argument lambda the reference is timed with; "
                f"against a raw wrapper with the same signature ctxsnap's run is {fmt_ratio(same_signature)}",
            )
        ],
        "plots": [],
    }


def flask_full(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    from .. import _flask

    app, executor = _flask.make_app()
    with _flask.request_context(app):
        return _flask_full(settings, pinning, app, executor)


def _flask_full(settings: Settings, pinning: str, app: Any, executor: Any) -> dict[str, Any]:
    import flask

    from ctxsnap.adapters import flask as ctxsnap_flask

    from .. import _flask

    task = _flask.task
    copy_context = contextvars.copy_context
    snapshot = ctxsnap.capture()
    wrapped = snapshot.wrap(task)
    app_context = flask.globals.app_ctx._get_current_object()  # type: ignore[attr-defined]

    alternatives = [
        Alternative("plain call", sync_batch(task), note="in the request itself: nothing carried"),
        Alternative(
            "raw copy_context().run(task)",
            sync_batch(lambda: copy_context().run(task)),
            note="the floor; shares the parent's g object and cannot run in two workers at once",
        ),
        Alternative(
            "ctxsnap.wrap(task)()",
            sync_batch(lambda: ctxsnap.wrap(task)()),
            note="capture + wrap + run: what ctxsnap.ThreadPoolExecutor.submit adds per task",
        ),
        Alternative("ctxsnap.capture().run(task)", sync_batch(lambda: ctxsnap.capture().run(task))),
        Alternative(
            "ctxsnap_flask.copy_current_request_context(task)()",
            sync_batch(lambda: ctxsnap_flask.copy_current_request_context(task)()),
        ),
        Alternative(
            "closure from DESIGN.md",
            sync_batch(lambda: _flask.closure(task)()),
            note="decorate + call; pushes a request context copy, runs both teardowns",
        ),
        Alternative(
            "flask.copy_current_request_context(task)()",
            sync_batch(lambda: flask.copy_current_request_context(task)()),
            note="decorate + call; empty g in the worker",
        ),
        Alternative(
            "Flask-Executor wrapper",
            sync_batch(lambda: executor._prepare_fn(task)()),
            note="Executor._prepare_fn(task)(): what its submit wraps each task in",
        ),
        Alternative(
            "Flask-Threads work item",
            sync_batch(lambda: _flask.flask_threads_work_item(app_context, task)),
            note="push the one shared app context, run, pop: its per-task path, outside the pool",
        ),
    ]
    rows = compare(alternatives, reference="raw copy_context().run(task)", settings=settings)
    part_rows = compare(
        [
            Alternative("raw copy_context()", sync_batch(copy_context)),
            Alternative("ctxsnap.capture()", sync_batch(ctxsnap.capture), note="capture only"),
            Alternative("ctxsnap wrapped()", sync_batch(wrapped), note="apply + run only, captured once"),
            Alternative("raw copy_context().run(task)", sync_batch(lambda: copy_context().run(task))),
        ],
        reference="raw copy_context().run(task)",
        settings=settings,
    )

    full = find(rows, "ctxsnap.capture().run(task)")
    floor = find(rows, "raw copy_context().run(task)")
    absolute = _added(full, floor)
    via_wrap = find(rows, "ctxsnap.wrap(task)()")

    def versus(name: str) -> float | None:
        return ratio_between(full, find(rows, name))

    why = (
        "a full Flask snapshot forks the app context (a new AppContext and g object, a copy of g's dict) and "
        "sets two ContextVars per run, on top of the Context copy; "
        f"it adds {absolute} per task over the floor"
    )
    return {
        "title": "Inline, full Flask snapshot (request context, 10 g attributes, the task reads g, a ContextVar "
        "and the request)",
        "notes": [
            f"Process {pinning}. Flask {flask_version()}. The targets use `ctxsnap.capture().run(task)`, capture "
            f"plus run. The submit path, `ctxsnap.wrap(task)()`, adds {_added(via_wrap, full)} on top of it: "
            "building the wrapper (`functools.wraps` copies the function's metadata) is paid once per task."
        ],
        "tables": [
            timing_table("Capture + run, per task", rows, "raw copy_context().run(task)"),
            timing_table("Capture and run apart", part_rows, "raw copy_context().run(task)"),
        ],
        "targets": [
            target(
                "full Flask snapshot, capture + run ≤ 1.5× raw copy_context().run", 1.5, full.ratio, why_missed=why
            ),
            target(
                "full Flask snapshot, capture + run ≤ 0.1× the hand-written closure",
                0.1,
                versus("closure from DESIGN.md"),
                why_missed=why,
            ),
            target(
                "full Flask snapshot, capture + run ≤ 0.08× Flask-Executor's wrapper",
                0.08,
                versus("Flask-Executor wrapper"),
                why_missed=why,
            ),
        ],
        "plots": [
            {
                "file": "inline_flask.png",
                "kind": "bars",
                "title": "Inline capture + run, full Flask snapshot (median µs per task)",
                "ylabel": "µs per task (lower is better)",
                "series": {r.name: (r.median * 1e6 if r.median is not None else None) for r in rows},
            }
        ],
    }


def _added(row: Any, floor: Any) -> str:
    if row.median is None or floor.median is None:
        return "an unknown amount"
    return f"{(row.median - floor.median) * 1e6:.2f} µs"


def flask_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("flask")
