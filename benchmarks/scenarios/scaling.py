"""Scaling: how capture and run cost grow with the context, and how one wrapped callable fares in many workers.

The size sweeps interleave *all sizes* in one comparison: each size lives in a ``contextvars.Context`` of its
own (N variables set, or a request pushed with M ``g`` attributes), and every batch enters its size's context.
So "capture at 10,000 variables against capture at 0" is a ratio taken in the same rounds, not two runs minutes
apart.

The reuse sweep submits one wrapped callable many times to pools of 1, 2, 4 and 8 workers. Tasks sleep briefly
(standing in for I/O) so that runs of the same wrapper really overlap: that overlap is what breaks a wrapper
built around one shared Context or one request context object (pallets/flask#5252, #5396, Flask-Executor #53).
Failures are counted, never raised.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import ctxsnap

from .._harness import (
    Alternative,
    Batch,
    Row,
    Settings,
    compare,
    describe_error,
    pin_if_allowed,
    ratio_between,
    sync_batch,
)
from .._report import find, fmt_ratio, fmt_time, target

VARIABLE_COUNTS = [0, 10, 100, 1_000, 10_000]
G_ATTRIBUTE_COUNTS = [0, 10, 100, 1_000]
WORKER_COUNTS = [1, 2, 4, 8]

#: Created once: a ContextVar is never freed, so a sweep that created them per size would leak by design.
_MANY: list[ContextVar[int]] = [ContextVar(f"scaling_{index}") for index in range(max(VARIABLE_COUNTS))]
_PROBE: ContextVar[str] = ContextVar("scaling_probe")


def _in_context(context: contextvars.Context, batch: Batch) -> Batch:
    def run(number: int) -> float:
        return context.run(batch, number)

    return run


def _fill(count: int) -> None:
    _PROBE.set("probe")
    for var in _MANY[:count]:
        var.set(1)


def _probe_task() -> Any:
    return _PROBE.get(None)


def _sweep_table(
    title: str, rows: list[Row], operations: list[str], sizes: list[int], label: str
) -> dict[str, Any]:
    headers = ["operation", *[f"{label} = {size:,}" for size in sizes], f"ratio {sizes[-1]:,} / {sizes[0]:,}"]
    body = []
    for operation in operations:
        cells = [operation]
        by_size = [find(rows, f"{operation} @ {size}") for size in sizes]
        for row in by_size:
            cells.append("fails" if row.error else fmt_time(row.median))
        cells.append(fmt_ratio(ratio_between(by_size[-1], by_size[0])))
        body.append(cells)
    return {"title": title, "headers": headers, "rows": body, "note": "", "data": [r.as_dict() for r in rows]}


def _sweep_plot(
    file: str, title: str, rows: list[Row], operations: list[str], sizes: list[int], xlabel: str
) -> dict[str, Any]:
    series = {}
    for operation in operations:
        values = []
        for size in sizes:
            median = find(rows, f"{operation} @ {size}").median
            values.append(None if median is None else median * 1e6)
        series[operation] = values
    return {
        "file": file,
        "kind": "lines",
        "title": title,
        "xlabel": xlabel,
        "ylabel": "µs per operation",
        "x": sizes,
        "series": series,
        "logx": True,
        "logy": True,
    }


def contextvars_count(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    contexts = {}
    for count in VARIABLE_COUNTS:
        context = contextvars.Context()
        context.run(_fill, count)
        contexts[count] = context
    copy_context = contextvars.copy_context
    task = _probe_task
    operations: dict[str, Callable[[], Callable[[], Any]]] = {
        # Each factory runs inside the size's context, so snapshots are captured there.
        "raw copy_context()": lambda: copy_context,
        "ctxsnap.capture()": lambda: ctxsnap.capture,
        "raw ctx.copy().run(task)": lambda: _copy_run(copy_context(), task),
        "ctxsnap wrapped() (run only)": lambda: ctxsnap.capture().wrap(task),
        "ctxsnap.wrap(task)() (capture + run)": lambda: lambda: ctxsnap.wrap(task)(),
        "ctxsnap.capture(exclude=[one variable])": lambda: functools.partial(ctxsnap.capture, exclude=[_PROBE]),
    }
    alternatives = []
    for name, factory in operations.items():
        for count, context in contexts.items():
            operation = context.run(factory)
            alternatives.append(Alternative(f"{name} @ {count}", _in_context(context, sync_batch(operation))))
    rows = compare(alternatives, reference=f"raw copy_context() @ {VARIABLE_COUNTS[0]}", settings=settings)
    names = list(operations)
    capture_flat = ratio_between(
        find(rows, f"ctxsnap.capture() @ {VARIABLE_COUNTS[-1]}"),
        find(rows, f"ctxsnap.capture() @ {VARIABLE_COUNTS[0]}"),
    )
    return {
        "title": "Scaling with the number of ContextVars set (0 to 10,000)",
        "notes": [
            f"Process {pinning}. Median time per operation; the last column is the median per-round ratio of "
            "the largest size to the smallest. `copy_context()` is constant time (the context is a persistent "
            "mapping), and so is ctxsnap's default capture. Leaving one variable out (`exclude=[var]`) "
            "rebuilds the context and is linear in its size by design: only per-variable selection pays it."
        ],
        "tables": [_sweep_table("Cost against ContextVars set", rows, names, VARIABLE_COUNTS, "vars")],
        "targets": [
            target(
                "capture cost flat in the number of ContextVars (ctxsnap.capture() at 10,000 vs 0)",
                1.2,
                capture_flat,
                why_missed="capture does work proportional to the context's size",
            ),
        ],
        "plots": [
            _sweep_plot(
                "scaling_contextvars.png",
                "Cost against the number of ContextVars set",
                rows,
                names,
                VARIABLE_COUNTS,
                "ContextVars set",
            )
        ],
    }


def _copy_run(context: contextvars.Context, task: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: context.copy().run(task)


def g_attributes(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    from .. import _flask

    app, executor = _flask.make_app()
    contexts = {}
    for count in G_ATTRIBUTE_COUNTS:
        context = contextvars.Context()
        # The request stays pushed in its own Context for the whole sweep; the Context is dropped at the end.
        context.run(_push_request, app, count)
        contexts[count] = context
    copy_context = contextvars.copy_context
    task = _flask.task
    operations: dict[str, Callable[[], Callable[[], Any]]] = {
        "raw copy_context().run(task)": lambda: lambda: copy_context().run(task),
        "ctxsnap.capture()": lambda: ctxsnap.capture,
        "ctxsnap wrapped() (run only)": lambda: ctxsnap.capture().wrap(task),
        "ctxsnap.wrap(task)() (capture + run)": lambda: lambda: ctxsnap.wrap(task)(),
        "closure from DESIGN.md (capture + run)": lambda: lambda: _flask.closure(task)(),
        "Flask-Executor wrapper (capture + run)": lambda: lambda: executor._prepare_fn(task)(),
    }
    alternatives = []
    for name, factory in operations.items():
        for count, context in contexts.items():
            operation = context.run(factory)
            alternatives.append(Alternative(f"{name} @ {count}", _in_context(context, sync_batch(operation))))
    try:
        rows = compare(
            alternatives, reference=f"raw copy_context().run(task) @ {G_ATTRIBUTE_COUNTS[0]}", settings=settings
        )
    finally:
        executor.shutdown(wait=True)
    names = list(operations)
    return {
        "title": "Scaling with the number of g attributes (0 to 1,000), full Flask snapshot",
        "notes": [
            f"Process {pinning}. Every carrier that gives the worker its own g copies g's attributes, so cost "
            "grows with their number; the copy is a shallow `dict` copy (C speed). The raw floor shares the "
            "parent's g and copies nothing, which is why it stays flat."
        ],
        "tables": [_sweep_table("Cost against g attributes", rows, names, G_ATTRIBUTE_COUNTS, "g attrs")],
        "targets": [],
        "plots": [
            _sweep_plot(
                "scaling_g.png",
                "Cost against the number of g attributes (Flask request)",
                rows,
                names,
                G_ATTRIBUTE_COUNTS,
                "g attributes",
            )
        ],
    }


def _push_request(app: Any, count: int) -> None:
    import flask

    from .. import _flask

    app.test_request_context("/fanout?n=4", headers={_flask.HEADER: "req-1"}).push()
    flask.g.request_id = "req-1"
    for index in range(max(0, count - 1)):
        setattr(flask.g, f"attribute_{index}", index)
    _flask.REQUEST_ID.set("req-1")


# -- one wrapped callable, many workers --------------------------------------------------------------------------


def _overlapping(task: Callable[[], Any]) -> Callable[..., Any]:
    """The task, with a short sleep in the middle so that concurrent runs of one wrapper overlap."""

    def run(*_args: Any) -> Any:
        first = task()
        time.sleep(0.0005)
        return first if task() == first else ("changed under the task",)

    return run


def reuse_across_workers(settings: Settings) -> dict[str, Any]:
    import flask
    from flaskthreads import ThreadPoolWithAppContextExecutor

    from ctxsnap.adapters import flask as ctxsnap_flask

    from .. import _flask

    tasks_per_run = 40 if settings.quick else 600
    rounds = 1 if settings.quick else 3
    # A correct run of 600 tasks takes well under a second even on one worker; the deadline only bounds the
    # runs whose workers died (Flask-Threads), so it is short.
    deadline = 5.0 if settings.quick else 8.0
    app, _ = _flask.make_app()
    executors = {}
    for workers in WORKER_COUNTS:
        from flask_executor import Executor

        app.config[f"W{workers}_EXECUTOR_MAX_WORKERS"] = workers
        executors[workers] = Executor(app, name=f"w{workers}")
    work = _overlapping(_flask.task)
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with _flask.request_context(app):
        shared_context = contextvars.copy_context()
        # Every alternative: (workers) -> a function that submits `count` tasks and returns their futures.
        wrappers: dict[str, Callable[[int], Callable[[int], list[concurrent.futures.Future[Any]]]]] = {}

        def reuse(wrapped: Callable[..., Any]) -> Callable[[int], Callable[[int], list[Any]]]:
            def for_workers(workers: int) -> Callable[[int], list[Any]]:
                pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
                pools.append(pool)
                return lambda count: [pool.submit(wrapped) for _ in range(count)]

            return for_workers

        pools: list[Any] = []
        wrappers["ctxsnap snap.wrap(task), reused"] = reuse(ctxsnap.capture().wrap(work))
        wrappers["ctxsnap_flask.copy_current_request_context, reused"] = reuse(
            ctxsnap_flask.copy_current_request_context(work)
        )
        wrappers["flask.copy_current_request_context, reused"] = reuse(flask.copy_current_request_context(work))
        wrappers["closure from DESIGN.md, reused"] = reuse(_flask.closure(work))
        wrappers["one copy_context(), ctx.run reused"] = reuse(functools.partial(shared_context.run, work))

        def executor_map(workers: int) -> Callable[[int], list[Any]]:
            # Flask-Executor's map wraps the function once and runs that wrapper in every worker (its #53).
            return lambda count: [_MapFuture(executors[workers].map(work, range(count), timeout=deadline), count)]

        def flask_threads(workers: int) -> Callable[[int], list[Any]]:
            pool = ThreadPoolWithAppContextExecutor(max_workers=workers)
            pools.append(pool)
            return lambda count: [pool.submit(work) for _ in range(count)]

        wrappers["Flask-Executor map"] = executor_map
        wrappers["Flask-Threads pool submit"] = flask_threads
        submitters = {(name, w): make(w) for name, make in wrappers.items() for w in WORKER_COUNTS}
        order = list(submitters)
        for round_index in range(rounds):
            shift = round_index % len(order)
            for key in order[shift:] + order[:shift]:
                results.setdefault(key, []).append(_run_batch(submitters[key], tasks_per_run, deadline))
    for pool in pools:
        # wait=False: a hung Flask-Threads worker is a finding, and must not hang the benchmark with it.
        if isinstance(pool, concurrent.futures.ThreadPoolExecutor):
            pool.shutdown(wait=False, cancel_futures=True)
        else:
            pool.shutdown(wait=False)
    for executor in executors.values():
        executor.shutdown(wait=False)
    return _reuse_report(results, list(wrappers), tasks_per_run, rounds)


class _MapFuture:
    """Flask-Executor's ``map`` result iterator, consumed like one future holding ``count`` results."""

    def __init__(self, iterator: Any, count: int) -> None:
        self.iterator = iterator
        self.count = count


def _run_batch(submit: Callable[[int], list[Any]], count: int, deadline: float) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "ok": 0,
        "wrong": 0,
        "errors": 0,
        "hung": 0,
        "first_error": "",
        "first_wrong": "",
        "seconds": 0.0,
    }
    started = time.perf_counter()
    try:
        futures = submit(count)
    except Exception as exc:
        outcome["errors"] = count
        outcome["first_error"] = describe_error(exc)
        return outcome
    from .. import _flask

    def record(value: Any = None, error: BaseException | None = None) -> None:
        if error is not None:
            outcome["errors"] += 1
            if not outcome["first_error"]:
                outcome["first_error"] = describe_error(error)
        elif value == _flask.EXPECTED:
            outcome["ok"] += 1
        else:
            outcome["wrong"] += 1
            if not outcome["first_wrong"]:
                outcome["first_wrong"] = (
                    f"saw {_flask.describe_seen(value)}"
                    if isinstance(value, tuple) and len(value) == 3
                    else f"saw {value!r}"
                )

    end = time.monotonic() + deadline
    for future in futures:
        if isinstance(future, _MapFuture):
            seen = 0
            try:
                for value in future.iterator:
                    record(value)
                    seen += 1
            except concurrent.futures.TimeoutError:
                outcome["hung"] += future.count - seen
            except Exception as exc:  # map stops at the first failure: the rest never report
                record(error=exc)
                outcome["errors"] += future.count - seen - 1
            continue
        try:
            record(future.result(timeout=max(0.0, end - time.monotonic())))
        except concurrent.futures.TimeoutError:
            outcome["hung"] += 1
            future.cancel()
        except Exception as exc:
            record(error=exc)
    outcome["seconds"] = time.perf_counter() - started
    return outcome


def _reuse_report(
    results: dict[tuple[str, int], list[dict[str, Any]]], names: list[str], count: int, rounds: int
) -> dict[str, Any]:
    import statistics

    body = []
    series: dict[str, list[float | None]] = {}
    data = []
    for name in names:
        series[name] = []
        for workers in WORKER_COUNTS:
            outcomes = results[(name, workers)]
            clean = [o for o in outcomes if o["ok"] == count]
            throughput = statistics.median(count / o["seconds"] for o in clean) if clean else None
            totals = {k: sum(o[k] for o in outcomes) for k in ("ok", "wrong", "errors", "hung")}
            # An error says more than a wrong value (which may be the first symptom of the same race).
            first = next((o["first_error"] for o in outcomes if o["first_error"]), "") or next(
                (o["first_wrong"] for o in outcomes if o["first_wrong"]), ""
            )
            series[name].append(throughput)
            total = count * len(outcomes)
            body.append(
                [
                    name,
                    str(workers),
                    "–" if throughput is None else f"{throughput:,.0f}",
                    f"{totals['ok']}/{total}",
                    str(totals["wrong"]),
                    str(totals["errors"]),
                    str(totals["hung"]),
                    first,
                ]
            )
            data.append(
                {"name": name, "workers": workers, "throughput": throughput, **totals, "first_error": first}
            )
    return {
        "title": "One wrapped callable reused across 1, 2, 4, 8 workers (full Flask snapshot)",
        "notes": [
            f"Each run submits {count:,} calls of one wrapper (made once, in a request) to a pool of N workers; "
            f"{rounds} interleaved round(s). The task reads g, a ContextVar and the request, sleeps 0.5 ms, reads "
            'again. "correct" counts tasks that saw all three unchanged; "wrong" ran but saw something else '
            '(for example an empty g); "errors" raised (Flask-Executor\'s map stops at the first one, the '
            'tasks after it count as errors too); "hung" did not finish within the deadline. '
            "Throughput is the median over rounds in which every task was correct."
        ],
        "tables": [
            {
                "title": "Reuse across workers",
                "headers": [
                    "alternative",
                    "workers",
                    "tasks/s",
                    "correct",
                    "wrong",
                    "errors",
                    "hung",
                    "first failure",
                ],
                "rows": body,
                "note": "",
                "data": data,
            }
        ],
        "targets": [],
        "plots": [
            {
                "file": "scaling_reuse.png",
                "kind": "lines",
                "title": "One wrapper reused across N workers: tasks/s when every task was correct",
                "xlabel": "workers",
                "ylabel": "tasks per second",
                "x": WORKER_COUNTS,
                "series": series,
            }
        ],
    }
