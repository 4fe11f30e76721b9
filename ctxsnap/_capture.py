"""The entry points: ``capture``/``wrap``, the planned capture executors hold, and what adapters call.

Everything an adapter needs from the core is here or in ``ctxsnap._checks``: take a snapshot (``capture``,
``PlannedCapture``), run in one without the public checks (``runner``), capture for one submitted task and
run it (``capture_for_task``, ``PlannedCapture.for_task``, ``run_task``), and tell a wrapped callable from a
plain one (``is_wrapped``, ``wrapped_or_checked``). ``capture()`` is the hottest function of the library:
it reads the cached plan and makes a contextvars-only snapshot itself, in one Python frame (issue 14;
docs/benchmarks.md); with providers to ask it hands the plan to ``ctxsnap._provider_states.take``. Where the
accelerator is built, ``capture`` is its compiled twin, a builtin with no Python frame that hands every call
but the default capture back to the function defined here.
"""

from __future__ import annotations

import contextvars
import inspect
import sys
from collections.abc import Callable
from contextvars import Context
from types import FunctionType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from . import _wrapping
from ._checks import ASYNC_FLAGS as _ASYNC_FLAGS
from ._checks import check_callable
from ._checks import raise_async as _raise_async
from ._compiled import speedups as _speedups
from ._planning import STALE_PLAN as _STALE_PLAN
from ._planning import Plan, Selection, frozen_selection, plan_for
from ._provider_states import take as _take
from ._registry import registry as _REGISTRY
from ._run_path import ContextVarsCore, SnapshotCore
from ._snapshot import ContextVarsSnapshot, Snapshot
from ._snapshot import new_contextvars_snapshot as _new_contextvars_snapshot
from ._wrapping import WRAPPER_CODES, run_task

__all__ = [
    "PlannedCapture",
    "capture",
    "capture_for_task",
    "is_wrapped",
    "run_task",
    "runner",
    "wrap",
    "wrapped_or_checked",
]

P = ParamSpec("P")
R = TypeVar("R")


def runner(snapshot: Snapshot) -> Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]:
    """``run(fn, args, kwargs)`` without the public checks, for adapters that checked ``fn`` already.

    Executors hand it to their worker as it is: no wrapper function is built per task, which spares
    ``functools.wraps`` (about a microsecond) where nobody ever sees the wrapper's metadata.
    """
    return snapshot._run


#: Every wrapper shares one of these code objects, which makes "is this already wrapped?" a set lookup. By id:
#: hashing a code object hashes its constants and names at every lookup (a third of a submit's own cost).
_WRAPPER_CODES: Final = (
    *WRAPPER_CODES,
    # runner(snapshot) is a bound _run, and bound methods expose their function's __code__: an executor stacked
    # on another (ContextExecutor over ctxsnap.ThreadPoolExecutor) passes it through.
    SnapshotCore._run.__code__,
    ContextVarsCore._run.__code__,
)
_WRAPPER_IDS: Final = frozenset(map(id, _WRAPPER_CODES))
_WRAPPING_GLOBALS: Final = vars(_wrapping)
#: The compiled run path's callables have no code object: its run_task, and the bound _run of its snapshots.
_COMPILED_RUN_TASK: Final = None if _speedups is None else _speedups.run_task
_COMPILED_SNAPSHOT: Final = None if _speedups is None else _speedups.SnapshotCore


def _is_compiled_runner(fn: object) -> bool:
    if fn is _COMPILED_RUN_TASK:
        return fn is not None
    self = getattr(fn, "__self__", None)
    return (
        _COMPILED_SNAPSHOT is not None
        and isinstance(self, _COMPILED_SNAPSHOT)
        and getattr(fn, "__name__", "") == "_run"
    )


def wrapped_or_checked(method: str, fn: object) -> bool:
    """``is_wrapped(fn)``, and :func:`check_callable` when it is not: the two reads of a submit in one call.

    True means ``fn`` carries its own snapshot and is handed on as it is.
    """
    if type(fn) is FunctionType:
        if fn.__code__.co_flags & _ASYNC_FLAGS:
            _raise_async(method, fn)
        # Every wrapper function is defined in ctxsnap._wrapping: one read tells the user's functions apart.
        return fn.__globals__ is _WRAPPING_GLOBALS and id(fn.__code__) in _WRAPPER_IDS
    if id(getattr(fn, "__code__", None)) in _WRAPPER_IDS or _is_compiled_runner(fn):
        return True
    check_callable(method, fn)
    return False


def is_wrapped(fn: object) -> bool:
    """Whether ``fn`` came from :meth:`Snapshot.wrap` (so it carries its own snapshot already)."""
    if type(fn) is FunctionType:
        return fn.__globals__ is _WRAPPING_GLOBALS and id(fn.__code__) in _WRAPPER_IDS
    return id(getattr(fn, "__code__", None)) in _WRAPPER_IDS or _is_compiled_runner(fn)


def capture(*, include: Selection = None, exclude: Selection = None) -> Snapshot:
    """Capture the current context: every ContextVar, and whatever the active providers carry.

    ``include`` keeps only the named providers (a prefix such as ``"flask"`` selects all of Flask's) and/or
    only the given ContextVar objects; ``exclude`` leaves providers or individual ContextVars out.
    """
    if include is None and exclude is None:
        # The hot path: nothing to validate, a plan cached until the registry changes (a module imported since
        # the last look may be a framework to load a provider for). One Python frame per capture (issue 14).
        registry = _REGISTRY
        plan = _capture_everything._plan
        if plan.version == registry.version and (len(sys.modules) == registry.modules_seen or registry.settled):
            # Where the accelerator is built, its capture() takes this path itself (capture_function below)
            # and calls this function when it does not hold, so the compiled steps are not repeated here; it
            # may hold again by now (another thread rebuilt the plan), and a compiled snapshot has no class
            # defaults to fill in its fields.
            if plan.bare:
                if _speedups is not None:
                    return _new_contextvars_snapshot()
                snapshot: Snapshot = _ContextVarsSnapshot()
                snapshot._base = _copy_context()
                snapshot._sealed = False
                return snapshot
            return _take(plan)
        return _capture_everything()
    return _take(plan_for(include, exclude))


def capture_for_task() -> Context | Snapshot:
    """What a task submitted now carries, for :func:`run_task`: ``capture()``, or its Context alone."""
    registry = _REGISTRY
    plan = _capture_everything._plan
    if (
        plan.bare
        and plan.version == registry.version
        and (len(sys.modules) == registry.modules_seen or registry.settled)
    ):
        return _copy_context()
    return _capture_everything.for_task()


_copy_context: Final = contextvars.copy_context
_take_entries: Final[Callable[[tuple[Any, ...], Context], Snapshot | None] | None] = (
    None if _speedups is None else _speedups.take_entries
)
_ContextVarsSnapshot: Final = ContextVarsSnapshot


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
        return _take(self._current_plan())

    def for_task(self) -> Context | Snapshot:
        """What a task submitted now carries, for :func:`run_task`: a snapshot, or its Context alone."""
        # _current_plan() inlined: every submit of an instrumented executor calls this (issue 15).
        registry = _REGISTRY
        if not registry.settled and len(sys.modules) != registry.modules_seen:
            registry.load_pending()
        plan = self._plan
        if plan.version != registry.version:
            plan = self._plan = plan_for(self._include, self._exclude)
        if _take_entries is not None and plan.plain_base:
            base = _copy_context()  # take(plan, for_task=True) without its frame
            return _take_entries(plan.captures, base) or base
        return _take(plan, for_task=True)

    def _current_plan(self) -> Plan:
        registry = _REGISTRY
        if not registry.settled and len(sys.modules) != registry.modules_seen:
            registry.load_pending()
        plan = self._plan
        if plan.version != registry.version:
            plan = self._plan = plan_for(self._include, self._exclude)
        return plan


_capture_everything: Final = PlannedCapture(check_now=False)

if _speedups is not None and not TYPE_CHECKING:
    # The same hot path in C, where the call has no Python frame; any other call comes back to the function
    # above. It is a builtin with that function's name and docstring.
    capture = _speedups.capture_function(
        f"capture(*, include=None, exclude=None)\n--\n\n{inspect.getdoc(capture)}",
        capture,
        _capture_everything,
        vars(_REGISTRY),  # read as its attributes: the registry's class defines none of these names
        sys.modules,
    )


def wrap(fn: Callable[P, R], *, include: Selection = None, exclude: Selection = None) -> Callable[P, R]:
    """``capture(include=..., exclude=...).wrap(fn)``: capture now, return ``fn`` bound to that snapshot.

    Also the way to choose what a helper that passes keyword arguments on to ``fn`` carries (asyncio's and
    Quart's ``to_thread``): hand it ``ctxsnap.wrap(fn, include=...)``, which it runs as it is.
    """
    return capture(include=include, exclude=exclude).wrap(fn)
