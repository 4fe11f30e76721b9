"""The wrappers ``instrument()`` puts on the standard library's thread hand-offs.

Each one reads the settings at every call (so ``uninstrument()`` turns a wrapper that cannot be taken out of
another tool's chain inert) and, when it captures, calls the same run path as ctxsnap's explicit entry points:
``ctxsnap.Thread``, ``ctxsnap.ThreadPoolExecutor`` and ``ctxsnap.adapters.asyncio``. Same entry, same semantics.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..._capture import run_task, runner
from ..threading import Thread, is_starting_in_snapshot, start_in_snapshot
from . import _state
from ._passthrough import in_another_process, is_pool_worker, runs_in_snapshot

if TYPE_CHECKING:
    import asyncio

_NO_KWARGS: Final[dict[str, Any]] = {}
_DETACHED: Final = _state.DETACHED


def _starts_clean(thread: threading.Thread, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    # Unusual start() arguments, a started thread, a ctxsnap.Thread (which captures itself) and pool workers all
    # get the standard library's start().
    return bool(
        args
        or kwargs
        or thread.ident is not None
        or isinstance(thread, Thread)
        or is_starting_in_snapshot(thread)
        or is_pool_worker(thread)
    )


def wrap_thread_start(call: Callable[..., Any]) -> Callable[..., Any]:
    def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
        settings = _state.active("threads")
        if settings is None or _starts_clean(self, args, kwargs):
            return call(self, *args, **kwargs)
        start_in_snapshot(self, settings.capture(), functools.partial(call, self))
        return None

    return start


def wrap_submit(call: Callable[..., Any]) -> Callable[..., Any]:
    def submit(self: concurrent.futures.Executor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        # _state.active("executors") inlined: this wrapper is on every submit of the process (issue 15 sets its
        # cost at most 1.2x the unpatched call).
        settings = _state.current
        if settings is None or not settings.executors or _DETACHED.get() or not runs_in_snapshot(fn):
            return call(self, fn, *args, **kwargs)
        # As ctxsnap.ThreadPoolExecutor.submit: the worker runs the task in what was captured, with its arguments.
        return call(self, run_task, settings.capture.for_task(), fn, args, kwargs)

    return submit


def wrap_map(call: Callable[..., Any]) -> Callable[..., Any]:
    def map(self: concurrent.futures.Executor, fn: Any, *iterables: Any, **kwargs: Any) -> Any:
        settings = _state.active("executors")
        if settings is None or not runs_in_snapshot(fn):
            return call(self, fn, *iterables, **kwargs)
        # As ctxsnap.ThreadPoolExecutor.map: one capture for the call, a fresh copy per item; the per-item
        # submit() sees a wrapped callable and passes it through.
        return call(self, settings.capture().wrap(fn), *iterables, **kwargs)

    return map


def wrap_run_in_executor(call: Callable[..., Any]) -> Callable[..., Any]:
    def run_in_executor(self: asyncio.AbstractEventLoop, executor: Any, func: Any, *args: Any) -> Any:
        settings = _state.active("asyncio")
        if settings is None or not runs_in_snapshot(func) or in_another_process(executor):
            return call(self, executor, func, *args)
        # As ctxsnap.adapters.asyncio.run_in_executor: captured at this call, in the calling task.
        return call(self, executor, runner(settings.capture()), func, args, _NO_KWARGS)

    return run_in_executor


def wrap_to_thread(call: Callable[..., Any]) -> Callable[..., Any]:
    import asyncio

    async def to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        settings = _state.active("asyncio")
        if settings is None or not runs_in_snapshot(func):
            return await call(func, *args, **kwargs)
        # As ctxsnap.adapters.asyncio.to_thread: the standard one would hand the worker one plain copy of the
        # caller's context, in which Flask's and Quart's app context (and so g) is the parent's own object.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, runner(settings.capture()), func, args, kwargs)

    return to_thread
