"""Which calls an instrumented hand-off leaves exactly as the standard library would run them.

Instrumentation patches code the user does not own, so it must never change what that code already decided:
work that chose its context, input ctxsnap would refuse, threads a pool starts for itself, and process pools.
docs/instrument.md has the user-facing rules; each rule here has a test in every cell of the matrix.
"""

from __future__ import annotations

import concurrent.futures.thread
import contextvars
import functools
import sys
import threading
from types import FunctionType
from typing import Final

from ..._capture import is_wrapped
from ..._checks import ASYNC_FLAGS, check_callable
from ..._snapshot import Snapshot
from ._state import ABSENT

#: The function every ``concurrent.futures`` worker thread runs (the asyncio default executor's too).
_FUTURES_WORKER: Final = getattr(concurrent.futures.thread, "_worker", None)


def carries_context(fn: object) -> bool:
    """Whether ``fn`` already runs in a context someone chose: a ctxsnap wrapper, a snapshot's or a Context's run.

    Quart's ``run_sync`` hands ``copy_context().run`` to ``loop.run_in_executor``: its sync handlers share the
    request's ``g`` on purpose, and keep doing so.
    """
    if is_wrapped(fn):
        return True
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, (Snapshot, contextvars.Context)):
        return True
    if isinstance(fn, functools.partial):
        return carries_context(fn.func)
    return False


def runs_in_snapshot(fn: object) -> bool:
    """Whether ctxsnap would run ``fn`` at all: a sync callable that carries no context of its own yet.

    Input the standard library accepts and ctxsnap refuses (an async callable, a non-callable) passes through:
    instrumentation never adds an error to code it does not own.
    """
    if type(fn) is FunctionType:  # the common case: check_callable() and carries_context() in short
        return not fn.__code__.co_flags & ASYNC_FLAGS and not is_wrapped(fn)
    if carries_context(fn):
        return False
    try:
        check_callable("instrument", fn)
    except TypeError:
        return False
    return True


def is_pool_worker(thread: threading.Thread) -> bool:
    """Whether a pool starts ``thread`` for itself: it must start clean, whatever context the pool's caller has.

    Capturing there would pin the request that happened to start the worker for the worker's life. Feature-
    detected, module by module, from what is already loaded.
    """
    target = getattr(thread, "_target", None)
    return (
        target is _FUTURES_WORKER
        or _is_asyncio_executor_shutdown(target)
        or _is_anyio_worker(thread)
        or _is_trio_worker(target)
    )


def _is_asyncio_executor_shutdown(target: object) -> bool:
    # The thread asyncio.run() starts to shut the default executor down: part of the pool. A provider failing
    # there would leave asyncio.run() waiting for that shutdown forever.
    loop_class = getattr(sys.modules.get("asyncio.base_events"), "BaseEventLoop", None)
    return getattr(target, "__func__", None) is getattr(loop_class, "_do_shutdown", ABSENT)


def _is_anyio_worker(thread: threading.Thread) -> bool:
    worker = getattr(sys.modules.get("anyio._backends._asyncio"), "WorkerThread", None)
    return isinstance(worker, type) and isinstance(thread, worker)


def _is_trio_worker(target: object) -> bool:
    worker = getattr(sys.modules.get("trio._core._thread_cache"), "WorkerThread", None)
    return isinstance(worker, type) and isinstance(getattr(target, "__self__", None), worker)


def in_another_process(executor: object) -> bool:
    """Whether ``executor`` runs work in another process: a snapshot holds live objects of this one."""
    process = sys.modules.get("concurrent.futures.process")
    return process is not None and isinstance(executor, process.ProcessPoolExecutor)
