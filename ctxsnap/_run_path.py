"""The run path of a snapshot in pure Python: the twin of the compiled ``ctxsnap._speedups``.

``ctxsnap._snapshot`` builds :class:`~ctxsnap.Snapshot` on one of the two (``ctxsnap._compiled`` says which):
the fields a snapshot holds and its ``run``/``_run``, which enter a fresh copy of the captured
``contextvars.Context``, let each provider install its state there, call the function, and undo what the
providers asked to undo. The two must behave the same in every row of the semantics table; the test matrix runs
the whole suite against each. What is not the hot path lives here once for both: :func:`apply_run_undo`, the
run of a snapshot whose providers undo (Flask's teardown mode), and :func:`apply_failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Context
from types import FunctionType
from typing import Any, Final, ParamSpec, TypeVar

from ._checks import ASYNC_FLAGS as _ASYNC_FLAGS
from ._checks import ASYNC_RESULTS as _ASYNC_RESULTS
from ._checks import check_callable
from ._checks import raise_async as _raise_async
from ._checks import raise_sealed as _raise_sealed
from ._checks import refuse_async_result as _refuse_async_result
from ._checks import refuse_async_run as _refuse_async_run
from ._errors import ProviderError
from ._undo import RUN_PATH_CODES
from ._undo import forget_captured as _forget_captured
from ._undo import undo_all as _undo_all

__all__ = [
    "NO_UNDO",
    "ContextVarsCore",
    "ENTRY_SIZE",
    "Entries",
    "SnapshotCore",
    "apply_failed",
    "apply_run_undo",
    "capture_failed",
]

P = ParamSpec("P")
#: What a snapshot holds of its providers: for each one that had something to carry, the provider, its state and
#: its apply (as the capture's plan looked it up), one after the other in one flat tuple. One tuple per capture
#: instead of one more per provider: two objects less to make and free per Flask capture (issue 14).
Entries = tuple[Any, ...]
#: The width of one provider's part of :data:`Entries`.
ENTRY_SIZE: Final = 3
R = TypeVar("R")

#: The undo set of a snapshot whose runs undo nothing (every contextvars-only one, and Flask's default).
NO_UNDO: Final[frozenset[int]] = frozenset()


class SnapshotCore:
    """The fields and the run path of a :class:`~ctxsnap.Snapshot`."""

    __slots__ = ("__weakref__", "_base", "_entries", "_sealed", "_undo")

    _base: Context | None
    _entries: Entries
    _sealed: bool
    _undo: frozenset[int]

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` now, in the current thread, inside a fresh copy of this snapshot."""
        if self._sealed:
            _raise_sealed("run")
        if type(fn) is not FunctionType:
            check_callable("run", fn)
        elif fn.__code__.co_flags & _ASYNC_FLAGS:
            _raise_async("run", fn)  # before any provider applies anything
        return self._run(fn, args, kwargs)

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        base = self._base
        context = base.copy() if base is not None else Context()
        state = provider = None
        try:
            if self._undo:
                result = context.run(apply_run_undo, self, fn, args, kwargs)
            else:
                # Each apply entered on its own, then the task: the Context keeps what an apply set, and no
                # frame of ours sits between the run and the providers (one frame less per run).
                # The entries three by three (see Entries). Not strict=True: its end-of-input check costs more
                # than the rest of the loop, and every producer of entries writes them three by three.
                parts = iter(self._entries)
                for provider, state, apply in zip(parts, parts, parts):  # noqa: B905
                    try:
                        context.run(apply, state)
                    except Exception as exc:
                        raise apply_failed(provider, exc) from exc
                result = context.run(fn, *args, **kwargs) if args or kwargs else context.run(fn)
        except BaseException as exc:
            # A traceback keeps every frame it passed through, with its locals: a failed task's Future kept
            # for later, or an error report that records locals (Sentry's default), would otherwise keep and
            # show the captured values (g, ContextVars) through this snapshot and the run's context.
            _forget_captured(exc)
            del self, base, context
            state = provider = None
            raise
        if type(result) in _ASYNC_RESULTS:
            _refuse_async_result(fn, result)
        return result


class ContextVarsCore(SnapshotCore):
    """The shorter run of a snapshot that carries ContextVars and nothing else: no provider loop, one frame.

    Its instances are made without ``__init__`` and only ``_base`` and ``_sealed`` are set: ``_entries`` and
    ``_undo`` are the same for every instance.
    """

    __slots__ = ()

    _base: Context
    _entries = ()
    _undo = NO_UNDO

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._sealed:
            _raise_sealed("run")
        if type(fn) is not FunctionType:
            check_callable("run", fn)
        try:
            # An empty *args/**kwargs still costs a call with unpacking; most tasks take no arguments.
            if args or kwargs:
                result = self._base.copy().run(fn, *args, **kwargs)
            else:
                result = self._base.copy().run(fn)  # type: ignore[call-arg]  # called without arguments: P is empty
        except BaseException:
            del self  # see SnapshotCore._run: no captured value in the frames a traceback keeps
            raise
        if type(result) in _ASYNC_RESULTS:
            # Only ContextVars were carried, so calling an async function ran nothing but the creation of its
            # coroutine: refused here, with the same error as SnapshotCore.run's check before a run with
            # providers, which spares every run of a plain function reading its code flags.
            _refuse_async_run(fn, result)
        return result

    run.__doc__ = SnapshotCore.run.__doc__

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        try:
            result = self._base.copy().run(fn, *args, **kwargs) if args or kwargs else self._base.copy().run(fn)
        except BaseException:
            del self
            raise
        if type(result) in _ASYNC_RESULTS:
            _refuse_async_result(fn, result)
        return result


def apply_failed(provider: Any, exc: Exception) -> ProviderError:
    """The error a run raises, from ``exc``, when ``provider``'s apply raised it."""
    return ProviderError(provider.name, "apply", exc)


def capture_failed(provider: Any, exc: Exception) -> ProviderError:
    """The error a capture raises, from ``exc``, when ``provider``'s capture (or its undo check) raised it."""
    return ProviderError(provider.name, "capture", exc)


def apply_run_undo(
    snapshot: SnapshotCore, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    """A run whose providers undo: apply each, call ``fn``, then undo in reverse, whatever happened.

    Called inside the run's fresh Context, by the pure-Python and the compiled run path alike.
    """
    applied: list[tuple[Any, Any, Any]] = []
    undoing = snapshot._undo
    try:
        parts = iter(snapshot._entries)
        for provider, state, apply in zip(parts, parts, parts):  # noqa: B905 - see SnapshotCore._run
            try:
                token = apply(state)
            except Exception as exc:
                raise apply_failed(provider, exc) from exc
            if id(provider) in undoing:
                applied.append((provider, state, token))
        result = fn(*args, **kwargs)
    except BaseException as exc:
        _undo_all(applied, exc)
        raise
    _undo_all(applied, None)
    return result


# The run path's own frame joins the undo's in the codes whose locals a failure clears.
RUN_PATH_CODES.add(apply_run_undo.__code__)
