"""``run_sync``: ``anyio.to_thread.run_sync`` that applies the caller's snapshot, on asyncio and on trio.

anyio (and trio underneath it) already runs the function in a copy of the caller's contextvars, but one plain
copy with no provider step: a Quart or Flask app context travels as the parent's own object, so ``g`` is shared
and the worker's writes leak back. This helper captures in the calling task and runs the function in a fresh
copy of the snapshot. ``limiter``, ``abandon_on_cancel`` and the deprecated ``cancellable`` mean exactly what
they mean to anyio, which introduced ``abandon_on_cancel`` in 4.1 (renaming 4.0's ``cancellable``, still
accepted with a DeprecationWarning): ctxsnap needs anyio >= 4.1. Since ``run_sync`` passes no keyword arguments
to the function, ``include``/``exclude`` sit beside ``limiter``, as in ``ctxsnap.capture``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final, TypeVar, TypeVarTuple, Unpack
from warnings import warn

from .._extras import framework_import

with framework_import("anyio", extra="anyio", importer=__name__):
    import anyio
    import anyio.to_thread

from .._capture import capture, is_wrapped
from .._checks import refuse_selection_for_wrapped
from .._planning import Selection
from .._snapshot import Snapshot

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
    *args: *Ts,
    abandon_on_cancel: bool = False,
    cancellable: bool | None = None,
    limiter: anyio.CapacityLimiter | None = None,
    include: Selection = None,
    exclude: Selection = None,
) -> R:
    """Run ``func(*args)`` in a worker thread inside the caller's snapshot; await the result.

    Works under anyio on asyncio and on trio, and takes every keyword ``anyio.to_thread.run_sync`` takes, with
    the same meaning.

    :param func: a sync callable
    :param args: positional arguments for ``func``
    :param abandon_on_cancel: ``True`` to return at once when the caller is cancelled, leaving the thread to
        finish on its own; ``False`` to wait for the thread. Either way the worker's own context is left as it was
    :param cancellable: deprecated alias of ``abandon_on_cancel`` (anyio 4.1); overrides it when both are given
    :param limiter: caps the number of concurrent worker threads (anyio's default limiter when ``None``)
    :param include: what the snapshot carries, as for :func:`ctxsnap.capture`
    :param exclude: what the snapshot leaves out, as for :func:`ctxsnap.capture`
    :raises RuntimeError: if no asyncio or trio event loop runs in this thread
    :return: what ``func`` returned
    """
    if cancellable is not None:
        # anyio's own shim, word for word, so that code (and anyio's tests) checking for it see the same warning.
        abandon_on_cancel = cancellable
        warn(
            "The `cancellable=` keyword argument to `anyio.to_thread.run_sync` is "
            "deprecated since AnyIO 4.1.0; use `abandon_on_cancel=` instead",
            DeprecationWarning,
            stacklevel=2,
        )
    try:
        anyio.get_current_task()
    except RuntimeError:
        # Recent anyio raises NoEventLoopError, older 4.x sniffio's AsyncLibraryNotFoundError: both are
        # RuntimeErrors, neither says what to do instead.
        raise RuntimeError(
            "ctxsnap.adapters.anyio.run_sync() needs a running event loop (asyncio or trio). Await it inside "
            "'async def'; from sync code, use ctxsnap.wrap(fn) or ctxsnap.ThreadPoolExecutor."
        ) from None
    if limiter is not None and not isinstance(limiter, anyio.CapacityLimiter):
        # anyio itself only fails later, with "'int' object does not support the asynchronous context manager
        # protocol", which names neither the argument nor the fix.
        raise TypeError(
            f"ctxsnap.adapters.anyio.run_sync(limiter=...) takes an anyio.CapacityLimiter or None, got "
            f"{type(limiter).__name__} {limiter!r}. Pass anyio.CapacityLimiter(n) to allow n threads at a time."
        )
    if is_wrapped(func):
        if include is not None or exclude is not None:
            refuse_selection_for_wrapped("run_sync")
        # It keeps the snapshot the user chose for it, as ContextExecutor does.
        return await anyio.to_thread.run_sync(func, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel)
    handed, handed_args = in_snapshot(capture(include=include, exclude=exclude), func, args)
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
