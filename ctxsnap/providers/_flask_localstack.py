"""Flask 1.1 to 2.1: the contexts live on Werkzeug ``LocalStack`` stacks, carried or refused by their storage.

On Werkzeug 2.0 a stack's storage is a ContextVar. A copied Context holds the parent's stack *list*, and
``LocalStack.pop`` on a stack of two or more pops that list in place, so the child always gets stack lists of its
own and never pops one it inherited. On Werkzeug < 2.0 the stacks are keyed by thread id: nothing can carry them
to another thread, so a capture inside a Flask context is refused rather than carrying nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Final

from .._provider import Provider
from ._flask_common import AppProvider, RequestProvider, app_state, fork_for, fork_to_push, worker_request_context
from ._policy import TEARDOWN

_EMPTY_STORAGE: Final[dict[str, Any]] = {}

#: The way out of a refusal, after the sentence that says what cannot be carried.
UPGRADE_WERKZEUG: Final = (
    "Upgrade Werkzeug to >= 2.0 (pip install 'werkzeug>=2.0,<2.1' keeps Flask 1.1 working), or capture with "
    "exclude=['flask'] to carry only ContextVars: this Werkzeug keeps Flask's contexts per thread id (Werkzeug "
    "< 2.0, or 2.0 under a gevent/eventlet without contextvars support), where no other thread can see them"
)


class LocalStackAppProvider(AppProvider):
    """Flask 1.1/2.0 on Werkzeug 2.0: the child gets a one-entry stack list of its own."""

    def __init__(self, storage: ContextVar[Any]) -> None:
        self._storage = storage
        self.owned_vars = (storage,)

    def capture(self) -> Any:
        stack = self._storage.get(_EMPTY_STORAGE).get("stack")
        return app_state(stack[-1]) if stack else None

    def apply(self, state: Any) -> Any:
        mode, app_context, values, _ = state
        if mode == TEARDOWN:
            # An empty stack of the child's own: push() copies it, and the pop after the run releases it.
            self._storage.set({})
            fork = fork_to_push(app_context, values)
            fork.push()
            return fork
        self._storage.set({"stack": [fork_for(mode, app_context, values)]})
        return None


class LocalStackRequestProvider(RequestProvider):
    def __init__(self, storage: ContextVar[Any]) -> None:
        self._storage = storage
        self.owned_vars = (storage,)

    def capture(self) -> Any:
        stack = self._storage.get(_EMPTY_STORAGE).get("stack")
        return worker_request_context(stack[-1]) if stack else None

    def apply(self, state: Any) -> None:
        self._storage.set({"stack": [state]})


class PerThreadProvider(Provider):
    """Werkzeug < 2.0: refuse a capture inside a Flask context instead of silently carrying nothing."""

    def __init__(self, name: str, stack: Any) -> None:
        self.name = name
        self._stack = stack

    def capture(self) -> None:
        if self._stack.top is not None:
            which = self.name.split(".")[1]
            raise RuntimeError(f"This Werkzeug cannot carry the Flask {which} context. {UPGRADE_WERKZEUG}")
        return None

    def apply(self, state: Any) -> None:  # pragma: no cover - capture never returns a state to apply
        return None
