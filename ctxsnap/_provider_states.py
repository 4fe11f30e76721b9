"""Taking a snapshot for a plan: the ContextVars, and what each of the plan's providers has to carry.

Kept out of ``ctxsnap._snapshot`` so that the Snapshot holds only what applies a capture, and so that the rules
of a failing capture live in one place: a provider that raises leaves nothing captured behind, neither in the
error (its traceback keeps these frames and their locals, which an error report may record) nor in a
half-filled snapshot (no snapshot exists until every provider has answered). The provider loop is one frame
with the snapshot it makes: a full Flask capture is this function and the providers' own frames (issue 14).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from contextvars import Context
from typing import Any, Final, Literal, overload

from ._compiled import speedups
from ._contextvars import rebuild_context, without
from ._planning import Plan
from ._run_path import capture_failed
from ._snapshot import NO_UNDO, Snapshot, new_contextvars_snapshot

__all__ = ["captured_base", "take"]


def captured_base(plan: Plan) -> Context | None:
    """The ContextVars ``plan`` carries, as the Context each run enters a copy of; None when it carries none."""
    if not plan.use_base:
        return None
    base = contextvars.copy_context()
    if plan.drop_vars:
        base = without(base, plan.drop_vars)
    if plan.only_vars is not None:
        base = rebuild_context(base, plan.only_vars.__contains__)
    return base


@overload
def take(plan: Plan) -> Snapshot: ...
@overload
def take(plan: Plan, for_task: Literal[True]) -> Context | Snapshot: ...


def take(plan: Plan, for_task: bool = False) -> Context | Snapshot:
    """A new snapshot of the current context, carrying what ``plan`` selects.

    With ``for_task``, a capture that carries ContextVars only is their Context alone, for ``run_task``: no
    Snapshot is built for a task that nobody else sees.
    """
    base = _copy_context() if plan.plain_base else captured_base(plan)
    if _take_entries is not None:
        # The loop below, in C (ctxsnap._speedups), with the same rules.
        taken = _take_entries(plan.captures, base)
        if taken is not None:
            return taken
        if base is None:
            return _new_snapshot(Snapshot)._fill(None, (), NO_UNDO)
        return base if for_task else new_contextvars_snapshot(base)
    entries: list[Any] = []  # flat, as a snapshot holds them: provider, state, apply for each
    undoing = NO_UNDO
    for provider, undo_check, capture, apply in plan.captures:
        try:
            state = capture()
            if state is None:
                continue
            # Whether runs need the undo step is decided here, once per capture, in the same loop (a second
            # pass cost a third of the capture): a run only pays for it when a provider has something to undo
            # for this state (Flask's app provider only in teardown mode). A failing check is part of
            # capturing: it names the provider like a failing capture().
            needed = undo_check is not None and undo_check(state)
        except Exception as exc:
            # The error's traceback keeps this frame and its locals: what was captured must not show up in a
            # report that records locals (Sentry's default), nor live on with the error.
            entries.clear()
            state = base = None
            raise capture_failed(provider, exc) from exc
        entries += (provider, state, apply)
        if needed:
            undoing = undoing | {id(provider)}
    if entries:
        snapshot = _new_snapshot(Snapshot)
        snapshot._base, snapshot._entries, snapshot._undo, snapshot._sealed = base, tuple(entries), undoing, False
        return snapshot
    if base is None:
        return _new_snapshot(Snapshot)._fill(None, (), NO_UNDO)
    if for_task:
        return base
    return new_contextvars_snapshot(base)


_copy_context: Final = contextvars.copy_context
_take_entries: Final[Callable[[tuple[Any, ...], Context | None], Snapshot | None] | None] = (
    None if speedups is None else speedups.take_entries
)
# Snapshot.__new__, not object.__new__: the compiled Snapshot's base type has a __new__ of its own.
_new_snapshot: Final = Snapshot.__new__
