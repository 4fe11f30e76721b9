"""The entry points: ``capture``/``wrap``, the planned capture executors hold, and what adapters call.

Everything an adapter needs from the core is here or in ``ctxsnap._checks``: take a snapshot (``capture``,
``PlannedCapture``), run in one without the public checks (``runner``), and tell a wrapped callable from a
plain one (``is_wrapped``, ``wrapped_or_checked``). ``capture()`` is the hottest function of the library:
it reads the cached plan and fills the snapshot itself, in one Python frame (issue 14; docs/benchmarks.md).
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from types import FunctionType
from typing import Any, Final, ParamSpec, TypeVar

from ._checks import ASYNC_FLAGS as _ASYNC_FLAGS
from ._checks import check_callable
from ._checks import raise_async as _raise_async
from ._planning import STALE_PLAN as _STALE_PLAN
from ._planning import Selection, frozen_selection, plan_for
from ._registry import registry as _REGISTRY
from ._snapshot import NO_UNDO as _NO_UNDO
from ._snapshot import Snapshot
from ._snapshot import fill as _fill
from ._wrapping import WRAPPER_CODES

__all__ = ["PlannedCapture", "capture", "is_wrapped", "runner", "wrap", "wrapped_or_checked"]

P = ParamSpec("P")
R = TypeVar("R")


def runner(snapshot: Snapshot) -> Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]:
    """``run(fn, args, kwargs)`` without the public checks, for adapters that checked ``fn`` already.

    Executors hand it to their worker as it is: no wrapper function is built per task, which spares
    ``functools.wraps`` (about a microsecond) where nobody ever sees the wrapper's metadata.
    """
    return snapshot._run


#: Every wrapper shares one of these code objects, which makes "is this already wrapped?" a set lookup.
_WRAPPER_CODES: Final = WRAPPER_CODES | frozenset(
    {
        # runner(snapshot) is the bound Snapshot._run, and bound methods expose their function's __code__: an
        # executor stacked on another (ContextExecutor over ctxsnap.ThreadPoolExecutor) passes it through.
        Snapshot._run.__code__,
    }
)


def wrapped_or_checked(method: str, fn: object) -> bool:
    """``is_wrapped(fn)``, and :func:`check_callable` when it is not: the two reads of a submit in one call.

    True means ``fn`` carries its own snapshot and is handed on as it is.
    """
    if type(fn) is FunctionType:
        code = fn.__code__
        if code in _WRAPPER_CODES:
            return True
        if code.co_flags & _ASYNC_FLAGS:
            _raise_async(method, fn)
        return False
    if getattr(fn, "__code__", None) in _WRAPPER_CODES:
        return True
    check_callable(method, fn)
    return False


def is_wrapped(fn: object) -> bool:
    """Whether ``fn`` came from :meth:`Snapshot.wrap` (so it carries its own snapshot already)."""
    return getattr(fn, "__code__", None) in _WRAPPER_CODES


def capture(*, include: Selection = None, exclude: Selection = None) -> Snapshot:
    """Capture the current context: every ContextVar, and whatever the active providers carry.

    ``include`` keeps only the named providers (a prefix such as ``"flask"`` selects all of Flask's) and/or
    only the given ContextVar objects; ``exclude`` leaves providers or individual ContextVars out.
    """
    if include is None and exclude is None:
        # The hot path: nothing to validate, a plan cached until the registry changes. PlannedCapture.__call__
        # inlined, and the contextvars-only capture filled here: one Python frame per capture (issue 14).
        registry = _REGISTRY
        plan = _capture_everything._plan
        if plan.version == registry.version and (registry.settled or len(sys.modules) == registry.modules_seen):
            snapshot = _new_snapshot(Snapshot)
            if not plan.bare:
                return _fill(snapshot, plan)
            snapshot._base = _copy_context()
            snapshot._sealed = False
            snapshot._entries = ()
            snapshot._undo = _NO_UNDO
            return snapshot
        return _capture_everything()
    return _fill(_new_snapshot(Snapshot), plan_for(include, exclude))


_new_snapshot: Final = object.__new__
_copy_context: Final = contextvars.copy_context


class PlannedCapture:
    """``capture(include=..., exclude=...)`` for a selection fixed in advance, as executors and threads hold.

    The selection is checked when this is built, so a bad one fails at ``ContextExecutor(...)`` or
    ``Thread(...)`` and not at the first submit or start; it is copied, so a generator is not used up by the
    first capture; and its plan is rebuilt only when the registry changes, not at every submit.
    """

    __slots__ = ("_exclude", "_include", "_plan")

    def __init__(self, include: Selection = None, exclude: Selection = None, *, check_now: bool = True) -> None:
        self._include = frozen_selection("include", include)
        self._exclude = frozen_selection("exclude", exclude)
        # check_now=False is for the module-level default capture: planning loads the entry points, which
        # must not happen at "import ctxsnap" (a broken plug-in would break the import itself).
        self._plan = plan_for(self._include, self._exclude) if check_now else _STALE_PLAN

    def __call__(self) -> Snapshot:
        registry = _REGISTRY
        if not registry.settled and len(sys.modules) != registry.modules_seen:
            registry.load_pending()
        plan = self._plan
        if plan.version != registry.version:
            plan = self._plan = plan_for(self._include, self._exclude)
        return _fill(_new_snapshot(Snapshot), plan)


_capture_everything: Final = PlannedCapture(check_now=False)


def wrap(fn: Callable[P, R], *, include: Selection = None, exclude: Selection = None) -> Callable[P, R]:
    """``capture(include=..., exclude=...).wrap(fn)``: capture now, return ``fn`` bound to that snapshot.

    Also the way to choose what a helper that passes keyword arguments on to ``fn`` carries (asyncio's and
    Quart's ``to_thread``): hand it ``ctxsnap.wrap(fn, include=...)``, which it runs as it is.
    """
    return capture(include=include, exclude=exclude).wrap(fn)
