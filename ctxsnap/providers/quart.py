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
``ctxsnap._registry``), detects the layout, and registers its providers at import: ``quart.app`` is here, the
request and websocket providers of each layout are in ``_quart_request``, and running Quart's callbacks in the
worker thread is ``_quart_callbacks``' job. The helpers users import (``to_thread``, the
``CtxSnap`` extension, ``capture()`` with a per-call policy) are the Quart adapter's:
:mod:`ctxsnap.adapters.quart`; the ``g``/teardown policy is shared with Flask (``ctxsnap/providers/_policy.py``).
It imports only the core and Quart (Quart >= 0.19 brings Flask with it; the Flask providers read
Flask's own ContextVars, which a Quart app never sets, so the two never see each other's contexts).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Final

from .._extras import framework_import

with framework_import("quart", extra="quart", importer=__name__):
    import quart
    import quart.globals
    import quart.signals

from .._provider import Provider, register_provider
from ._appcontext import REFUSED_CALLBACKS, fork_app_context, inherited_values_kept, strip_state
from ._policy import SHARE, TEARDOWN, Policy
from ._portable_quart import PortableQuartG
from ._quart_callbacks import call_here, send
from ._quart_request import (
    AFTER_CALLBACKS,
    REQUEST_STATE,
    WEBSOCKET_STATE,
    MergedStateProvider,
    SeparateContextProvider,
)

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


# -- providers ------------------------------------------------------------------------------------------------


def _fork(mode: int, context: Any, values: dict[str, Any]) -> Any:
    # A fork per run, not per capture: one wrapped callable running in two workers gives each its own g. Even
    # under "share" the child gets a fork holding the parent's g, never the parent's object: extensions key
    # per-context state on the app context's identity.
    fork = fork_app_context(context, values)
    if mode == SHARE:
        vars(fork)["g"] = context.g
    if MERGED:
        strip_state(fork, (*REQUEST_STATE, *WEBSOCKET_STATE))
        _refuse_after_callbacks(fork)
    return fork


def _refuse_after_callbacks(context: Any) -> None:
    state = vars(context)
    for name in AFTER_CALLBACKS:
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
        send(quart.signals.appcontext_pushed, fork.app)
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
                    call_here(function, exc)
                send(quart.signals.appcontext_tearing_down, app, exc=exc)
        finally:
            send(quart.signals.appcontext_popped, app)


def _make_providers() -> tuple[Provider, Provider, Provider]:
    """``quart.app``; ``quart.request`` (``request``, ``session``, ``url_for``); ``quart.websocket``."""
    if _cv_request is None or _cv_websocket is None:
        return (
            AppContextProvider(),
            MergedStateProvider("quart.request", REQUEST_STATE, _cv_app, _fork),
            MergedStateProvider("quart.websocket", WEBSOCKET_STATE, _cv_app, _fork),
        )
    return (
        AppContextProvider(),
        SeparateContextProvider("quart.request", _cv_request),
        SeparateContextProvider("quart.websocket", _cv_websocket),
    )


for _instance in _make_providers():
    try:
        register_provider(_instance)
    except ValueError:
        pass  # already registered (the module was imported again, e.g. after a test reloaded it)
del _instance
