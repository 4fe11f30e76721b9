"""``Snapshot``: the captured context, and the one place where it is applied.

Every adapter funnels into :meth:`Snapshot.run`. A run enters a fresh copy of the captured
``contextvars.Context``, lets each provider install its state there, calls the function, and undoes what the
providers asked to undo. Because the copy is made per run and thrown away afterwards:

* one wrapped callable can run in many workers at the same time (a ``Context`` can be entered by one thread
  only, which is what breaks a shared ``copy_context()``; pallets/flask#5252, #5396);
* nothing the child sets reaches the parent, a sibling, or the next task on the same worker thread;
* the worker's own context is restored by ``Context.run`` even when the task raises.

Capture planning lives in ``ctxsnap._planning``, asking the providers in ``ctxsnap._provider_states``, the
wrappers in ``ctxsnap._wrapping``, argument checks in ``ctxsnap._checks``, and the functions adapters call
(``capture``, ``PlannedCapture``, ``runner``, ``run_task``) in ``ctxsnap._capture``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Context
from types import FunctionType, TracebackType
from typing import Any, Final, NoReturn, ParamSpec, TypeVar

from ._checks import ASYNC_FLAGS as _ASYNC_FLAGS
from ._checks import ASYNC_RESULTS as _ASYNC_RESULTS
from ._checks import check_callable
from ._checks import raise_async as _raise_async
from ._checks import raise_sealed as _raise_sealed
from ._checks import refuse_async_result as _refuse_async_result
from ._checks import refuse_async_run as _refuse_async_run
from ._errors import ProviderError
from ._planning import CONTEXTVARS, Selection, plan_for
from ._undo import RUN_PATH_CODES
from ._undo import forget_captured as _forget_captured
from ._undo import undo_all as _undo_all
from ._wrapping import wrap_checked

__all__ = ["NO_UNDO", "ContextVarsSnapshot", "Snapshot"]

P = ParamSpec("P")
R = TypeVar("R")

_REPR_MAX_VARS: Final = 20
#: The undo set of a snapshot whose runs undo nothing (every contextvars-only one, and Flask's default).
NO_UNDO: Final[frozenset[int]] = frozenset()


class Snapshot:
    """The context captured at one moment, ready to be applied wherever work runs.

    Get one from :func:`ctxsnap.capture`. Use it bare, or as ``with capture() as snap:``; leaving the block
    seals it, after which :meth:`wrap` and :meth:`run` raise :class:`SnapshotClosedError` while callables
    wrapped inside the block keep working.
    """

    __slots__ = ("__weakref__", "_base", "_entries", "_sealed", "_undo")

    _base: Context | None
    _entries: tuple[tuple[Any, Any], ...]
    _sealed: bool
    _undo: frozenset[int]

    def __init__(self, *, include: Selection = None, exclude: Selection = None) -> None:
        # Snapshot(...) is the same as capture(...), which makes its snapshots without __init__.
        from ._provider_states import take  # imports this module: a cycle at import time otherwise

        self._fill(None, (), NO_UNDO)  # empty until every provider answered: a failed capture leaves no state
        taken = take(plan_for(include, exclude))
        self._fill(taken._base, taken._entries, taken._undo)

    def _fill(self, base: Context | None, entries: tuple[tuple[Any, Any], ...], undo: frozenset[int]) -> Snapshot:
        self._base, self._entries, self._undo, self._sealed = base, entries, undo, False
        return self

    # -- the public surface -------------------------------------------------------------------------------

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return a callable that runs ``fn`` inside this snapshot, with ``fn``'s signature and metadata.

        The result can be called any number of times, from any number of threads at once: each call gets its
        own fresh copy of the captured context.
        """
        if self._sealed:
            _raise_sealed("wrap")
        check_callable("wrap", fn)
        return wrap_checked(self, fn)

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` now, in the current thread, inside a fresh copy of this snapshot."""
        if self._sealed:
            _raise_sealed("run")
        if type(fn) is not FunctionType:
            check_callable("run", fn)
        elif fn.__code__.co_flags & _ASYNC_FLAGS:
            _raise_async("run", fn)  # before any provider applies anything
        return self._run(fn, args, kwargs)

    def close(self) -> None:
        """Seal the snapshot: later :meth:`wrap`/:meth:`run` raise; already wrapped callables still run."""
        self._sealed = True

    @property
    def sealed(self) -> bool:
        return self._sealed

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers that captured something, ``"contextvars"`` first when it is included."""
        names = tuple(p.name for p, _ in self._entries)
        return (CONTEXTVARS.name, *names) if self._base is not None else names

    def __enter__(self) -> Snapshot:
        if self._sealed:
            _raise_sealed("__enter__")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Names only, never values: snapshots end up in logs and error reports, values may be secrets.
        parts = [f"providers={list(self.providers)!r}"]
        if self._base is not None:
            names = sorted(var.name for var in self._base)
            shown = names[:_REPR_MAX_VARS]
            more = f", ... {len(names) - len(shown)} more" if len(names) > len(shown) else ""
            parts.append(f"vars=[{', '.join(shown)}{more}]")
        if self._sealed:
            parts.append("sealed")
        return f"<ctxsnap.Snapshot {' '.join(parts)}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "A Snapshot cannot be pickled: it holds this process's live objects. Its request, g and ContextVar "
            "values mean nothing in another one: capture in the process that runs the work, or send the plain "
            "values you need."
        )

    # -- the hot path -------------------------------------------------------------------------------------

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        base = self._base
        context = base.copy() if base is not None else Context()
        state = provider = None
        try:
            if self._undo:
                result = context.run(self._apply_run_undo, fn, args, kwargs)
            else:
                # Each apply entered on its own, then the task: the Context keeps what an apply set, and no
                # frame of ours sits between the run and the providers (one frame less per run).
                for provider, state in self._entries:
                    try:
                        context.run(provider.apply, state)
                    except Exception as exc:
                        raise ProviderError(provider.name, "apply", exc) from exc
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

    def _apply_run_undo(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        applied: list[tuple[Any, Any, Any]] = []
        undoing = self._undo
        try:
            for provider, state in self._entries:
                try:
                    token = provider.apply(state)
                except Exception as exc:
                    raise ProviderError(provider.name, "apply", exc) from exc
                if id(provider) in undoing:
                    applied.append((provider, state, token))
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _undo_all(applied, exc)
            raise
        _undo_all(applied, None)
        return result


# The run path's own frame joins the undo's in the codes whose locals a failure clears.
RUN_PATH_CODES.add(Snapshot._apply_run_undo.__code__)


class ContextVarsSnapshot(Snapshot):
    """A snapshot that carries ContextVars and nothing else: what most captures are, given a shorter run.

    ``capture()`` returns one whenever no provider has anything to carry (no framework imported, or none of
    its contexts active). Its runs need no provider loop, so each one is a copy of the captured Context and the
    call, in one frame (issue 14). It is made without ``__init__`` and only ``_base`` and ``_sealed`` are set:
    ``_entries`` and ``_undo`` are the same for every instance.
    """

    __slots__ = ()
    # Made with a type call and no __init__ of ours: cheaper than object.__new__(cls), which checks its argument.
    __init__ = object.__init__

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
            del self  # see Snapshot._run: no captured value in the frames a traceback keeps
            raise
        if type(result) in _ASYNC_RESULTS:
            # Only ContextVars were carried, so calling an async function ran nothing but the creation of its
            # coroutine: refused here, with the same error as Snapshot.run's check before a run with providers,
            # which spares every run of a plain function reading its code flags.
            _refuse_async_run(fn, result)
        return result

    run.__doc__ = Snapshot.run.__doc__

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        try:
            result = self._base.copy().run(fn, *args, **kwargs) if args or kwargs else self._base.copy().run(fn)
        except BaseException:
            del self
            raise
        if type(result) in _ASYNC_RESULTS:
            _refuse_async_result(fn, result)
        return result
