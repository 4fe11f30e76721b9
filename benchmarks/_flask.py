"""The Flask side of the benchmarks: one app, one request, one task, and every competitor's wrapper.

Every Flask scenario times *the same task* (read ``g``, a ContextVar and the request) under each way of
carrying the context, so a difference in time is a difference in the carrying. The task never raises when
something is missing: it reports ``None`` instead, so an alternative that carries less still gets timed and
the "sees" column says what it lost. Imported only by Flask scenarios, so contextvars-only scenarios run in a
process where Flask was never imported.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import flask
from flask import g, has_app_context, has_request_context, request

__all__ = [
    "EXPECTED",
    "REQUEST_ID",
    "closure",
    "describe_seen",
    "make_app",
    "request_context",
    "task",
]

REQUEST_ID: ContextVar[str] = ContextVar("request_id")
HEADER = "X-Request-Id"
#: What a task that sees everything returns: (g.request_id, the ContextVar, the request header).
EXPECTED = ("req-1", "req-1", "req-1")


def task() -> tuple[Any, Any, Any]:
    """The unit of work: what a report or a background job reads from the request it came from."""
    return (
        g.get("request_id") if has_app_context() else None,
        REQUEST_ID.get(None),
        request.headers.get(HEADER) if has_request_context() else None,
    )


def describe_seen(seen: tuple[Any, Any, Any], expected: tuple[Any, ...] = EXPECTED) -> str:
    """'g ✓ var ✓ request ✓' style summary of what a worker saw."""
    labels = ("g", "var", "request")
    return " ".join(
        f"{label} {'✓' if got == want else '✗'}" for label, got, want in zip(labels, seen, expected, strict=True)
    )


def make_app(executor_workers: int = 1) -> tuple[flask.Flask, Any]:
    """A Flask app with Flask-Executor initialised on it (``executor_workers`` threads). Returns both."""
    from flask_executor import Executor

    app = flask.Flask("ctxsnap_bench")
    app.config["EXECUTOR_MAX_WORKERS"] = executor_workers
    executor = Executor(app)
    return app, executor


@contextlib.contextmanager
def request_context(app: flask.Flask, g_attributes: int = 10, request_id: str = "req-1") -> Iterator[None]:
    """Push a request (as a view would have it), with ``g`` and the ContextVar set like a before_request."""
    with app.test_request_context("/fanout?n=4", headers={HEADER: request_id}):
        g.request_id = request_id
        for index in range(max(0, g_attributes - 1)):
            setattr(g, f"attribute_{index}", index)
        token = REQUEST_ID.set(request_id)
        try:
            yield
        finally:
            REQUEST_ID.reset(token)


def closure(func: Callable[..., Any]) -> Callable[..., Any]:
    """The hand-written closure from the design brief, verbatim: what apps write today."""
    outer_ctx = contextvars.copy_context()
    g_values = flask.g.__dict__.copy()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flask.g.__dict__.update(g_values)
        return outer_ctx.run(func, *args, **kwargs)

    return flask.copy_current_request_context(wrapper)


def flask_threads_work_item(app_context: Any, fn: Callable[[], Any]) -> Any:
    """Flask-Threads' per-task code path (push the shared app context, run, pop), outside its pool."""
    from concurrent.futures import Future

    from flaskthreads.thread_helpers import _WorkItemWithContext

    future: Future[Any] = Future()
    _WorkItemWithContext(app_context, future, fn, (), {}).run()
    return future.result()
