"""The ``quart.request`` and ``quart.websocket`` providers, one pair for each way Quart keeps its contexts.

Quart 0.19 to 0.22 keep the request (websocket) context in a ContextVar of its own; Quart 0.23 keeps its state
in the app context, beside ``g``. ``ctxsnap.providers.quart`` detects which, and builds the matching pair here.
Either way the child sees the parent's request (websocket) and session, read-only by convention, and nothing of
the request's lifecycle runs in the child.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final

from .._provider import Provider
from ._appcontext import copy_state, fork_request_context
from ._policy import COPY, NO_VALUES

__all__ = ["AFTER_CALLBACKS", "REQUEST_STATE", "WEBSOCKET_STATE", "MergedStateProvider", "SeparateContextProvider"]

#: The merged layout's request and websocket state, by the app context's attribute names.
REQUEST_STATE: Final = ("_request", "_session", "_flashes")
WEBSOCKET_STATE: Final = ("_websocket", "_session")
#: The per-request (per-websocket) callbacks a worker must not add to: they act on the parent's response.
AFTER_CALLBACKS: Final = ("_after_request_functions", "_after_websocket_functions")


class SeparateContextProvider(Provider):
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
        return None if context is None else fork_request_context(context, AFTER_CALLBACKS)

    def apply(self, state: Any) -> None:
        # Set even where the child's context already holds the parent's own (it runs in a copy of the parent's
        # context): the child must get the view, and include= captures may leave the contextvars provider out.
        self._var.set(state)


class MergedStateProvider(Provider):
    """Quart 0.23: the request (or websocket) state of the app context, put into the child's fork of it.

    It owns no ContextVar: the app context's variable belongs to ``quart.app``, and excluding the request must
    not take the app context with it. ``fork`` is how ``quart.app`` forks an app context, used when that
    provider was left out of the capture.
    """

    def __init__(
        self, name: str, state: tuple[str, ...], app_var: ContextVar[Any], fork: Callable[..., Any]
    ) -> None:
        self.name = name
        #: The attribute that says this kind of state is present, then every attribute of that state.
        self._state = state
        self._app_var = app_var
        self._fork = fork

    def capture(self) -> Any:
        context = self._app_var.get(None)
        if context is None or vars(context).get(self._state[0]) is None:
            return None
        return context

    def apply(self, state: Any) -> None:
        current = self._app_var.get(None)
        if current is None or current is state:
            # quart.app was left out: a request cannot be active without an app context on this Quart, so the
            # child gets one of its own, with an empty g (the parent's g was excluded with quart.app).
            current = self._fork(COPY, state, NO_VALUES)
            self._app_var.set(current)
        copy_state(state, current, self._state)
