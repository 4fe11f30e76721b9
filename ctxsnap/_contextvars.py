"""The built-in provider for every ``contextvars.ContextVar``.

It is the base layer of a snapshot: capture is ``contextvars.copy_context()`` (constant time, the context is a
persistent mapping), and each run of the snapshot happens inside a fresh ``Context.copy()`` of it. Running in a
copy is what makes one wrapped callable safe to run in many workers at once (a ``Context`` can be entered by
only one thread at a time) and what keeps a child's ``set`` from reaching the parent, a sibling, or the next
task on the same worker.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Collection, Iterable
from contextvars import Context, ContextVar
from typing import Any

from ._provider import Provider

__all__ = ["ContextVarsProvider", "rebuild_context"]


class ContextVarsProvider(Provider):
    """Carries every ContextVar as it is at capture. The snapshot runs the child in a copy of this context."""

    name = "contextvars"

    def capture(self) -> Context:
        return contextvars.copy_context()

    def apply(self, state: Any) -> None:
        # Nothing to do: the snapshot already runs the child inside a copy of the captured context.
        return None


def _set_all(items: Iterable[tuple[ContextVar[Any], Any]]) -> None:
    for var, value in items:
        var.set(value)


def rebuild_context(context: Context, keep: Callable[[ContextVar[Any]], bool]) -> Context:
    """A new Context holding only the variables of ``context`` for which ``keep`` is true.

    A ``Context`` cannot forget a variable, so leaving some out means building a new one: this costs time in
    the number of variables set, which is why only ``include``/``exclude`` of individual variables pays it.
    """
    fresh = Context()
    fresh.run(_set_all, [(var, value) for var, value in context.items() if keep(var)])
    return fresh


def without(context: Context, drop: Collection[ContextVar[Any]]) -> Context:
    if not any(var in context for var in drop):
        return context
    return rebuild_context(context, lambda var: var not in drop)
