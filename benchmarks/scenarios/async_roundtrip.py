"""Async round trip: ``await`` one sync task in a worker thread from a coroutine, pinned to one CPU.

The async side of the round trip: asyncio's and anyio's thread helpers, Quart's ``run_sync``, and ctxsnap's
counterparts, each awaited from inside a running task. A batch is one coroutine that awaits the helper
``number`` times and times itself, so starting the loop is not part of the measurement. The batch task runs
in a fixed ``contextvars.Context`` (``create_task(context=...)``) that holds the ContextVars, and for Quart the
request context, as a view's task would.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._harness import Alternative, Batch, Settings, compare, pin_if_allowed
from .._report import find, fmt_ratio, target, timing_table
from .inline import VARIABLES, _read_one, _set_variables

Helper = Callable[[], Awaitable[Any]]

_WHY_ASYNC = "capture (registry, Context copy) and the per-run copy are paid on top of the hop"


def async_batch(loop: asyncio.AbstractEventLoop, context: contextvars.Context, helper: Helper) -> Batch:
    """A batch runner that awaits ``helper()`` ``number`` times inside a task running in ``context``."""

    async def body(number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            await helper()
        return time.perf_counter() - start

    def batch(number: int) -> float:
        return loop.run_until_complete(loop.create_task(body(number), context=context))

    return batch


def run_once(loop: asyncio.AbstractEventLoop, context: contextvars.Context, helper: Helper) -> Any:
    async def once() -> Any:
        return await helper()

    return loop.run_until_complete(loop.create_task(once(), context=context))


def _alternatives(
    loop: asyncio.AbstractEventLoop,
    context: contextvars.Context,
    helpers: dict[str, tuple[Callable[[], Helper], str]],
    describe: Callable[[Any], str],
) -> list[Alternative]:
    """Build each helper (an import may fail: that becomes the row's error) and note what its worker saw."""
    alternatives = []
    for name, (make, note) in helpers.items():
        try:
            helper = make()
            seen = describe(run_once(loop, context, helper))
        except Exception as exc:
            error = exc

            def failing(number: int, error: Exception = error) -> float:
                raise error

            alternatives.append(Alternative(name, failing, note=note))
            continue
        alternatives.append(
            Alternative(name, async_batch(loop, context, helper), note=f"{note}; sees {seen}".lstrip("; "))
        )
    return alternatives


def asyncio_and_anyio(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    import anyio.to_thread

    loop = asyncio.new_event_loop()
    context = contextvars.Context()
    context.run(_set_variables)
    task = _read_one
    expected = context.run(VARIABLES[0].get)

    def ctxsnap_to_thread() -> Helper:
        from ctxsnap.adapters.asyncio import to_thread

        return lambda: to_thread(task)

    def ctxsnap_anyio() -> Helper:
        from ctxsnap.adapters.anyio import run_sync

        return lambda: run_sync(task)

    helpers: dict[str, tuple[Callable[[], Helper], str]] = {
        "loop.run_in_executor(None, task)": (lambda: lambda: loop.run_in_executor(None, task), "nothing carried"),
        "asyncio.to_thread": (lambda: lambda: asyncio.to_thread(task), "one shared copy of the context"),
        "ctxsnap.adapters.asyncio.to_thread": (ctxsnap_to_thread, ""),
        "anyio.to_thread.run_sync": (lambda: lambda: anyio.to_thread.run_sync(task), "anyio's own thread pool"),
        "ctxsnap.adapters.anyio.run_sync": (ctxsnap_anyio, "anyio's own thread pool"),
    }
    try:
        alternatives = _alternatives(
            loop, context, helpers, lambda seen: "the variable" if seen == expected else "nothing"
        )
        rows = compare(alternatives, reference="loop.run_in_executor(None, task)", settings=settings)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    to_thread = find(rows, "ctxsnap.adapters.asyncio.to_thread")
    anyio_run = find(rows, "ctxsnap.adapters.anyio.run_sync")
    return {
        "title": "Async round trip, contextvars only (asyncio loop)",
        "notes": [
            f"Process {pinning}. Each operation is one `await helper(task)` from a running task; 10 ContextVars "
            "set. Against asyncio.to_thread in the same rounds, ctxsnap's asyncio to_thread is "
            f"{fmt_ratio(_between(rows, to_thread.name, 'asyncio.to_thread'))}. anyio runs its own thread pool, "
            "so "
            "ctxsnap's anyio run_sync is compared with anyio.to_thread.run_sync, not with run_in_executor."
        ],
        "tables": [timing_table("await + result, per task", rows, "loop.run_in_executor(None, task)")],
        "targets": [
            target(
                "async round trip ≤ 1.1× a bare submit (ctxsnap asyncio to_thread vs run_in_executor)",
                1.1,
                to_thread.ratio,
                why_missed=_WHY_ASYNC,
            ),
            target(
                "async round trip ≤ 1.1× a bare submit (ctxsnap anyio run_sync vs anyio.to_thread.run_sync, "
                "anyio's own pool)",
                1.1,
                _between(rows, anyio_run.name, "anyio.to_thread.run_sync"),
                why_missed=_WHY_ASYNC,
            ),
        ],
        "plots": [],
    }


def _between(rows: list[Any], name: str, other: str) -> float | None:
    from .._harness import ratio_between

    return ratio_between(find(rows, name), find(rows, other))


def quart_request(settings: Settings) -> dict[str, Any]:
    pinning = pin_if_allowed(settings)
    from .. import _quart

    loop = asyncio.new_event_loop()
    app = _quart.make_app()
    context = contextvars.Context()
    request_context = loop.run_until_complete(loop.create_task(_quart.enter_request(app), context=context))
    task = _quart.task

    def ctxsnap_quart() -> Helper:
        from ctxsnap.adapters.quart import to_thread

        return lambda: to_thread(task)

    def ctxsnap_asyncio() -> Helper:
        from ctxsnap.adapters.asyncio import to_thread

        return lambda: to_thread(task)

    def quart_run_sync() -> Helper:
        from quart.utils import run_sync

        wrapped = run_sync(task)
        return lambda: wrapped()

    helpers: dict[str, tuple[Callable[[], Helper], str]] = {
        "loop.run_in_executor(None, task)": (lambda: lambda: loop.run_in_executor(None, task), "nothing carried"),
        "quart.utils.run_sync(task)()": (quart_run_sync, "shares the request's g object"),
        "asyncio.to_thread": (lambda: lambda: asyncio.to_thread(task), "shares the request's g object"),
        "ctxsnap.adapters.quart.to_thread": (ctxsnap_quart, "private copy of g"),
        "ctxsnap.adapters.asyncio.to_thread": (ctxsnap_asyncio, "private copy of g"),
    }
    try:
        alternatives = _alternatives(loop, context, helpers, _quart.describe_seen)
        rows = compare(alternatives, reference="loop.run_in_executor(None, task)", settings=settings)
    finally:
        loop.run_until_complete(loop.create_task(_quart.exit_request(request_context), context=context))
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    quart_to_thread = find(rows, "ctxsnap.adapters.quart.to_thread")
    return {
        "title": "Async round trip, Quart request context",
        "notes": [
            f"Process {pinning}. Inside a Quart test request with 10 g attributes; each operation is one "
            '`await helper(task)`; "sees" is what the worker\'s task saw (g, the ContextVar, the request). '
            "ctxsnap's Quart to_thread against quart.utils.run_sync in the same rounds: "
            f"{fmt_ratio(_between(rows, quart_to_thread.name, 'quart.utils.run_sync(task)()'))}."
        ],
        "tables": [timing_table("await + result, per task", rows, "loop.run_in_executor(None, task)")],
        "targets": [
            target(
                "async round trip ≤ 1.1× a bare submit (ctxsnap Quart to_thread vs run_in_executor, "
                "full Quart snapshot)",
                1.1,
                quart_to_thread.ratio,
                why_missed=_WHY_ASYNC + "; a full Quart snapshot also forks the app context (a private g) per run",
            ),
        ],
        "plots": [
            {
                "file": "roundtrip_quart.png",
                "kind": "bars",
                "title": "Async round trip inside a Quart request (median µs per task)",
                "ylabel": "µs per task (lower is better)",
                "series": {r.name: (r.median * 1e6 if r.median is not None else None) for r in rows},
            }
        ],
    }
