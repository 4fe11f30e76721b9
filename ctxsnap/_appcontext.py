"""Forking a framework's application context so the child gets its own ``g``.

Flask (>= 2.2) and Quart keep the current app context object in a ContextVar, so ``copy_context()`` alone hands
the child the *parent's* app context and therefore the parent's ``g``: writes in the worker leak back. The Flask
and Quart providers install a fork instead: the same object in every respect (app, url adapter, and on the
next Flask the merged request state), except for a private ``g`` and private push bookkeeping.

This module knows no framework; it works on any object with a ``g`` attribute and an instance ``__dict__``.
A fork is made for every run of a snapshot, so the fork and the copy of ``g`` stay on the plainest, fastest
operations.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["drop_inherited", "fork_app_context", "g_values"]

#: Per-push bookkeeping that must not be shared with the parent: Flask >= 2.2 and Quart keep the ContextVar
#: tokens of their pushes in ``_cv_tokens``; a fork that shared the list could pop the parent's token.
_PUSH_STATE: Final = "_cv_tokens"

_new: Final = object.__new__
_MISSING: Final = object()


def g_values(app_context: Any) -> dict[str, Any]:
    """A shallow copy of the attributes in the context's ``g``, taken at capture."""
    values: dict[str, Any] = app_context.g.__dict__.copy()
    return values


def fork_app_context(app_context: Any, values: dict[str, Any]) -> Any:
    """A copy of ``app_context`` whose ``g`` is a new namespace holding ``values`` (shallowly copied)."""
    state = app_context.__dict__.copy()
    g = _new(state["g"].__class__)
    # update(), not assignment: Flask's and Quart's g classes define __setattr__, which would store an
    # assigned __dict__ as an attribute named "__dict__".
    g.__dict__.update(values)
    state["g"] = g
    if _PUSH_STATE in state:
        state[_PUSH_STATE] = []
    fork = _new(app_context.__class__)
    # Assignment is safe here: Flask's and Quart's app-context classes keep the default __setattr__ (checked
    # in every matrix cell by the adapters' tests, which read every attribute through the fork).
    fork.__dict__ = state
    return fork


def drop_inherited(fork: Any, inherited: dict[str, Any]) -> None:
    """Take out of the fork's ``g`` what it still holds unchanged from ``inherited``, before its teardown runs.

    Those objects belong to the parent, which tears them down itself: a teardown such as the Flask tutorial's
    ``close_db`` (``g.pop("db")`` then ``close()``) must not close the request's connection from the worker,
    while a connection the child opened itself is still closed.
    """
    namespace = vars(fork.g)
    for name, value in inherited.items():
        if namespace.get(name, _MISSING) is value:
            del namespace[name]
