"""``Snapshot``: the captured context, and the one place where it is applied.

Every adapter funnels into :meth:`Snapshot.run`. A run enters a fresh copy of the captured
``contextvars.Context``, lets each provider install its state there, calls the function, and undoes what the
providers asked to undo. Because the copy is made per run and thrown away afterwards:

* one wrapped callable can run in many workers at the same time (a ``Context`` can be entered by one thread
  only, which is what breaks a shared ``copy_context()``; pallets/flask#5252, #5396);
* nothing the child sets reaches the parent, a sibling, or the next task on the same worker thread;
* the worker's own context is restored by ``Context.run`` even when the task raises.

The fields and the run itself are :class:`SnapshotCore`'s: the compiled ``ctxsnap._speedups`` when it is built,
else its pure-Python twin in ``ctxsnap._run_path`` (``ctxsnap._compiled`` picks one, once, at import). Capture
planning lives in ``ctxsnap._planning``, asking the providers in ``ctxsnap._provider_states``, the
wrappers in ``ctxsnap._wrapping``, argument checks in ``ctxsnap._checks``, and the functions adapters call
(``capture``, ``PlannedCapture``, ``runner``, ``run_task``) in ``ctxsnap._capture``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Context, copy_context
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn, ParamSpec, TypeVar

from . import _checks, _run_path, _undo
from ._checks import check_callable
from ._checks import raise_sealed as _raise_sealed
from ._compiled import speedups as _speedups
from ._planning import CONTEXTVARS, Selection, plan_for
from ._run_path import ENTRY_SIZE, NO_UNDO, Entries
from ._wrapping import wrap_checked

if TYPE_CHECKING or _speedups is None:
    from ._run_path import ContextVarsCore, SnapshotCore
else:
    # One C type serves both: its run takes the short way when the snapshot has no provider entries.
    SnapshotCore = ContextVarsCore = _speedups.SnapshotCore

__all__ = ["NO_UNDO", "ContextVarsSnapshot", "Snapshot", "new_contextvars_snapshot"]

P = ParamSpec("P")
R = TypeVar("R")

_REPR_MAX_VARS: Final = 20


class Snapshot(SnapshotCore):
    """The context captured at one moment, ready to be applied wherever work runs.

    Get one from :func:`ctxsnap.capture`. Use it bare, or as ``with capture() as snap:``; leaving the block
    seals it, after which :meth:`wrap` and :meth:`run` raise :class:`SnapshotClosedError` while callables
    wrapped inside the block keep working.
    """

    __slots__ = ()

    def __init__(self, *, include: Selection = None, exclude: Selection = None) -> None:
        # Snapshot(...) is the same as capture(...), which makes its snapshots without __init__.
        from ._provider_states import take  # imports this module: a cycle at import time otherwise

        self._fill(None, (), NO_UNDO)  # empty until every provider answered: a failed capture leaves no state
        taken = take(plan_for(include, exclude))
        self._fill(taken._base, taken._entries, taken._undo)

    def _fill(self, base: Context | None, entries: Entries, undo: frozenset[int]) -> Snapshot:
        self._base, self._entries, self._undo, self._sealed = base, entries, undo, False
        return self

    # -- the public surface -------------------------------------------------------------------------------

    # Named here, not only inherited, so that the reference documents it: its code is the run path's.
    run = SnapshotCore.run

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return a callable that runs ``fn`` inside this snapshot, with ``fn``'s signature and metadata.

        The result can be called any number of times, from any number of threads at once: each call gets its
        own fresh copy of the captured context.
        """
        if self._sealed:
            _raise_sealed("wrap")
        check_callable("wrap", fn)
        return wrap_checked(self, fn)

    def close(self) -> None:
        """Seal the snapshot: later :meth:`wrap`/:meth:`run` raise; already wrapped callables still run."""
        self._sealed = True

    @property
    def sealed(self) -> bool:
        return self._sealed

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers that captured something, ``"contextvars"`` first when it is included."""
        names = tuple(p.name for p in self._entries[::ENTRY_SIZE])
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


class ContextVarsSnapshot(Snapshot, ContextVarsCore):
    """A snapshot that carries ContextVars and nothing else: what most captures are, given a shorter run.

    ``capture()`` returns one whenever no provider has anything to carry (no framework imported, or none of
    its contexts active). Its runs need no provider loop, so each one is a copy of the captured Context and the
    call, in one frame (issue 14).
    """

    __slots__ = ()
    run = ContextVarsCore.run  # before Snapshot.run in the lookup: the shorter run
    # Made with a type call and no __init__ of ours: cheaper than object.__new__(cls), which checks its argument.
    __init__ = object.__init__


def _new_contextvars_snapshot(base: Context | None = None) -> Snapshot:
    snapshot: Snapshot = ContextVarsSnapshot()
    snapshot._base = copy_context() if base is None else base
    snapshot._sealed = False
    return snapshot


#: ``new_contextvars_snapshot()`` is a ContextVarsSnapshot of the current context, ``(base)`` one of ``base``.
new_contextvars_snapshot: Callable[..., Snapshot]
if _speedups is None:
    new_contextvars_snapshot = _new_contextvars_snapshot
else:
    new_contextvars_snapshot = _speedups.new_bare
    _speedups.configure(
        raise_sealed=_checks.raise_sealed,
        check_callable=_checks.check_callable,
        raise_async=_checks.raise_async,
        refuse_async_run=_checks.refuse_async_run,
        refuse_async_result=_checks.refuse_async_result,
        apply_failed=_run_path.apply_failed,
        capture_failed=_run_path.capture_failed,
        snapshot_class=Snapshot,
        apply_run_undo=_run_path.apply_run_undo,
        forget_captured=_undo.forget_captured,
        async_results=_checks.ASYNC_RESULTS,
        async_flags=_checks.ASYNC_FLAGS,
        no_undo=NO_UNDO,
        bare_class=ContextVarsSnapshot,
    )
