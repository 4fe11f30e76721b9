"""Flask: the app context (with a private ``g``) and the request context, carried into threads.

Flask keeps the current app and request context in context-local storage, which a worker thread does not
inherit, and the tools that move it there get it wrong in different ways (see ``docs/flask.md``): Flask's own
``copy_current_request_context`` gives the worker an empty ``g`` and runs the request's teardown a second time,
``copy_context().run`` alone hands the worker the parent's ``g`` object itself, and one wrapper shared by two
workers crashes. This module registers two providers that do it once and right, on every Flask from 1.1 on:

* ``flask.app`` installs, per run, a fork of the parent's app context: same app and URL adapter, a private ``g``
  holding a shallow copy of the parent's attributes (or, by policy, the parent's own ``g``);
* ``flask.request`` installs a view of the parent's request context (the same request, session and URL
  adapter), so ``request``, ``session`` and ``url_for`` work, without pushing it: nothing of the request's
  lifecycle runs in the worker, and the view's ``after_this_request`` list refuses additions, since its
  callbacks would run on the parent's response.

Both load by themselves the first time a snapshot is captured while Flask is imported (the core imports this
module then, by name, from a table in ``ctxsnap._provider``). The helpers users import, the ``CtxSnap``
extension, ``capture()`` with a per-call policy and a drop-in ``copy_current_request_context``, are the Flask
adapter's: :mod:`ctxsnap.adapters.flask`. The ``g``/teardown policy itself is shared with Quart
(``ctxsnap/providers/_policy.py``).

Where Flask keeps its contexts is detected from what ``flask.globals`` holds, never from version numbers:

* ContextVars ``_cv_app``/``_cv_request`` (Flask >= 2.2). A release without ``_cv_request`` (the request state
  merged into the app context, pallets/flask#5812) is handled too: the child gets a fork of the merged context
  that is set, never pushed, so popping it can never run the request's teardown;
* Werkzeug ``LocalStack`` stacks whose storage is a ContextVar (Flask 1.1/2.0 on Werkzeug 2.0). A copied Context
  holds the parent's stack *list*, and ``LocalStack.pop`` on a stack of two or more pops that list in place,
  so the child always gets stack lists of its own and never pops one it inherited;
* ``LocalStack`` stacks keyed by thread id (Werkzeug < 2.0): nothing can carry them to another thread, so a capture
  inside a Flask context is refused with an error that says to upgrade Werkzeug, rather than carrying nothing.
"""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from typing import Any, Final

try:
    import flask
    import flask.globals
except ModuleNotFoundError as exc:
    if exc.name != "flask":
        raise  # flask is there but broken: its own error says more than ours would
    raise ModuleNotFoundError(
        "ctxsnap.providers.flask needs flask, which is not installed. Install it with: "
        'pip install "ctxsnap[flask]"',
        name="flask",
    ) from None

from .._provider import Provider, register_provider
from ._appcontext import (
    REFUSED_CALLBACKS,
    copy_state,
    fork_app_context,
    fork_request_context,
    inherited_values_kept,
    strip_state,
)
from ._policy import COPY, EXTENSION_KEY, NO_VALUES, SHARE, TEARDOWN, Policy
from ._portable_flask import PortableFlaskG

__all__ = ["APP_PROVIDER", "LAYOUT", "POLICY", "REQUEST_PROVIDER"]

#: The g/teardown policy of captures in a Flask app; ``ctxsnap.adapters.flask`` sets its per-call override.
POLICY: Final = Policy("ctxsnap.adapters.flask")
_app_state: Final = POLICY.app_state

_EMPTY_STORAGE: Final[dict[str, Any]] = {}


# -- where this Flask keeps its contexts ----------------------------------------------------------------------

# vars() rather than getattr(): Flask 2.2/2.3 serve the old `_app_ctx_stack` names through a module
# __getattr__ that warns, and the ContextVars must win wherever both exist.
_GLOBALS: Final = vars(flask.globals)
_CV_APP: ContextVar[Any] | None = _GLOBALS.get("_cv_app")
_CV_REQUEST: ContextVar[Any] | None = _GLOBALS.get("_cv_request")
if not isinstance(_CV_APP, ContextVar):
    _CV_APP = None
if _CV_APP is None or not isinstance(_CV_REQUEST, ContextVar):
    _CV_REQUEST = None


def _stack_storage(stack: Any) -> ContextVar[Any] | None:
    """The ContextVar behind a Werkzeug 2.0 ``LocalStack``, or ``None`` when the stack is keyed by thread id.

    Werkzeug 2.0 falls back to a look-alike class keyed by greenlet/thread id under an unpatched gevent or
    eventlet; only a real ContextVar travels with ``contextvars``.
    """
    storage = getattr(getattr(stack, "_local", None), "_storage", None)
    return storage if isinstance(storage, ContextVar) else None


_APP_STACK: Any = None if _CV_APP is not None else _GLOBALS.get("_app_ctx_stack")
_REQUEST_STACK: Any = None if _CV_APP is not None else _GLOBALS.get("_request_ctx_stack")
_APP_STORAGE: ContextVar[Any] | None = _stack_storage(_APP_STACK)
_REQUEST_STORAGE: ContextVar[Any] | None = _stack_storage(_REQUEST_STACK)

#: Where this Flask keeps its contexts: ``"contextvars"``, ``"contextvars-merged"``, ``"localstack"`` or
#: ``"per-thread"`` (captures inside a Flask context are refused there).
LAYOUT: str
if _CV_APP is not None:
    LAYOUT = "contextvars" if _CV_REQUEST is not None else "contextvars-merged"
elif _APP_STORAGE is not None and _REQUEST_STORAGE is not None:
    LAYOUT = "localstack"
elif _APP_STACK is not None and _REQUEST_STACK is not None:
    LAYOUT = "per-thread"
else:  # pragma: no cover - a Flask none of the above describes
    raise ImportError(
        "ctxsnap.providers.flask does not recognise how this Flask keeps its contexts: flask.globals has neither "
        "the ContextVar '_cv_app' nor the LocalStack '_app_ctx_stack'. Please report it with the output of "
        "'python -m ctxsnap'."
    )

_UPGRADE_WERKZEUG: Final = (
    "this Werkzeug keeps Flask's app and request contexts per thread id (Werkzeug < 2.0, or Werkzeug 2.0 under "
    "a gevent/eventlet without contextvars support), so no other thread can see them and ctxsnap refuses to "
    "pretend otherwise. Upgrade Werkzeug to >= 2.0 (pip install 'werkzeug>=2.0,<2.1' keeps Flask 1.1 working), "
    "or capture with exclude=['flask'] to carry only ContextVars"
)


# -- the child's app context ----------------------------------------------------------------------------------


def _fork(mode: int, app_context: Any, values: dict[str, Any]) -> Any:
    fork = fork_app_context(app_context, values)
    if mode == SHARE:
        # Still a fork, never the parent's object: extensions key per-context state on the app context's
        # identity (Flask-SQLAlchemy scopes its session by it), and the worker must not get the request's.
        vars(fork)["g"] = app_context.g
    return fork


def _fork_to_push(app_context: Any, values: dict[str, Any]) -> Any:
    fork = fork_app_context(app_context, values)
    state = vars(fork)
    # Flask < 2.2 counts pushes in _refcnt and runs teardown only when it drops to zero; the parent's count
    # travels with the copied attributes.
    if "_refcnt" in state:
        state["_refcnt"] = 0
    return fork


def _pop_child(fork: Any, inherited: dict[str, Any], exc: BaseException | None) -> None:
    """Pop the child's own app context, which runs teardown_appcontext once, for the child.

    Its handlers read the whole ``g``; what the child inherited unchanged is not handed out by ``g.pop`` (see
    ``ctxsnap.providers._appcontext.inherited_values_kept``): it belongs to the parent, which tears it down itself.
    """
    with inherited_values_kept(fork, inherited):
        fork.pop(exc)


#: ``after_this_request`` appends to this list of the request context; the worker's view refuses it.
_AFTER_REQUEST: Final = ("_after_request_functions",)


def _worker_request_context(request_context: Any) -> Any:
    return fork_request_context(request_context, _AFTER_REQUEST)


# -- the providers ------------------------------------------------------------------------------------------------


class _AppProvider(PortableFlaskG, Provider):
    name = "flask.app"

    def needs_undo(self, state: Any) -> bool:
        # Only teardown mode pushes something to pop; every other run skips the undo step altogether.
        return bool(state[0] == TEARDOWN)

    def undo(self, state: Any, token: Any, exc: BaseException | None) -> None:
        if token is not None:
            _pop_child(token, state[2], exc)


class _RequestProvider(Provider):
    name = "flask.request"


class _ContextVarAppProvider(_AppProvider):
    """Flask >= 2.2: the app context lives in the ContextVar ``flask.globals._cv_app``."""

    def __init__(self, var: ContextVar[Any]) -> None:
        self._var = var
        self.owned_vars = (var,)

    def capture(self) -> Any:
        app_context = self._var.get(None)
        if app_context is None:
            return None
        if not POLICY.overrides_active and EXTENSION_KEY not in app_context.app.extensions:
            # _app_state's common case, with g_values inlined: two frames less per capture (issue 14).
            return COPY, app_context, app_context.g.__dict__.copy()
        return _app_state(app_context)

    def apply(self, state: Any) -> Any:
        mode, app_context, values = state
        if mode == COPY:
            self._var.set(fork_app_context(app_context, values))
            return None
        if mode == TEARDOWN:
            fork = _fork_to_push(app_context, values)
            fork.push()
            return fork
        self._var.set(_fork(mode, app_context, values))
        return None


class _ContextVarRequestProvider(_RequestProvider):
    """Flask >= 2.2: the request context is set, not pushed, so popping it never happens here.

    The child gets a view of it made at capture: the same request, session and URL adapter, and an
    ``after_this_request`` list that refuses additions (the parent's response is not the worker's to change).
    """

    def __init__(self, var: ContextVar[Any]) -> None:
        self._var = var
        self.owned_vars = (var,)

    def capture(self) -> Any:
        request_context = self._var.get(None)
        if request_context is None:
            return None
        return fork_request_context(request_context, _AFTER_REQUEST)  # _worker_request_context, one frame less

    def apply(self, state: Any) -> None:
        self._var.set(state)


# The next Flask merges the request context into the app context (pallets/flask#5639, #5812): one object holds
# g and, during a request, the request state, with one ContextVar token and a push count. The names below are
# checked on each context before they are used; a context without them keeps travelling whole, as it is.
_MERGED_REQUEST_STATE: Final = ("_request", "_session", "_flashes")


def _merged_fork(mode: int, app_context: Any, values: dict[str, Any]) -> Any:
    """A fork of a merged context that holds no request and was never pushed.

    The request provider puts the request back when it is selected, so ``exclude=["flask.request"]`` still
    leaves the request behind on this layout. Push bookkeeping starts afresh (the parent's token must never be
    reset from the child), and ``after_this_request`` is refused: its list belongs to the parent's response.
    """
    fork = _fork(mode, app_context, values)
    strip_state(fork, _MERGED_REQUEST_STATE)
    state = vars(fork)
    if _AFTER_REQUEST[0] in state:
        state[_AFTER_REQUEST[0]] = REFUSED_CALLBACKS
    return fork


def _teardown_takes_context() -> bool:
    """Whether ``Flask.do_teardown_appcontext`` takes the context first, as on the merged layout.

    Flask main changed it from ``(exc)`` to ``(ctx, exc=None)``: passing the exception alone would hand it over
    as the context, and the handlers would see ``None``. Read once, from Flask's own class.
    """
    try:
        parameters = inspect.signature(flask.Flask.do_teardown_appcontext).parameters
    except (TypeError, ValueError):  # pragma: no cover - a Flask whose method has no readable signature
        return False
    names = [p.name for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(names) >= 3 and names[1] != "exc"


_TEARDOWN_TAKES_CONTEXT: Final = _teardown_takes_context()


class _MergedAppProvider(_ContextVarAppProvider):
    """A Flask whose app context holds the request: the fork is set, never pushed, in every mode.

    Pushing and popping a merged context runs teardown_request and ``request.close()`` along with
    teardown_appcontext, so teardown mode cannot pop the child's context the way it does on older Flasks: it
    runs the app's teardown_appcontext itself after the work, and never the request's teardown (#5399).
    """

    def apply(self, state: Any) -> Any:
        mode, app_context, values = state
        fork = _merged_fork(mode, app_context, values)
        self._var.set(fork)
        if mode != TEARDOWN:
            return None
        flask.appcontext_pushed.send(fork.app)
        return fork

    def undo(self, state: Any, token: Any, exc: BaseException | None) -> None:
        if token is None:
            return
        app = token.app
        try:
            with inherited_values_kept(token, state[2]):
                if _TEARDOWN_TAKES_CONTEXT:
                    app.do_teardown_appcontext(token, exc)
                else:
                    app.do_teardown_appcontext(exc)
        finally:
            flask.appcontext_popped.send(app)


class _MergedRequestProvider(_RequestProvider):
    """The request state of a merged context, put into the child's fork of it.

    It owns no ContextVar: the app context's variable belongs to ``flask.app``, and excluding the request must
    not take the app context with it.
    """

    def __init__(self, var: ContextVar[Any]) -> None:
        self._var = var

    def capture(self) -> Any:
        app_context = self._var.get(None)
        if app_context is None or vars(app_context).get("_request") is None:
            return None
        return app_context

    def apply(self, state: Any) -> None:
        current = self._var.get(None)
        if current is None or current is state:
            # flask.app was left out: on this Flask a request cannot be active without an app context, so the
            # child gets one of its own, with an empty g (the parent's g was excluded with flask.app).
            current = _merged_fork(COPY, state, NO_VALUES)
            self._var.set(current)
        copy_state(state, current, _MERGED_REQUEST_STATE)


class _LocalStackAppProvider(_AppProvider):
    """Flask 1.1/2.0 on Werkzeug 2.0: the child gets a one-entry stack list of its own."""

    def __init__(self, storage: ContextVar[Any]) -> None:
        self._storage = storage
        self.owned_vars = (storage,)

    def capture(self) -> Any:
        stack = self._storage.get(_EMPTY_STORAGE).get("stack")
        return _app_state(stack[-1]) if stack else None

    def apply(self, state: Any) -> Any:
        mode, app_context, values = state
        if mode == TEARDOWN:
            # An empty stack of the child's own: push() copies it, and the pop after the run releases it.
            self._storage.set({})
            fork = _fork_to_push(app_context, values)
            fork.push()
            return fork
        self._storage.set({"stack": [_fork(mode, app_context, values)]})
        return None


class _LocalStackRequestProvider(_RequestProvider):
    def __init__(self, storage: ContextVar[Any]) -> None:
        self._storage = storage
        self.owned_vars = (storage,)

    def capture(self) -> Any:
        stack = self._storage.get(_EMPTY_STORAGE).get("stack")
        return _worker_request_context(stack[-1]) if stack else None

    def apply(self, state: Any) -> None:
        self._storage.set({"stack": [state]})


class _PerThreadProvider(Provider):
    """Werkzeug < 2.0: refuse a capture inside a Flask context instead of silently carrying nothing."""

    def __init__(self, name: str, stack: Any) -> None:
        self.name = name
        self._stack = stack

    def capture(self) -> None:
        if self._stack.top is not None:
            raise RuntimeError(f"cannot carry the Flask {self.name.split('.')[1]} context: {_UPGRADE_WERKZEUG}")
        return None

    def apply(self, state: Any) -> None:  # pragma: no cover - capture never returns a state to apply
        return None


def _make_providers() -> tuple[Provider, Provider]:
    if _CV_APP is not None and _CV_REQUEST is not None:
        return _ContextVarAppProvider(_CV_APP), _ContextVarRequestProvider(_CV_REQUEST)
    if _CV_APP is not None:
        return _MergedAppProvider(_CV_APP), _MergedRequestProvider(_CV_APP)
    if _APP_STORAGE is not None and _REQUEST_STORAGE is not None:
        return _LocalStackAppProvider(_APP_STORAGE), _LocalStackRequestProvider(_REQUEST_STORAGE)
    return _PerThreadProvider("flask.app", _APP_STACK), _PerThreadProvider("flask.request", _REQUEST_STACK)


#: The ``flask.app`` and ``flask.request`` providers of this Flask's layout, registered at import.
APP_PROVIDER, REQUEST_PROVIDER = _make_providers()
for _provider in (APP_PROVIDER, REQUEST_PROVIDER):
    try:
        register_provider(_provider)
    except ValueError:
        # A provider of that name is already registered (the app's own replacement, registered before the
        # first capture loaded this module): the app's choice stands.
        pass
del _provider


def refuse_per_thread(what: str) -> None:
    """Raise, saying ``what`` cannot happen, when this Werkzeug keeps Flask's contexts per thread id."""
    if LAYOUT == "per-thread":
        raise RuntimeError(f"{what}: {_UPGRADE_WERKZEUG}")
