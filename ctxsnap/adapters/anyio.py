"""``run_sync``: ``anyio.to_thread.run_sync`` that applies the caller's snapshot, on asyncio and on trio.

anyio (and trio underneath it) already runs the function in a copy of the caller's contextvars, but one plain
copy with no provider step: a Quart or Flask app context travels as the parent's own object, so ``g`` is shared
and the worker's writes leak back. This helper captures in the calling task and runs the function in a fresh
copy of the snapshot. ``limiter`` and ``abandon_on_cancel`` mean exactly what they mean to anyio, which
introduced ``abandon_on_cancel`` in 4.1 (renaming 4.0's ``cancellable``): ctxsnap needs anyio >= 4.1.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final, TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread

from .._snapshot import Snapshot, capture, is_wrapped

__all__ = ["run_sync"]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


def _async_library_var() -> ContextVar[str | None] | None:
    try:
        import sniffio
    except ImportError:  # anyio works without sniffio (it then only knows asyncio)
        return None
    var: ContextVar[str | None] = sniffio.current_async_library_cvar
    return var


#: sniffio's "which async library is running here" ContextVar. anyio and trio clear it in their worker threads,
#: since no event loop runs there; a snapshot taken inside anyio code (from_thread, for instance) would carry
#: "asyncio" back in, and code in the worker would wrongly believe it runs on the loop. The child clears it again.
_ASYNC_LIBRARY: Final = _async_library_var()


def _call_off_loop(func: Callable[..., R], args: tuple[Any, ...]) -> R:
    if _ASYNC_LIBRARY is not None:
        _ASYNC_LIBRARY.set(None)  # in the run's private copy of the context; gone after the run
    return func(*args)


async def run_sync(
    func: Callable[[Unpack[Ts]], R],
    *args: Unpack[Ts],
    limiter: anyio.CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> R:
    """Run ``func(*args)`` in a worker thread inside the caller's snapshot; await the result.

    Works under anyio on asyncio and on trio. ``limiter`` caps the number of concurrent worker threads (the
    default limiter when ``None``). With ``abandon_on_cancel=True`` a cancelled caller returns at once and the
    thread finishes on its own; either way the worker's own context is left exactly as it was.
    """
    try:
        anyio.get_current_task()
    except RuntimeError:
        # Recent anyio raises NoEventLoopError, older 4.x sniffio's AsyncLibraryNotFoundError: both are
        # RuntimeErrors, neither says what to do instead.
        raise RuntimeError(
            "ctxsnap.adapters.anyio.run_sync() needs a running event loop (asyncio or trio): await it inside "
            "'async def'. From sync code use ctxsnap.wrap(fn) or ctxsnap.ThreadPoolExecutor."
        ) from None
    if limiter is not None and not isinstance(limiter, anyio.CapacityLimiter):
        # anyio itself only fails later, with "'int' object does not support the asynchronous context manager
        # protocol", which names neither the argument nor the fix.
        raise TypeError(
            f"ctxsnap.adapters.anyio.run_sync(limiter=...) takes an anyio.CapacityLimiter or None, got "
            f"{type(limiter).__name__} {limiter!r}; pass anyio.CapacityLimiter(n) to allow n threads at a time"
        )
    if is_wrapped(func):
        # It keeps the snapshot the user chose for it, as ContextExecutor does.
        return await anyio.to_thread.run_sync(func, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel)
    handed, handed_args = in_snapshot(capture(), func, args)
    return await anyio.to_thread.run_sync(
        handed, *handed_args, limiter=limiter, abandon_on_cancel=abandon_on_cancel
    )


def in_snapshot(
    snapshot: Snapshot, func: Callable[..., R], args: tuple[Any, ...]
) -> tuple[Callable[..., R], tuple[Any, ...]]:
    """What to hand ``anyio.to_thread.run_sync`` so that ``func(*args)`` runs inside ``snapshot``.

    Shared by :func:`run_sync` and ``ctxsnap.instrument()``, so that both follow one semantics.
    """
    if _ASYNC_LIBRARY is not None and _ASYNC_LIBRARY.get(None) is not None:
        snapshot.wrap(func)  # the same argument checks, with the same messages, as the common path
        return snapshot.run, (_call_off_loop, func, args)
    return snapshot.wrap(func), args
