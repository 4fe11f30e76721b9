"""Forking a framework's application context so the child gets its own ``g``.

Flask (>= 2.2) and Quart keep the current app context object in a ContextVar, so ``copy_context()`` alone hands
the child the *parent's* app context and therefore the parent's ``g``: writes in the worker leak back. The Flask
and Quart providers install a fork instead: the same object in every respect (app, url adapter, and on the
next Flask the merged request state), except for a private ``g`` and private push bookkeeping.

This module knows no framework; it works on any object with a ``g`` attribute and an instance ``__dict__``.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["fork_app_context", "g_values"]

#: Per-push bookkeeping that must not be shared with the parent: Flask >= 2.2 and Quart keep the ContextVar
#: tokens of their pushes in ``_cv_tokens``; a fork that shared the list could pop the parent's token.
_PUSH_STATE: Final = ("_cv_tokens",)


def g_values(app_context: Any) -> dict[str, Any]:
    """A shallow copy of the attributes in the context's ``g``, taken at capture."""
    return dict(vars(app_context.g))


def fork_app_context(app_context: Any, values: dict[str, Any]) -> Any:
    """A copy of ``app_context`` whose ``g`` is a new namespace holding ``values`` (shallowly copied)."""
    fork = object.__new__(type(app_context))
    state = vars(fork)
    state.update(vars(app_context))
    parent_g = app_context.g
    g = object.__new__(type(parent_g))
    vars(g).update(values)
    state["g"] = g
    for name in _PUSH_STATE:
        if name in state:
            state[name] = []
    return fork
