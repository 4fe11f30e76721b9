"""Quart: the app, request and websocket contexts as providers, and ``to_thread`` for sync work.

Quart keeps its contexts in ContextVars, so ``copy_context()`` alone already carries them to a worker thread;
what it carries is the parent's *own* app context object, ``g`` included, so every write in the worker lands in
the parent's ``g`` (this is what ``quart.utils.run_sync`` and ``asyncio.to_thread`` give a Quart app today). The
``quart.app`` provider installs a fork of the app context instead, with a private shallow copy of ``g``, made
afresh for every run. The request and websocket providers hand the child the same request, websocket and
session objects, read-only by convention, exactly like the Flask adapter does.

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

This module is imported by the core as soon as ``quart`` is in ``sys.modules``, and registers its providers
at import. It imports only the core and Quart (Quart >= 0.19 brings Flask with it; the Flask providers read
Flask's own ContextVars, which a Quart app never sets, so the two never see each other's contexts).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final, Literal, ParamSpec, TypeVar

try:
    import quart
    import quart.globals
    import quart.signals
except ModuleNotFoundError as exc:
    if exc.name != "quart":
        raise  # quart is there but broken: its own error says more than ours would
    raise ModuleNotFoundError(
        "ctxsnap.adapters.quart needs quart, which is not installed. Install it with: "
        'pip install "ctxsnap[quart]"',
        name="quart",
    ) from None

from .._appcontext import (
    REFUSED_CALLBACKS,
    copy_state,
    fork_app_context,
    fork_request_context,
    g_values,
    inherited_values_kept,
    strip_state,
)
from .._provider import Provider, register_provider
from .._snapshot import Selection, Snapshot, check_callable, is_wrapped, runner
from .._snapshot import capture as _core_capture
from ._portable_quart import PortableQuartG
from .instrument import CONFIG_INSTRUMENT, instrument_for_app

__all__ = ["CtxSnap", "capture", "to_thread"]

P = ParamSpec("P")
R = TypeVar("R")


def _context_var(name: str) -> ContextVar[Any]:
    # A private attribute of Quart, used only after checking it is what we expect (feature detection, never a
    # version comparison): Quart 0.19 to 0.22 keep each context in its own ContextVar under these names.
    var = getattr(quart.globals, name, None)
    if not isinstance(var, ContextVar):
        raise ImportError(
            f"ctxsnap.adapters.quart needs quart.globals.{name} to be a ContextVar, but this Quart "
            f"({getattr(quart, '__version__', 'unknown version')}) has {type(var).__name__} there. ctxsnap "
            "supports Quart 0.19 and later; run 'python -m ctxsnap' and report the output if yours is newer."
        )
    return var


_cv_app: Final = _context_var("_cv_app")
# Looked up in the module's namespace, not through getattr: only a real ContextVar counts.
_cv_request: ContextVar[Any] | None = vars(quart.globals).get("_cv_request")
_cv_websocket: ContextVar[Any] | None = vars(quart.globals).get("_cv_websocket")
LAYOUT: str
if isinstance(_cv_request, ContextVar) and isinstance(_cv_websocket, ContextVar):
    LAYOUT = "contextvars"
elif _cv_request is None and _cv_websocket is None:
    LAYOUT = "contextvars-merged"
else:  # pragma: no cover - a Quart neither layout describes
    raise ImportError(
        "ctxsnap.adapters.quart does not recognise how this Quart keeps its contexts: quart.globals has "
        f"_cv_request={type(_cv_request).__name__} and _cv_websocket={type(_cv_websocket).__name__}. Please "
        "report it with the output of 'python -m ctxsnap'."
    )
MERGED: Final = LAYOUT == "contextvars-merged"

#: The merged layout's request and websocket state, by the app context's attribute names.
_REQUEST_STATE: Final = ("_request", "_session", "_flashes")
_WEBSOCKET_STATE: Final = ("_websocket", "_session")
#: The per-request (per-websocket) callbacks a worker must not add to: they act on the parent's response.
_AFTER_CALLBACKS: Final = ("_after_request_functions", "_after_websocket_functions")

_NO_VALUES: Final[dict[str, Any]] = {}


# -- policy ---------------------------------------------------------------------------------------------------
# The same surface and the same rules as the Flask adapter: the app's settings count once the extension is
# installed, a per-call override beats them, and "share" cannot be combined with teardown.

EXTENSION_KEY: Final = "ctxsnap"
CONFIG_G: Final = "CTXSNAP_G"
CONFIG_TEARDOWN: Final = "CTXSNAP_TEARDOWN"

_COPY: Final = "copy"
_SHARE: Final = "share"
_TEARDOWN: Final = "teardown"

#: The override of one ``capture(g=..., teardown=...)`` call in this thread. A thread-local rather than a
#: ContextVar: the capture is synchronous, and a ContextVar would be copied into the very snapshot it configures,
#: so a capture made later inside the child would inherit the parent's override.
_override = threading.local()


def _mode_from(g: object, teardown: object, where: str) -> str:
    if g not in ("copy", "share"):
        raise ValueError(
            f"{where}: the g policy must be 'copy' (the child gets its own shallow copy of g, the default) or "
            f"'share' (the child uses the parent's g), got {g!r}"
        )
    if not isinstance(teardown, bool):
        raise TypeError(f"{where}: teardown must be True or False, got {teardown!r} ({type(teardown).__name__})")
    if not teardown:
        return _COPY if g == "copy" else _SHARE
    if g == "share":
        raise ValueError(
            f"{where}: g='share' cannot be combined with teardown mode: the child's teardown_appcontext "
            "functions would clean up the parent's own g (a close_db teardown would close the request's "
            "database connection). Use g='copy' with teardown, or share without it."
        )
    return _TEARDOWN


def _mode_for(app: Any) -> str:
    """The policy of a capture in ``app``: the per-call override, over the app's config, over the defaults."""
    override = getattr(_override, "policy", None)
    installed = EXTENSION_KEY in app.extensions
    if override is None and not installed:
        return _COPY  # the common case, on every capture: no extension, no override
    g, teardown = override or (None, None)
    if installed:
        config = app.config
        if g is None:
            g = config.get(CONFIG_G, "copy")
        if teardown is None:
            teardown = config.get(CONFIG_TEARDOWN, False)
        where = f"app.config[{CONFIG_G!r}]/[{CONFIG_TEARDOWN!r}] of {app.name!r} (with any capture() override)"
    else:
        where = "ctxsnap.adapters.quart.capture()"
    return _mode_from("copy" if g is None else g, False if teardown is None else teardown, where)


class CtxSnap:
    """The Quart extension: ``CtxSnap(app)`` or ``CtxSnap().init_app(app)``; per-app policy for ``g`` and teardown.

    ``app.config["CTXSNAP_G"]`` is ``"copy"`` (the default: the worker gets its own ``g`` holding a shallow copy
    of the parent's attributes) or ``"share"`` (the worker uses the parent's own ``g`` object).
    ``app.config["CTXSNAP_TEARDOWN"]`` is ``False`` (the default: nothing of Quart's lifecycle runs in the
    worker) or ``True`` (each run gets its own app context, and Quart's teardown_appcontext functions run once
    for it, in the worker; teardown_request/teardown_websocket never run there). The config is read at each
    capture. Without the extension the defaults apply and everything else works.
    """

    def __init__(self, app: quart.Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: quart.Quart) -> None:
        if not isinstance(app, quart.Quart):
            raise TypeError(
                f"ctxsnap.adapters.quart.CtxSnap.init_app() takes a quart.Quart application, got "
                f"{type(app).__name__}; for a Flask app use ctxsnap.adapters.flask.CtxSnap"
            )
        app.config.setdefault(CONFIG_G, "copy")
        app.config.setdefault(CONFIG_TEARDOWN, False)
        # A bad setting fails at start-up, not in the first request that hands off work.
        _mode_from(app.config[CONFIG_G], app.config[CONFIG_TEARDOWN], f"app.config of {app.name!r}")
        # CTXSNAP_INSTRUMENT = True: process-wide instrumentation (docs/instrument.md); read once, at start-up.
        instrument_for_app(app.config.get(CONFIG_INSTRUMENT, False), f"app.config[{CONFIG_INSTRUMENT!r}]")
        app.extensions[EXTENSION_KEY] = self

    def __repr__(self) -> str:
        return "<ctxsnap.adapters.quart.CtxSnap>"


def capture(
    *,
    g: Literal["copy", "share"] | None = None,
    teardown: bool | None = None,
    include: Selection = None,
    exclude: Selection = None,
) -> Snapshot:
    """:func:`ctxsnap.capture` with a ``g``/``teardown`` policy for this capture only.

    ``g="share"`` lets the child use the parent's ``g``; ``teardown=True`` gives each run its own app context
    whose ``teardown_appcontext`` functions run in the child after the work. ``None`` keeps the app's setting
    (or the default, ``"copy"`` and ``False``).
    """
    if g is None and teardown is None:
        return _core_capture(include=include, exclude=exclude)
    _mode_from("copy" if g is None else g, False if teardown is None else teardown, "capture()")
    previous = getattr(_override, "policy", None)
    _override.policy = (g, teardown)
    try:
        return _core_capture(include=include, exclude=exclude)
    finally:
        if previous is None:
            del _override.policy
        else:
            _override.policy = previous


# -- providers ------------------------------------------------------------------------------------------------

def _fork(mode: str, context: Any, values: dict[str, Any]) -> Any:
    # A fork per run, not per capture: one wrapped callable running in two workers gives each its own g. Even
    # under "share" the child gets a fork holding the parent's g, never the parent's object: extensions key
    # per-context state on the app context's identity.
    fork = fork_app_context(context, values)
    if mode is _SHARE:
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

    def capture(self) -> tuple[str, Any, dict[str, Any]] | None:
        context = _cv_app.get(None)
        if context is None:
            return None
        mode = _mode_for(context.app)
        # Under "copy" the values are taken now, at capture: a parent write after capture is not seen.
        return mode, context, _NO_VALUES if mode is _SHARE else g_values(context)

    def apply(self, state: tuple[str, Any, dict[str, Any]]) -> Any:
        mode, context, values = state
        fork = _fork(mode, context, values)
        _cv_app.set(fork)
        if mode is not _TEARDOWN:
            return None
        _send(quart.signals.appcontext_pushed, fork.app)
        return fork

    def needs_undo(self, state: tuple[str, Any, dict[str, Any]]) -> bool:
        # Only teardown mode has teardown functions to run; every other run skips the undo step altogether.
        return state[0] is _TEARDOWN

    def undo(self, state: tuple[str, Any, dict[str, Any]], token: Any, exc: BaseException | None) -> None:
        if token is None:
            return
        app = token.app
        try:
            # Handlers read the whole g; g.pop does not hand out what the child inherited unchanged (the
            # parent tears that down itself; see ctxsnap._appcontext.inherited_values_kept).
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
            current = _fork(_COPY, state, _NO_VALUES)
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


# -- the thread helper ----------------------------------------------------------------------------------------

async def to_thread(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``func(*args, **kwargs)`` in a worker thread, inside the caller's snapshot; await the result.

    The worker sees the request or websocket, ``session``, ``current_app``, its own copy of ``g`` and every
    ContextVar as they were at the call. It runs in the loop's default executor, like Quart's own
    ``run_sync``. If the caller is cancelled the thread still finishes its call (a thread cannot be
    interrupted); its result is dropped and the worker's own context is left as it was.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "ctxsnap.adapters.quart.to_thread() needs a running asyncio event loop: await it inside an async "
            "view or handler. From sync code use ctxsnap.wrap(fn) or ctxsnap.ThreadPoolExecutor; under trio "
            "(quart-trio) use ctxsnap.adapters.anyio.run_sync."
        ) from None
    if is_wrapped(func):
        # A callable from Snapshot.wrap keeps the snapshot the user chose for it, as ContextExecutor does.
        return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))
    check_callable("to_thread", func)
    # The worker calls the snapshot's run directly: no functools.wraps wrapper and no partial per call.
    result: R = await loop.run_in_executor(None, runner(_core_capture()), func, args, kwargs)
    return result
