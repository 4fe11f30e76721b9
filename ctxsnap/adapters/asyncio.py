"""asyncio counterparts of ``asyncio.to_thread`` and ``loop.run_in_executor`` that apply a snapshot.

``asyncio.to_thread`` already copies contextvars, but one shared copy per call with no provider step: a Flask or
Quart app context travels as the parent's own object, ``g`` included. ``loop.run_in_executor`` copies nothing.
These helpers capture in the calling task and run the function in a fresh copy of the snapshot. A callable
that already came from ``Snapshot.wrap`` runs in the snapshot it carries, as with ``ctxsnap.ContextExecutor``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Final, ParamSpec, TypeVar, TypeVarTuple, Unpack

from .._capture import capture, is_wrapped, runner
from .._checks import check_callable, check_executor, refuse_selection_for_wrapped
from .._planning import Selection

__all__ = ["run_in_executor", "to_thread"]

P = ParamSpec("P")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


def _running_loop(helper: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"ctxsnap.adapters.asyncio.{helper}() needs a running event loop. Await it inside 'async def'; "
            "from sync code, use snapshot.run() or ctxsnap.ThreadPoolExecutor."
        ) from None


async def to_thread(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``func(*args, **kwargs)`` in the loop's default executor, inside the caller's snapshot.

    Every keyword argument is ``func``'s, as with ``asyncio.to_thread``; to choose what the snapshot carries,
    pass ``ctxsnap.wrap(func, include=..., exclude=...)``, which runs as it is, in the snapshot it was wrapped
    with.
    """
    loop = _running_loop("to_thread")
    if is_wrapped(func):
        # It keeps the snapshot the user chose for it, as ContextExecutor does.
        return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))
    check_callable("to_thread", func)
    # The worker calls the snapshot's run directly: no functools.wraps wrapper and no partial per call.
    result: R = await loop.run_in_executor(None, runner(capture()), func, args, kwargs)
    return result


def run_in_executor(
    executor: Executor | None,
    func: Callable[[Unpack[Ts]], R],
    /,
    *args: *Ts,
    include: Selection = None,
    exclude: Selection = None,
) -> asyncio.Future[R]:
    """``loop.run_in_executor(executor, func, *args)`` for the running loop, inside the caller's snapshot.

    The capture happens at this call, not when the future is awaited. ``executor=None`` means the loop's
    default executor. ``include``/``exclude`` choose what the snapshot carries, as for :func:`ctxsnap.capture`
    (``loop.run_in_executor`` passes no keyword arguments to ``func``, so they cannot collide with its own).
    """
    loop = _running_loop("run_in_executor")
    if executor is not None:
        # loop.run_in_executor would fail on these only inside submit (AttributeError) or, for a process pool,
        # with a PicklingError about some object deep inside the snapshot.
        check_executor(
            "run_in_executor", executor, "run_in_executor({}, fn)", none_means="the loop's default executor"
        )
    if is_wrapped(func):
        if include is not None or exclude is not None:
            refuse_selection_for_wrapped("run_in_executor")
        return loop.run_in_executor(executor, func, *args)
    check_callable("run_in_executor", func, "executor, ")
    # As in to_thread: the worker calls the snapshot's run with the function and its arguments.
    snapshot = capture(include=include, exclude=exclude)
    return loop.run_in_executor(executor, runner(snapshot), func, args, _NO_KWARGS)


#: run_in_executor passes no keyword arguments; the snapshot's run only reads this mapping.
_NO_KWARGS: Final[dict[str, Any]] = {}
