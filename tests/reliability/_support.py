"""Shared tools of the reliability suite: probing what a worker thread holds, and providers that misbehave.

Every reliability test ends the same way: look at a worker thread from the outside (a plain, unwrapped task on
the same one-worker pool) and check that it holds exactly what it held before ctxsnap ran something there.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import ctxsnap
from tests.support import TIMEOUT


def framework_state() -> dict[str, bool]:
    """Whether a Flask or Quart context is pushed in the calling thread (only for frameworks in use)."""
    state: dict[str, bool] = {}
    if "flask" in sys.modules:
        import flask

        state["flask.app"] = flask.has_app_context()
        state["flask.request"] = flask.has_request_context()
    if "quart" in sys.modules:
        import quart

        state["quart.app"] = quart.has_app_context()
        state["quart.request"] = quart.has_request_context()
        state["quart.websocket"] = quart.has_websocket_context()
    return state


def thread_state() -> tuple[dict[contextvars.ContextVar[Any], Any], dict[str, bool]]:
    """Everything the calling thread's own context holds, plus which framework contexts are pushed."""
    return dict(contextvars.copy_context()), framework_state()


class WorkerProbe:
    """A one-worker pool, so that every task lands on the same thread, and a way to look at that thread."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctxsnap-probe")
        # The first look happens before ctxsnap ever ran anything on the worker: the clean reference.
        self.clean = self.state()

    def state(self) -> tuple[dict[contextvars.ContextVar[Any], Any], dict[str, bool]]:
        return self.pool.submit(thread_state).result(timeout=TIMEOUT)

    def assert_clean(self) -> None:
        variables, frameworks = self.state()
        assert variables == self.clean[0], "the worker thread kept ContextVar values from an earlier task"
        assert not any(frameworks.values()), f"a framework context was left pushed on the worker: {frameworks}"

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.submit(fn, *args).result(timeout=TIMEOUT)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def registered(*providers: Any) -> Iterator[None]:
    """Register test providers for the duration of a block; the global registry is shared by the whole run."""
    for provider in providers:
        ctxsnap.register_provider(provider)
    try:
        yield
    finally:
        for provider in providers:
            ctxsnap.unregister_provider(provider.name)


class ThreadStackProvider(ctxsnap.Provider):
    """A provider with state outside ContextVars: it pushes onto a per-thread stack and must pop in undo.

    That is the shape of Werkzeug < 2.0 contexts and of the Flask teardown mode, the cases where a missed undo
    would leave something behind on the worker thread.
    """

    def __init__(self, name: str, value: object = "carried") -> None:
        self.name = name
        self.value = value
        self.local = threading.local()

    def stack(self) -> list[object]:
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        stack: list[object] = self.local.stack
        return stack

    def capture(self) -> object:
        return self.value

    def apply(self, state: object) -> int:
        self.stack().append(state)
        return len(self.stack())

    def undo(self, state: object, token: Any, exc: BaseException | None) -> None:
        stack = self.stack()
        assert len(stack) == token, "undo called out of order"
        stack.pop()
