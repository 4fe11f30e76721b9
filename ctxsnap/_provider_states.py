"""Asking a plan's providers for their state: what a capture does beyond copying the ContextVars.

Kept out of ``ctxsnap._snapshot`` so that the Snapshot holds only what applies a capture, and so that the rules
of a failing capture live in one place: a provider that raises leaves nothing captured behind, neither in the
error (its traceback keeps these frames and their locals, which an error report may record) nor in a
half-filled snapshot (no snapshot exists until every provider has answered).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from contextvars import Context
from typing import Any, Final

from ._contextvars import rebuild_context, without
from ._errors import ProviderError
from ._planning import Plan

__all__ = ["NO_UNDO", "captured_base", "captured_states"]

#: The undo set of a snapshot whose runs undo nothing (every contextvars-only one, and Flask's default).
NO_UNDO: Final[frozenset[int]] = frozenset()

Entries = tuple[tuple[Any, Any], ...]
_NOTHING: Final[tuple[Entries, frozenset[int]]] = ((), NO_UNDO)


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


def captured_states(captures: tuple[tuple[Any, Callable[[Any], bool] | bool | None], ...]) -> tuple[Entries, Any]:
    """Each provider that has something to carry, with its state; and the ids of those whose runs must undo."""
    entries: list[tuple[Any, Any]] = []
    undoing: list[int] | None = None
    for provider, undo_check in captures:
        try:
            state = provider.capture()
        except Exception as exc:
            # The error's traceback keeps this frame and its locals: what was captured must not show up in a
            # report that records locals (Sentry's default), nor live on with the error.
            entries.clear()
            raise ProviderError(provider.name, "capture", exc) from exc
        if state is None:
            continue
        entries.append((provider, state))
        # Whether runs need the undo step is decided here, once per capture, in the same loop (a second pass
        # cost a third of the capture): a run only pays for it when a provider has something to undo for this
        # state (Flask's app provider only in teardown mode).
        if undo_check is not None and _needs_undo(provider, undo_check, entries):
            undoing = [id(provider)] if undoing is None else [*undoing, id(provider)]
    if not entries:
        return _NOTHING  # nothing active (a framework imported, none of its contexts entered): no allocation
    return tuple(entries), NO_UNDO if undoing is None else frozenset(undoing)


def _needs_undo(provider: Any, undo_check: Callable[[Any], bool] | bool, entries: list[tuple[Any, Any]]) -> bool:
    if undo_check is True:
        return True
    try:
        return bool(undo_check(entries[-1][1]))  # type: ignore[operator]
    except Exception as exc:  # part of capturing: it names the provider like a failing capture()
        entries.clear()  # as for a failing capture()
        raise ProviderError(provider.name, "capture", exc) from exc
