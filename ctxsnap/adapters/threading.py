"""``ctxsnap.Thread``: a ``threading.Thread`` that captures the context when it is started.

Capturing at ``start()`` rather than at construction matters: a thread object built at import time or in a
pool set-up (Flask-Threads captures at pool construction) would otherwise carry whatever context happened to be
current then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import MethodType
from typing import Any, Final

from .._capture import PlannedCapture
from .._checks import check_callable
from .._planning import Selection
from .._snapshot import Snapshot

__all__ = ["Thread"]


class Thread(threading.Thread):
    """Drop-in for :class:`threading.Thread` whose ``run()`` executes inside a snapshot taken at ``start()``.

    Subclasses that override ``run()`` are covered too. ``include``/``exclude`` are passed to
    :func:`ctxsnap.capture`.
    """

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
        include: Selection = None,
        exclude: Selection = None,
    ) -> None:
        # threading.Thread stores all three unchecked, and the mistake shows only inside the new thread, as a
        # traceback in threading.excepthook (an async target only as "coroutine was never awaited").
        # target=None stays allowed: a subclass overriding run() needs none.
        if target is not None:
            check_callable("Thread", target, "target=")
        _check_arguments(args, kwargs)
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        self._ctxsnap_capture = PlannedCapture(include, exclude)

    def start(self) -> None:
        if self.ident is not None:
            super().start()  # raises "threads can only be started once" before anything is captured or replaced
        start_in_snapshot(self, self._ctxsnap_capture(), super().start)


def start_in_snapshot(thread: threading.Thread, snapshot: Snapshot, start: Callable[[], None]) -> None:
    """Start ``thread`` by calling ``start()`` so that its ``run()`` executes inside ``snapshot``.

    Shared by :class:`Thread` and ``ctxsnap.instrument()``. The replacement ``run`` is a bound method of the
    thread, not a closure: Sentry's ThreadingIntegration rewraps ``run`` as ``run.__func__`` and calls it with the
    thread as its only argument, which a closure taking no argument fails on.
    """
    previous = thread.__dict__.get("run", _NO_INSTANCE_RUN)
    thread.__dict__[_PENDING] = (snapshot, thread.run, previous)
    thread.run = MethodType(_run_in_snapshot, thread)  # type: ignore[method-assign]
    try:
        start()
    except BaseException:
        _forget(thread, previous)
        raise


def _run_in_snapshot(thread: threading.Thread) -> None:
    snapshot, run, previous = thread.__dict__[_PENDING]
    try:
        snapshot.run(run)
    finally:
        # Drop the snapshot with the run: a finished Thread object kept around must not keep the request (and
        # everything it references) alive.
        _forget(thread, previous)


def _forget(thread: threading.Thread, previous: object) -> None:
    thread.__dict__.pop(_PENDING, None)
    if previous is _NO_INSTANCE_RUN:
        thread.__dict__.pop("run", None)
    else:
        thread.__dict__["run"] = previous


def is_starting_in_snapshot(thread: threading.Thread) -> bool:
    """Whether ``start_in_snapshot`` is already handling this thread (an outer ctxsnap start captured)."""
    return _PENDING in thread.__dict__


_PENDING: Final = "_ctxsnap_pending_run"
_NO_INSTANCE_RUN: Final = object()


def _check_arguments(args: Iterable[Any], kwargs: Mapping[str, Any] | None) -> None:
    # iter() does not consume: a generator passed as args is still whole when the thread unpacks it.
    try:
        iter(args)
    except TypeError:
        raise TypeError(
            f"Thread(args=...) takes an iterable of positional arguments, got {type(args).__name__} {args!r:.60}. "
            "Pass a tuple, for example Thread(target=fn, args=(x,)) for a single argument."
        ) from None
    if kwargs is not None and not callable(getattr(kwargs, "keys", None)):
        raise TypeError(
            f"Thread(kwargs=...) takes a mapping of keyword arguments, got {type(kwargs).__name__} "
            f"{kwargs!r:.60}. Pass a dict, for example Thread(target=fn, kwargs={{'timeout': 5}})."
        )
