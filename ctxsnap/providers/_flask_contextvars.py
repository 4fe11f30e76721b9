"""Flask 2.2 to 3.1: the app and request contexts live in the ContextVars ``_cv_app`` and ``_cv_request``.

The layout of every current Flask release, so its providers are the ones a capture runs most: their
``capture``/``apply`` are kept to the fewest frames and lookups (issue 14), which is why they inline helpers
the other layouts call (``fork_app_context``, ``fork_request_context``: a fix there belongs here too). Under
callgrind each Python frame costs about as much as a small allocation, and the task these runs carry (read
``g``, a ContextVar and a header) costs about 25,000 instructions: a frame is 1-2% of the whole. Where the
compiled ``ctxsnap._speedups`` is built, the app provider's capture and apply and the request provider's capture
are its ``GCapture``, ``ForkApply`` and ``ViewCapture``: the same steps as the methods below, which stay the
pure-Python path; with a policy in force (an override, the extension, teardown mode) both take the Python rules.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import GetSetDescriptorType
from typing import Any, Final

import flask.ctx

from .._compiled import speedups
from ._appcontext import REFUSED_CALLBACKS
from ._flask_common import (
    AFTER_REQUEST,
    POLICY,
    AppProvider,
    AppState,
    RequestProvider,
    app_state,
    fork_for,
    fork_to_push,
)
from ._policy import COPY, EXTENSION_KEY, TEARDOWN

_new: Final = object.__new__
_set_attribute: Final = object.__setattr__
#: Flask 2.2+ keeps the ContextVar tokens of a context's pushes in this list: a fork or a view gets its own.
_PUSH_STATE: Final = "_cv_tokens"
_AFTER_REQUEST: Final = AFTER_REQUEST[0]
#: What Flask's AppContext.__init__ sets, in its order; apply stores them one by one on a fork of such a context.
_APP_CONTEXT_ATTRIBUTES: Final = ("app", "url_adapter", "g", _PUSH_STATE)
_APP_CONTEXT_SIZE: Final = len(_APP_CONTEXT_ATTRIBUTES)


def _plain(cls: type) -> type | None:
    """``cls``, if its instances' ``__dict__`` can be read as object's does (the compiled helpers then skip
    the lookup on the class): it defines the standard ``__dict__`` itself and reads attributes as object does."""
    getter: Any = cls.__getattribute__  # Any: typeshed's object.__getattribute__ does not compare with the class's
    if getter is not object.__getattribute__ or not isinstance(vars(cls).get("__dict__"), GetSetDescriptorType):
        return None
    return cls


def _storable_app_context() -> type | None:
    """Flask's app context class, if storing those attributes one by one is the same as filling its dict.

    It is when the class keeps the default ``__setattr__`` and ``__dict__`` (the compiled fork reads the
    namespace directly) and has no class attribute of those names (a property would turn a store into a call);
    otherwise every fork copies the parent's dict, as for any other context.
    """
    cls = flask.ctx.AppContext
    setter: Any = cls.__setattr__  # Any: typeshed's object.__setattr__ does not compare with the class's
    if setter is not object.__setattr__ or any(hasattr(cls, name) for name in _APP_CONTEXT_ATTRIBUTES):
        return None
    return _plain(cls)


_APP_CONTEXT: Final = _storable_app_context()


def _forked_namespace(namespace: dict[str, Any], g: Any) -> dict[str, Any]:
    forked = namespace.copy()
    forked["g"] = g
    if _PUSH_STATE in forked:
        forked[_PUSH_STATE] = []
    return forked


class ContextVarAppProvider(AppProvider):
    """Flask >= 2.2: the app context lives in the ContextVar ``flask.globals._cv_app``."""

    def __init__(self, var: ContextVar[Any]) -> None:
        self._var = var
        self.owned_vars = (var,)
        # Bound once: reading a method off the instance builds a new bound-method object at every run (about
        # 500 instructions). Whatever class's apply this is (the merged layout overrides it) is the one bound.
        self.apply = self.apply  # type: ignore[method-assign]
        if speedups is not None and type(self).capture is ContextVarAppProvider.capture:
            # The same steps in C (ctxsnap._speedups), where any policy in force still takes the Python way.
            self.capture = speedups.GCapture(  # type: ignore[method-assign]
                var,
                vars(POLICY),
                EXTENSION_KEY,
                app_state,
                _APP_CONTEXT,
                _plain(flask.Flask.app_ctx_globals_class),
            )
        if speedups is not None and type(self).apply is ContextVarAppProvider.apply:
            self.apply = speedups.ForkApply(  # type: ignore[method-assign]
                var, _APP_CONTEXT, _APP_CONTEXT_ATTRIBUTES, (_PUSH_STATE,), self._apply_policy
            )

    def capture(self) -> AppState | None:
        app_context = self._var.get(None)
        if app_context is None:
            return None
        if not POLICY.overrides_active and EXTENSION_KEY not in app_context.app.extensions:
            # app_state's common case, with g_values inlined: two frames less per capture (issue 14).
            return COPY, app_context, app_context.g.__dict__.copy(), False
        return app_state(app_context)

    def apply(self, state: AppState) -> Any:
        mode, app_context, values, _ = state
        if mode != COPY:
            return self._apply_policy(mode, app_context, values)
        # fork_app_context inlined (one frame less per run); see there for why each step is done this way.
        namespace = app_context.__dict__
        g = _new(namespace["g"].__class__)
        _set_attribute(g, "__dict__", values.copy())
        context_class = app_context.__class__
        fork = _new(context_class)
        if context_class is _APP_CONTEXT and len(namespace) == _APP_CONTEXT_SIZE and _PUSH_STATE in namespace:
            # Flask's own app context, holding what its __init__ sets and nothing else: the attributes are
            # stored one by one, in __init__'s order, which keeps them in the object itself (CPython's inline
            # values) rather than in a dict of its own: about 1,000 instructions less per run.
            try:
                fork.app = namespace["app"]
                fork.url_adapter = namespace["url_adapter"]
            except KeyError:  # as many attributes, not the same ones: copied as they are
                fork.__dict__ = _forked_namespace(namespace, g)
            else:
                fork.g = g
                fork._cv_tokens = []
        else:
            fork.__dict__ = _forked_namespace(namespace, g)
        self._var.set(fork)
        return None

    def _apply_policy(self, mode: int, app_context: Any, values: dict[str, Any]) -> Any:
        if mode == TEARDOWN:
            fork = fork_to_push(app_context, values)
            fork.push()
            return fork
        self._var.set(fork_for(mode, app_context, values))
        return None


class ContextVarRequestProvider(RequestProvider):
    """Flask >= 2.2: the request context is set, not pushed, so popping it never happens here.

    The child gets a view of it made at capture: the same request, session and URL adapter, and an
    ``after_this_request`` list that refuses additions (the parent's response is not the worker's to change).
    """

    def __init__(self, var: ContextVar[Any]) -> None:
        self._var = var
        self.owned_vars = (var,)
        # Applying is setting the view made at capture: the variable's own set, so a run calls no Python code
        # for the request (the token it returns is never used: this provider has nothing to undo).
        self.apply = var.set  # type: ignore[method-assign,assignment]
        if speedups is not None and type(self).capture is ContextVarRequestProvider.capture:
            # The same view, made in C (ctxsnap._speedups).
            self.capture = speedups.ViewCapture(  # type: ignore[method-assign]
                var, {_AFTER_REQUEST: REFUSED_CALLBACKS}, (_PUSH_STATE,), _plain(flask.ctx.RequestContext)
            )

    def capture(self) -> Any:
        request_context = self._var.get(None)
        if request_context is None:
            return None
        # fork_request_context(request_context, AFTER_REQUEST) inlined: one frame and one loop less per capture.
        namespace = request_context.__dict__.copy()
        if _AFTER_REQUEST in namespace:
            namespace[_AFTER_REQUEST] = REFUSED_CALLBACKS
        if _PUSH_STATE in namespace:
            namespace[_PUSH_STATE] = []
        view = _new(request_context.__class__)
        view.__dict__ = namespace
        return view

    def apply(self, state: Any) -> Any:  # replaced per instance by the variable's set, see __init__
        return self._var.set(state)
