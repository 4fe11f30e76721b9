"""Flask 2.2 to 3.1: the app and request contexts live in the ContextVars ``_cv_app`` and ``_cv_request``.

The layout of every current Flask release, so its providers are the ones a capture runs most: their
``capture``/``apply`` are kept to the fewest frames and lookups (issue 14), which is why they inline helpers
the other layouts call.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from ._appcontext import fork_app_context, fork_request_context
from ._flask_common import AFTER_REQUEST, POLICY, AppProvider, RequestProvider, app_state, fork_for, fork_to_push
from ._policy import COPY, EXTENSION_KEY, TEARDOWN


class ContextVarAppProvider(AppProvider):
    """Flask >= 2.2: the app context lives in the ContextVar ``flask.globals._cv_app``."""

    def __init__(self, var: ContextVar[Any]) -> None:
        self._var = var
        self.owned_vars = (var,)

    def capture(self) -> Any:
        app_context = self._var.get(None)
        if app_context is None:
            return None
        if not POLICY.overrides_active and EXTENSION_KEY not in app_context.app.extensions:
            # app_state's common case, with g_values inlined: two frames less per capture (issue 14).
            return COPY, app_context, app_context.g.__dict__.copy()
        return app_state(app_context)

    def apply(self, state: Any) -> Any:
        mode, app_context, values = state
        if mode == COPY:
            self._var.set(fork_app_context(app_context, values))
            return None
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

    def capture(self) -> Any:
        request_context = self._var.get(None)
        if request_context is None:
            return None
        return fork_request_context(request_context, AFTER_REQUEST)  # worker_request_context, one frame less

    def apply(self, state: Any) -> None:
        self._var.set(state)
