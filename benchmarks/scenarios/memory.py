"""Memory: what a live snapshot holds, and whether 100,000 tasks leave anything behind.

Measured with ``tracemalloc`` (Python allocations, exact, independent of the allocator's arenas):

* bytes per live object: build N snapshots (or competitors' wrappers) into a list allocated beforehand, and
  divide the traced growth by N;
* growth over many tasks: warm a pool up, note the traced memory, run 100,000 tasks through it in chunks,
  collect garbage, and compare. A snapshot kept alive per task (in a worker's context, a registry, a
  ``Future``) would show up as at least its own size per task.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import ctxsnap

from .._harness import Settings
from .._report import fmt_bytes, target
from .inline import _read_one, _set_variables

CHUNK = 1_000


def _bytes_per_object(make: Callable[[], Any], count: int) -> float:
    # Warm up first: the first capture in a process loads the framework adapters and caches a plan.
    for _ in range(100):
        make()
    keep: list[Any] = [None] * count
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for index in range(count):
        keep[index] = make()
    after = tracemalloc.get_traced_memory()[0]
    del keep
    gc.collect()
    return (after - before) / count


def _growth_over_tasks(pool: concurrent.futures.Executor, task: Callable[[], Any], tasks: int) -> dict[str, Any]:
    for future in [pool.submit(task) for _ in range(CHUNK)]:
        future.result()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    done = 0
    while done < tasks:
        batch = [pool.submit(task) for _ in range(min(CHUNK, tasks - done))]
        for future in batch:
            future.result()
        done += len(batch)
        del batch
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    return {
        "before": before,
        "after": after,
        "growth": after - before,
        "peak_above_start": peak - before,
        "tasks": tasks,
    }


def _bytes_per_queued_task(
    pool_type: type[concurrent.futures.ThreadPoolExecutor], task: Callable[[], Any], count: int
) -> float:
    """Traced growth per task waiting in a pool's queue: what a backlog of submitted tasks costs.

    The one worker is held on an event while ``count`` tasks are submitted, so every task (its work item,
    Future and, for ctxsnap, its snapshot) is alive at the reading.
    """
    import threading

    release = threading.Event()
    with pool_type(max_workers=1) as pool:
        for future in [pool.submit(task) for _ in range(100)]:
            future.result()
        blocker = pool.submit(release.wait)
        futures: list[Any] = [None] * count
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for index in range(count):
            futures[index] = pool.submit(task)
        after = tracemalloc.get_traced_memory()[0]
        release.set()
        blocker.result()
        for future in futures:
            future.result()
        del futures
    return (after - before) / count


def memory(settings: Settings) -> dict[str, Any]:
    from .. import _flask

    objects = 200 if settings.quick else 10_000
    tasks = 2_000 if settings.quick else 100_000
    tracemalloc.start()
    app, executor = _flask.make_app()
    task = _flask.task

    contextvars_context = contextvars.Context()
    contextvars_context.run(_set_variables)
    per_object: dict[str, float] = {}
    makers: dict[str, Callable[[], Any]] = {
        "raw copy_context() (contextvars only)": lambda: contextvars.copy_context(),
        "ctxsnap.capture() (contextvars only)": ctxsnap.capture,
        "ctxsnap.wrap(task) (contextvars only)": lambda: ctxsnap.wrap(_read_one),
    }
    for name, make in makers.items():
        per_object[name] = contextvars_context.run(_bytes_per_object, make, objects)
    with _flask.request_context(app):
        request_makers: dict[str, Callable[[], Any]] = {
            "raw copy_context() (Flask request)": lambda: contextvars.copy_context(),
            "ctxsnap.capture() (Flask request)": ctxsnap.capture,
            "ctxsnap.wrap(task) (Flask request)": lambda: ctxsnap.wrap(task),
            "closure from DESIGN.md (Flask request)": lambda: _flask.closure(task),
            "flask.copy_current_request_context(task)": lambda: __import__("flask").copy_current_request_context(
                task
            ),
            "Flask-Executor wrapper (Flask request)": lambda: executor._prepare_fn(task),
        }
        for name, make in request_makers.items():
            per_object[name] = _bytes_per_object(make, objects)

        growth: dict[str, dict[str, Any]] = {}
        for name, pool_type in {
            "bare ThreadPoolExecutor (Flask request)": concurrent.futures.ThreadPoolExecutor,
            "ctxsnap.ThreadPoolExecutor (Flask request)": ctxsnap.ThreadPoolExecutor,
        }.items():
            with pool_type(max_workers=4) as pool:
                growth[name] = _growth_over_tasks(pool, task, tasks)
        queued: dict[str, float] = {
            name: _bytes_per_queued_task(pool_type, task, objects)
            for name, pool_type in {
                "bare ThreadPoolExecutor (Flask request)": concurrent.futures.ThreadPoolExecutor,
                "ctxsnap.ThreadPoolExecutor (Flask request)": ctxsnap.ThreadPoolExecutor,
            }.items()
        }
    with ctxsnap.ThreadPoolExecutor(max_workers=4) as pool:
        growth["ctxsnap.ThreadPoolExecutor (contextvars only)"] = contextvars_context.run(
            _growth_over_tasks, pool, _read_one, tasks
        )
    for name, pool_type in {
        "bare ThreadPoolExecutor (contextvars only)": concurrent.futures.ThreadPoolExecutor,
        "ctxsnap.ThreadPoolExecutor (contextvars only)": ctxsnap.ThreadPoolExecutor,
    }.items():
        queued[name] = contextvars_context.run(_bytes_per_queued_task, pool_type, _read_one, objects)
    executor.shutdown(wait=True)
    tracemalloc.stop()

    worst = max(growth[name]["growth"] / tasks for name in growth if name.startswith("ctxsnap"))
    return {
        "title": f"Memory (tracemalloc): bytes per live snapshot, and growth over {tasks:,} tasks",
        "notes": [
            f"Bytes per live object: {objects:,} objects kept alive, traced growth divided by their number "
            "(contextvars only: 10 ContextVars set; Flask: a request with 10 g attributes). Growth over tasks: "
            f"4-worker pool, {CHUNK:,}-task warm-up, then {tasks:,} tasks in chunks of {CHUNK:,}, gc before "
            "each reading."
        ],
        "tables": [
            {
                "title": "Bytes per live object",
                "headers": ["object", "bytes each"],
                "rows": [[name, fmt_bytes(value)] for name, value in per_object.items()],
                "note": "",
                "data": per_object,
            },
            {
                "title": "Bytes retained per queued task (the worker held, every task waiting in the queue)",
                "headers": ["pool", "bytes per queued task", "ctxsnap adds"],
                "rows": [
                    [
                        name,
                        fmt_bytes(value),
                        fmt_bytes(value - queued[name.replace("ctxsnap.", "bare ")])
                        if name.startswith("ctxsnap")
                        else "",
                    ]
                    for name, value in queued.items()
                ],
                "note": f"{objects:,} tasks queued behind a blocked worker; traced growth divided by the count.",
                "data": queued,
            },
            {
                "title": f"Traced memory before and after {tasks:,} tasks",
                "headers": ["pool", "before", "after", "growth", "growth per task", "peak above start"],
                "rows": [
                    [
                        name,
                        fmt_bytes(g["before"]),
                        fmt_bytes(g["after"]),
                        fmt_bytes(g["growth"]),
                        f"{g['growth'] / tasks:.3f} B",
                        fmt_bytes(g["peak_above_start"]),
                    ]
                    for name, g in growth.items()
                ],
                "note": "",
                "data": growth,
            },
        ],
        "targets": [
            target(
                f"memory flat over {tasks:,} tasks (growth per task, worst ctxsnap pool)",
                1.0,
                worst,
                unit="B/task",
                why_missed="something is kept per task; compare with the bare pool's growth in the table",
            ),
        ],
        "plots": [
            {
                "file": "memory_per_snapshot.png",
                "kind": "bars",
                "title": "Bytes per live snapshot or wrapper (tracemalloc)",
                "ylabel": "bytes each (lower is better)",
                "series": per_object,
                "format": "{:.0f}",
            }
        ],
    }
