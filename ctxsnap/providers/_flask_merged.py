"""The next Flask (main, 3.2): the request state merged into the app context, one ContextVar for both.

Flask main merges the request context into the app context (pallets/flask#5639, #5812): one object holds g and,
during a request, the request state, with one ContextVar token and a push count. The child gets a fork of it
that is set, never pushed, so popping it can never run the request's teardown (#5399).
"""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from typing import Any, Final

import flask

from ._appcontext import REFUSED_CALLBACKS, copy_state, inherited_values_kept, strip_state
from ._flask_common import AFTER_REQUEST, RequestProvider, fork_for
from ._flask_contextvars import ContextVarAppProvider
from ._policy import COPY, NO_VALUES, TEARDOWN

# The names below are checked on each context before they are used; a context without them keeps travelling
# whole, as it is.
_MERGED_REQUEST_STATE: Final = ("_request", "_session", "_flashes")


def _merged_fork(mode: int, app_context: Any, values: dict[str, Any]) -> Any:
    """A fork of a merged context that holds no request and was never pushed.

    The request provider puts the request back when it is selected, so ``exclude=["flask.request"]`` still
    leaves the request behind on this layout. Push bookkeeping starts afresh (the parent's token must never be
    reset from the child), and ``after_this_request`` is refused: its list belongs to the parent's response.
    """
    fork = fork_for(mode, app_context, values)
    strip_state(fork, _MERGED_REQUEST_STATE)
    state = vars(fork)
    if AFTER_REQUEST[0] in state:
        state[AFTER_REQUEST[0]] = REFUSED_CALLBACKS
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


class MergedAppProvider(ContextVarAppProvider):
    """A Flask whose app context holds the request: the fork is set, never pushed, in every mode.

    Pushing and popping a merged context runs teardown_request and ``request.close()`` along with
    teardown_appcontext, so teardown mode cannot pop the child's context the way it does on older Flasks: it
    runs the app's teardown_appcontext itself after the work, and never the request's teardown (#5399).
    """

    def apply(self, state: Any) -> Any:
        mode, app_context, values, _ = state
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


class MergedRequestProvider(RequestProvider):
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
