"""Executors that capture the context at every ``submit`` and ``map`` call.

``ContextExecutor`` wraps any :class:`concurrent.futures.Executor`; ``ThreadPoolExecutor`` is a drop-in
subclass of the standard one. Capture happens at the call, in the caller's thread, never at pool construction,
and each task runs in its own fresh copy, so pool workers never accumulate context from earlier tasks.

A callable that already came from :meth:`Snapshot.wrap` is submitted as it is: the snapshot it carries is the
one the user chose.

Process pools cannot take a snapshot (its live objects do not pickle); they take a :class:`ctxsnap.Carrier`
instead: ``ProcessPoolExecutor(carrier=...)`` and ``ContextExecutor(executor, carrier=...)`` export the declared
values at each ``submit``/``map`` (a refusal raises there, before anything is sent), and the child runs each task
in an empty context holding only those values.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from contextvars import Context
from typing import Any, ParamSpec, TypeVar

from .._capture import PlannedCapture, capture, capture_for_task, is_wrapped, run_task, wrapped_or_checked
from .._carried_call import submission
from .._carrier import CarriedCall, Carrier, run_carried
from .._checks import check_callable, check_executor
from .._planning import Selection
from .._snapshot import Snapshot
from .._wrapping import wrap_checked

__all__ = ["ContextExecutor", "ProcessPoolExecutor", "ThreadPoolExecutor"]

P = ParamSpec("P")
R = TypeVar("R")


def _submit(
    submit: Callable[..., Future[Any]],
    fn: Callable[..., R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    capture_for_task: Callable[[], Context | Snapshot],
) -> Future[R]:
    if wrapped_or_checked("submit", fn):
        return submit(fn, *args, **kwargs)
    # The worker runs the task in what was captured, with its arguments: no wrapper function per task.
    return submit(run_task, capture_for_task(), fn, args, kwargs)


def _bind(method: str, fn: Callable[P, R], take_snapshot: Callable[[], Snapshot]) -> Callable[P, R]:
    if is_wrapped(fn):
        return fn
    # Checked here so that the error names the call the user made (submit, map), not the wrap inside it.
    check_callable(method, fn)
    return wrap_checked(take_snapshot(), fn)


class ContextExecutor(Executor):
    """Wrap any executor so that each submitted task runs inside the context of its ``submit`` call.

    ``shutdown`` and the ``with`` statement pass through to the wrapped executor. ``include``/``exclude``
    apply to every capture this executor makes. With ``carrier=``, tasks carry that carrier's declared values
    instead of a snapshot, which is what a process pool needs.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        include: Selection = None,
        exclude: Selection = None,
        carrier: Carrier | None = None,
    ) -> None:
        self._carrier = _check_carrier("ContextExecutor", carrier, required=False)
        if carrier is None:
            check_executor("ContextExecutor", executor, "ContextExecutor({})", carries=True)
        elif include is not None or exclude is not None:
            raise TypeError(
                "ContextExecutor() takes carrier= or include=/exclude=, not both. Pass only the carrier: its "
                "declaration already says what crosses."
            )
        self._executor = executor
        self._capture = PlannedCapture(include, exclude)
        self._capture_for_task = self._capture.for_task

    @property
    def executor(self) -> Executor:
        """The wrapped executor."""
        return self._executor

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        if self._carrier is not None:
            return _submit_carried(self._executor.submit, self._carrier, fn, args, kwargs)
        return _submit(self._executor.submit, fn, args, kwargs, self._capture_for_task)

    def map(
        self, fn: Callable[..., R], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[R]:
        if self._carrier is not None:
            carried = _bind_carried(self._carrier, fn)
            return self._executor.map(carried, *iterables, timeout=timeout, chunksize=chunksize)
        # One capture for the whole call; every item still runs in its own fresh copy of it.
        bound = _bind("map", fn, self._capture)
        return self._executor.map(bound, *iterables, timeout=timeout, chunksize=chunksize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __repr__(self) -> str:
        return f"<ctxsnap.ContextExecutor of {self._executor!r}>"


_ThreadPool = concurrent.futures.ThreadPoolExecutor


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """Drop-in :class:`concurrent.futures.ThreadPoolExecutor` whose tasks run in the submitter's context.

    It takes the base class's arguments, plus keyword-only ``include``/``exclude`` that apply to every capture
    it makes, as for :class:`ContextExecutor`.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *args: Any,
        include: Selection = None,
        exclude: Selection = None,
        **kwargs: Any,
    ) -> None:
        # The base class's own checks are clear (max_workers=0, a non-callable initializer) except for a
        # max_workers it cannot compare with 0, which fails as "'<=' not supported between instances of 'str'
        # and 'int'". The same comparison here, so that exactly what the base accepts is accepted.
        if max_workers is not None:
            try:
                max_workers <= 0  # noqa: B015 - only whether the comparison works matters
            except TypeError:
                raise TypeError(
                    f"ThreadPoolExecutor(max_workers=...) takes an int or None, got {type(max_workers).__name__} "
                    f"{max_workers!r:.60}. Pass the number of worker threads, for example max_workers=4, or None "
                    "for the default size."
                ) from None
        # The default selection captures through capture() itself, whose plan is built at the first capture:
        # a pool made at import time loads no provider there.
        planned = None if include is None and exclude is None else PlannedCapture(include, exclude)
        self._ctxsnap_capture: Callable[[], Snapshot] = capture if planned is None else planned
        self._ctxsnap_for_task = capture_for_task if planned is None else planned.for_task
        super().__init__(max_workers, *args, **kwargs)

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        # As _submit, inlined: a submit is a hop of a few tens of microseconds, and each frame and super() call
        # on it showed in the round-trip ratio (issue 14).
        if wrapped_or_checked("submit", fn):
            return super().submit(fn, *args, **kwargs)
        if type(self) is ThreadPoolExecutor:  # a subclass may put another submit() between us and the base
            return _ThreadPool.submit(self, run_task, self._ctxsnap_for_task(), fn, args, kwargs)
        return super().submit(run_task, self._ctxsnap_for_task(), fn, args, kwargs)

    def map(
        self, fn: Callable[..., R], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[R]:
        # The base map() calls self.submit() per item; binding once here makes those calls pass it through.
        bound = _bind("map", fn, self._ctxsnap_capture)
        return super().map(bound, *iterables, timeout=timeout, chunksize=chunksize)


def _check_carrier(where: str, carrier: object, *, required: bool) -> Carrier | None:
    if carrier is None and not required:
        return None
    if not isinstance(carrier, Carrier):
        raise TypeError(
            f"{where}(carrier=...) takes a ctxsnap.Carrier, got {type(carrier).__name__}. Declare what crosses "
            "to the workers: carrier=ctxsnap.Carrier('myapp', vars=[request_id])."
        )
    return carrier


def _submit_carried(
    submit: Callable[..., Future[Any]],
    carrier: Carrier,
    fn: Callable[..., R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Future[R]:
    if isinstance(fn, CarriedCall):
        return submit(fn, *args, **kwargs)
    check_callable("submit", fn)
    # Exported here, in the caller: a refusal raises at submit() and nothing reaches the pool.
    return submit(run_carried, *submission(carrier, fn), *args, **kwargs)


def _bind_carried(carrier: Carrier, fn: Callable[..., R]) -> Callable[..., R]:
    if isinstance(fn, CarriedCall):
        return fn
    check_callable("map", fn)
    return carrier.wrap(fn)


class ProcessPoolExecutor(concurrent.futures.ProcessPoolExecutor):
    """:class:`concurrent.futures.ProcessPoolExecutor` whose tasks carry ``carrier``'s declared values.

    ``carrier=`` is required. Each task runs in the child in an empty context holding the values exported at
    its ``submit`` (or, for ``map``, at the call), with ``g`` in the carrier's app context when it has an app,
    under every start method (fork, forkserver, spawn).
    """

    def __init__(self, max_workers: int | None = None, *args: Any, carrier: Carrier, **kwargs: Any) -> None:
        checked = _check_carrier("ProcessPoolExecutor", carrier, required=True)
        assert checked is not None
        self._carrier = checked
        super().__init__(max_workers, *args, **kwargs)

    @property
    def carrier(self) -> Carrier:
        return self._carrier

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        return _submit_carried(super().submit, self._carrier, fn, args, kwargs)

    def map(
        self, fn: Callable[..., R], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[R]:
        # One export for the whole call; the base map() then submits the CarriedCall, which passes through.
        return super().map(_bind_carried(self._carrier, fn), *iterables, timeout=timeout, chunksize=chunksize)
