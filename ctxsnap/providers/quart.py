"""Quart: the app, request and websocket contexts as providers, carried into threads.

Quart keeps its contexts in ContextVars, so ``copy_context()`` alone already carries them to a worker thread;
what it carries is the parent's *own* app context object, ``g`` included, so every write in the worker lands in
the parent's ``g`` (this is what ``quart.utils.run_sync`` and ``asyncio.to_thread`` give a Quart app today). The
``quart.app`` provider installs a fork of the app context instead, with a private shallow copy of ``g``, made
afresh for every run. The request and websocket providers hand the child the same request, websocket and
session objects, read-only by convention, exactly like the Flask providers do.

Where Quart keeps its contexts is detected from what ``quart.globals`` holds, never from version numbers:

* ``_cv_app``, ``_cv_request`` and ``_cv_websocket`` (Quart 0.19 to 0.22): one ContextVar per context;
* ``_cv_app`` alone (Quart 0.23, the same merged layout as the next Flask): the app context holds the request
  or websocket state too. The child gets a fork of it without that state, which the request and websocket
  providers put back when they are selected, so ``exclude=["quart.request"]`` still leaves the request behind.

On both, a worker's ``after_this_request``/``after_this_websocket`` raises: its callback would run on the
parent's response, which the worker does not own (it may be sent already).

Nothing of Quart's lifecycle runs in the child by default. With ``CTXSNAP_TEARDOWN = True`` (or
``capture(teardown=True)``) each run gets its own app context and, after the run, Quart's
``teardown_appcontext`` functions run once *in the worker thread* (that is where a per-thread database session
lives); ``teardown_request``/``teardown_websocket`` never run in the child.

This module is imported by the core as soon as ``quart`` is in ``sys.modules`` (by name, from a table in
``ctxsnap._provider``), and registers its providers at import. The helpers users import (``to_thread``, the
``CtxSnap`` extension, ``capture()`` with a per-call policy) are the Quart adapter's:
:mod:`ctxsnap.adapters.quart`; the ``g``/teardown policy is shared with Flask (``ctxsnap/providers/_policy.py``).
It imports only the core and Quart (Quart >= 0.19 brings Flask with it; the Flask providers read
Flask's own ContextVars, which a Quart app never sets, so the two never see each other's contexts).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final

from .._extras import framework_import

with framework_import("quart", extra="quart", importer=__name__):
    import quart
    import quart.globals
    import quart.signals

from .._provider import Provider, register_provider
from ._appcontext import (
    REFUSED_CALLBACKS,
    copy_state,
    fork_app_context,
    fork_request_context,
    inherited_values_kept,
    strip_state,
)
from ._policy import COPY, NO_VALUES, SHARE, TEARDOWN, Policy
from ._portable_quart import PortableQuartG

__all__ = ["LAYOUT", "MERGED", "POLICY", "AppContextProvider"]

#: The g/teardown policy of captures in a Quart app; ``ctxsnap.adapters.quart`` sets its per-call override.
POLICY: Final = Policy("ctxsnap.adapters.quart")


def _context_var(name: str) -> ContextVar[Any]:
    # A private attribute of Quart, used only after checking it is what we expect (feature detection, never a
    # version comparison): Quart 0.19 to 0.22 keep each context in its own ContextVar under these names.
    var = getattr(quart.globals, name, None)
    if not isinstance(var, ContextVar):
        raise ImportError(
            f"This Quart has no ContextVar at quart.globals.{name}. ctxsnap supports Quart 0.19 and later: "
            f"upgrade, or if yours ({getattr(quart, '__version__', 'unknown version')}, with "
            f"{type(var).__name__} there) is newer, report the output of 'python -m ctxsnap'."
        )
    return var


_cv_app: Final = _context_var("_cv_app")
# Looked up in the module's namespace, not through getattr: only a real ContextVar counts.
_cv_request: ContextVar[Any] | None = vars(quart.globals).get("_cv_request")
_cv_websocket: ContextVar[Any] | None = vars(quart.globals).get("_cv_websocket")
#: Where this Quart keeps its contexts: ``"contextvars"`` (0.19 to 0.22) or ``"contextvars-merged"`` (0.23).
LAYOUT: str
if isinstance(_cv_request, ContextVar) and isinstance(_cv_websocket, ContextVar):
    LAYOUT = "contextvars"
elif _cv_request is None and _cv_websocket is None:
    LAYOUT = "contextvars-merged"
else:  # pragma: no cover - a Quart neither layout describes
    raise ImportError(
        "ctxsnap.providers.quart does not recognise this Quart's contexts. Please report it with the output of "
        f"'python -m ctxsnap' (quart.globals has _cv_request={type(_cv_request).__name__} and "
        f"_cv_websocket={type(_cv_websocket).__name__})."
    )
#: Whether the app context holds the request and websocket state (the merged layout).
MERGED: Final = LAYOUT == "contextvars-merged"

#: The merged layout's request and websocket state, by the app context's attribute names.
_REQUEST_STATE: Final = ("_request", "_session", "_flashes")
_WEBSOCKET_STATE: Final = ("_websocket", "_session")
#: The per-request (per-websocket) callbacks a worker must not add to: they act on the parent's response.
_AFTER_CALLBACKS: Final = ("_after_request_functions", "_after_websocket_functions")


# -- providers ------------------------------------------------------------------------------------------------


def _fork(mode: int, context: Any, values: dict[str, Any]) -> Any:
    # A fork per run, not per capture: one wrapped callable running in two workers gives each its own g. Even
    # under "share" the child gets a fork holding the parent's g, never the parent's object: extensions key
    # per-context state on the app context's identity.
    fork = fork_app_context(context, values)
    if mode == SHARE:
        vars(fork)["g"] = context.g
    if MERGED:
        strip_state(fork, (*_REQUEST_STATE, *_WEBSOCKET_STATE))
        _refuse_after_callbacks(fork)
    return fork


def _refuse_after_callbacks(context: Any) -> None:
    state = vars(context)
    for name in _AFTER_CALLBACKS:
        if name in state:
            state[name] = REFUSED_CALLBACKS


class AppContextProvider(PortableQuartG, Provider):
    """``quart.app``: ``current_app`` and a ``g`` of the child's own (or the parent's, under ``share``)."""

    name = "quart.app"
    owned_vars = (_cv_app,)

    def capture(self) -> tuple[int, Any, dict[str, Any]] | None:
        context = _cv_app.get(None)
        return None if context is None else POLICY.app_state(context)

    def apply(self, state: tuple[int, Any, dict[str, Any]]) -> Any:
        mode, context, values = state
        fork = _fork(mode, context, values)
        _cv_app.set(fork)
        if mode != TEARDOWN:
            return None
        _send(quart.signals.appcontext_pushed, fork.app)
        return fork

    def needs_undo(self, state: tuple[int, Any, dict[str, Any]]) -> bool:
        # Only teardown mode has teardown functions to run; every other run skips the undo step altogether.
        return state[0] == TEARDOWN

    def undo(self, state: tuple[int, Any, dict[str, Any]], token: Any, exc: BaseException | None) -> None:
        if token is None:
            return
        app = token.app
        try:
            # Handlers read the whole g; g.pop does not hand out what the child inherited unchanged (the
            # parent tears that down itself; see ctxsnap.providers._appcontext.inherited_values_kept).
            with inherited_values_kept(token, state[2]):
                # Quart runs teardown_appcontext functions in registration order (Flask runs them reversed).
                for function in app.teardown_appcontext_funcs:
                    _call_here(function, exc)
                _send(quart.signals.appcontext_tearing_down, app, exc=exc)
        finally:
            _send(quart.signals.appcontext_popped, app)


class _SeparateContextProvider(Provider):
    """Quart 0.19 to 0.22: the parent's request or websocket context, in its own ContextVar.

    The child gets a view of it made at capture: the same request (websocket), session and URL adapter, and
    per-request callbacks that refuse additions. It is set, never pushed, so nothing of its lifecycle runs.
    """

    def __init__(self, name: str, var: ContextVar[Any]) -> None:
        self.name = name
        self._var = var
        self.owned_vars = (var,)

    def capture(self) -> Any:
        context = self._var.get(None)
        return None if context is None else fork_request_context(context, _AFTER_CALLBACKS)

    def apply(self, state: Any) -> None:
        # Set even where the child's context already holds the parent's own (it runs in a copy of the parent's
        # context): the child must get the view, and include= captures may leave the contextvars provider out.
        self._var.set(state)


class _MergedStateProvider(Provider):
    """Quart 0.23: the request (or websocket) state of the app context, put into the child's fork of it.

    It owns no ContextVar: the app context's variable belongs to ``quart.app``, and excluding the request must
    not take the app context with it.
    """

    def __init__(self, name: str, state: tuple[str, ...]) -> None:
        self.name = name
        #: The attribute that says this kind of state is present, then every attribute of that state.
        self._state = state

    def capture(self) -> Any:
        context = _cv_app.get(None)
        if context is None or vars(context).get(self._state[0]) is None:
            return None
        return context

    def apply(self, state: Any) -> None:
        current = _cv_app.get(None)
        if current is None or current is state:
            # quart.app was left out: a request cannot be active without an app context on this Quart, so the
            # child gets one of its own, with an empty g (the parent's g was excluded with quart.app).
            current = _fork(COPY, state, NO_VALUES)
            _cv_app.set(current)
        copy_state(state, current, self._state)


def _call_here(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a Quart callback in *this* thread: a sync one directly, an async one on a private event loop.

    Quart itself would send a sync callback to its executor (``app.ensure_async``), that is to another thread;
    a teardown that closes a per-thread resource must run in the thread that opened it.
    """
    if inspect.iscoroutinefunction(function):
        return asyncio.run(function(*args, **kwargs))
    return function(*args, **kwargs)


def _send(signal: Any, sender: Any, **kwargs: Any) -> None:
    # blinker's send(_async_wrapper=) only exists from blinker 1.7, and Quart 0.19 allows 1.6: call the
    # receivers ourselves.
    for receiver in signal.receivers_for(sender):
        _call_here(receiver, sender, **kwargs)


def _make_providers() -> tuple[Provider, Provider, Provider]:
    """``quart.app``; ``quart.request`` (``request``, ``session``, ``url_for``); ``quart.websocket``."""
    if _cv_request is None or _cv_websocket is None:
        return (
            AppContextProvider(),
            _MergedStateProvider("quart.request", _REQUEST_STATE),
            _MergedStateProvider("quart.websocket", _WEBSOCKET_STATE),
        )
    return (
        AppContextProvider(),
        _SeparateContextProvider("quart.request", _cv_request),
        _SeparateContextProvider("quart.websocket", _cv_websocket),
    )


for _instance in _make_providers():
    try:
        register_provider(_instance)
    except ValueError:
        pass  # already registered (the module was imported again, e.g. after a test reloaded it)
del _instance
