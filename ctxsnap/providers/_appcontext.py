"""Forking a framework's application context so the child gets its own ``g``.

Flask (>= 2.2) and Quart keep the current app context object in a ContextVar, so ``copy_context()`` alone hands
the child the *parent's* app context and therefore the parent's ``g``: writes in the worker leak back. The Flask
and Quart providers install a fork instead: the same object in every respect (app, url adapter, and on the
next Flask the merged request state), except for a private ``g`` and private push bookkeeping.

The merged layout (Flask main, the coming 3.2, pallets/flask#5812; Quart 0.23) keeps the request's or the
websocket's state in the app context itself: :func:`strip_state` and :func:`copy_state` move it in and out of
a fork by attribute name, and :data:`REFUSED_CALLBACKS` stands in for the per-request callback lists that a
worker must not add to (``after_this_request``).

This module knows no framework; it works on any object with a ``g`` attribute and an instance ``__dict__``.
A fork is made for every run of a snapshot, so the fork and the copy of ``g`` stay on the plainest, fastest
operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, NoReturn, SupportsIndex

__all__ = [
    "REFUSED_CALLBACKS",
    "copy_state",
    "fork_app_context",
    "fork_request_context",
    "g_values",
    "inherited_values_kept",
    "strip_state",
]

#: Per-push bookkeeping that must not be shared with the parent: Flask >= 2.2 and Quart <= 0.22 keep the
#: ContextVar tokens of their pushes in ``_cv_tokens``; a fork that shared the list could pop the parent's token.
_PUSH_STATE: Final = "_cv_tokens"
#: The same on the merged layout: one token and a push count per context. A fork starts as never pushed.
_MERGED_PUSH_STATE: Final[dict[str, Any]] = {"_cv_token": None, "_push_count": 0}

_new: Final = object.__new__
_set_attribute: Final = object.__setattr__
_MISSING: Final = object()


class _RefusedCallbacks(list[Any]):
    """The ``after_this_request`` list of a worker's view of the request: adding to it raises.

    The callbacks of that list run on the parent's response, which the worker neither sees nor times (it may
    already be sent), so a callback registered from the worker would silently change, or miss, another
    response. Always empty, so one instance serves every fork.
    """

    def _refuse(self, *args: object) -> NoReturn:
        raise RuntimeError(
            "after_this_request() cannot be used in a ctxsnap worker. Register the callback in the view before "
            "handing off the work: the parent's response is not the worker's to change."
        )

    def append(self, item: Any) -> None:
        self._refuse()

    def extend(self, items: Iterable[Any]) -> None:
        self._refuse()

    def insert(self, index: SupportsIndex, item: Any) -> None:
        self._refuse()

    def __iadd__(self, items: Iterable[Any]) -> NoReturn:  # type: ignore[misc]
        self._refuse()


REFUSED_CALLBACKS: Final = _RefusedCallbacks()


def g_values(app_context: Any) -> dict[str, Any]:
    """A shallow copy of the attributes in the context's ``g``, taken at capture."""
    values: dict[str, Any] = app_context.g.__dict__.copy()
    return values


def fork_app_context(app_context: Any, values: dict[str, Any]) -> Any:
    """A copy of ``app_context`` whose ``g`` is a new namespace holding ``values`` (shallowly copied)."""
    state = app_context.__dict__.copy()
    g = _new(state["g"].__class__)
    # object.__setattr__, not "g.__dict__ = ...": Flask's and Quart's g classes define __setattr__, which would
    # store an assigned __dict__ as an attribute named "__dict__". Not g.__dict__.update(values) either: on
    # CPython 3.11+ that first builds the new object's dict from its inline values, then grows it key by key,
    # which cost 40% more instructions than handing it a copy (issue 14).
    _set_attribute(g, "__dict__", values.copy())
    state["g"] = g
    if _PUSH_STATE in state:
        state[_PUSH_STATE] = []
    elif "_cv_token" in state:
        state.update(_MERGED_PUSH_STATE)
    fork = _new(app_context.__class__)
    # Assignment is safe here: Flask's and Quart's app-context classes keep the default __setattr__ (checked
    # in every matrix cell by the adapters' tests, which read every attribute through the fork).
    fork.__dict__ = state
    return fork


def fork_request_context(request_context: Any, callbacks: Iterable[str]) -> Any:
    """A view of a request (or websocket) context for workers: the same request, session and URL adapter.

    Only the per-request callback lists named in ``callbacks`` differ: they refuse additions
    (:data:`REFUSED_CALLBACKS`). Made once per capture and never pushed, so nothing else of it can change.
    """
    state = request_context.__dict__.copy()
    for name in callbacks:
        if name in state:
            state[name] = REFUSED_CALLBACKS
    if _PUSH_STATE in state:
        state[_PUSH_STATE] = []
    fork = _new(request_context.__class__)
    fork.__dict__ = state
    return fork


def strip_state(fork: Any, names: Iterable[str]) -> None:
    """Set each of ``names`` that the fork has to ``None``: a merged context without its request state."""
    state = vars(fork)
    for name in names:
        if name in state:
            state[name] = None


def copy_state(source: Any, target: Any, names: Iterable[str]) -> None:
    """Copy the attributes ``names`` of ``source`` into ``target`` (absent ones as ``None``)."""
    source_state, target_state = vars(source), vars(target)
    for name in names:
        target_state[name] = source_state.get(name)


@contextmanager
def inherited_values_kept(fork: Any, inherited: dict[str, Any]) -> Iterator[None]:
    """Around the child's teardown_appcontext: every value of ``g`` stays readable, inherited ones included.

    What the child inherited unchanged still belongs to the parent, which tears it down itself: a teardown
    such as the Flask tutorial's ``close_db`` (``g.pop("db", None)``, then ``close()``) must not close the
    request's connection from the worker, while a connection the child opened itself is closed. So, for the
    teardown only, ``g.pop`` of a value the child inherited unchanged takes it out of the child's ``g`` and
    answers as if it were absent (the default, or ``KeyError``); reading it (``g.request_id``, ``g.get``) works.
    """
    g = fork.g
    original = type(g)
    guarded = _guarded_class(original)
    try:
        # object.__setattr__: Flask's and Quart's g classes define __setattr__, which would store "__class__" in
        # the namespace instead of changing the class.
        _set_class(g, guarded)
    except TypeError:  # a custom g class whose layout a subclass cannot share: take inherited values out instead
        _drop_inherited(g, inherited)
        yield
        return
    _GUARDED[id(g)] = inherited
    try:
        yield
    finally:
        del _GUARDED[id(g)]
        _set_class(g, original)


#: id() of a guarded g -> the values it inherited; an entry lives only while the child's teardown runs.
_GUARDED: Final[dict[int, dict[str, Any]]] = {}
#: g class -> its guarded subclass, made once per class.
_GUARDED_CLASSES: Final[dict[type, type]] = {}


def _guarded_class(cls: type) -> type:
    guarded = _GUARDED_CLASSES.get(cls)
    if guarded is not None:
        return guarded
    original_pop = getattr(cls, "pop", None)

    def pop(self: Any, name: str, *default: Any) -> Any:
        inherited = _GUARDED.get(id(self))
        if inherited is not None:
            namespace = vars(self)
            value = namespace.get(name, _MISSING)
            if value is not _MISSING and inherited.get(name, _MISSING) is value:
                del namespace[name]
                if default:
                    return default[0]
                raise KeyError(name)
        if original_pop is None:
            raise AttributeError(f"{cls.__name__!r} object has no attribute 'pop'")
        return original_pop(self, name, *default)

    guarded = type(
        cls.__name__, (cls,), {"pop": pop, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    )
    _GUARDED_CLASSES[cls] = guarded
    return guarded


def _set_class(g: Any, cls: type) -> None:
    object.__setattr__(g, "__class__", cls)


def _drop_inherited(g: Any, inherited: dict[str, Any]) -> None:
    namespace = vars(g)
    for name, value in inherited.items():
        if namespace.get(name, _MISSING) is value:
            del namespace[name]
