"""The Quart side of the benchmarks: the same task as the Flask side, read through Quart's globals.

Imported only by the Quart scenarios. The request is entered once in a task whose ``contextvars.Context`` the
scenario keeps and runs every batch in, so the helpers under test see the request exactly as a view would.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import quart
from quart import g, has_app_context, has_request_context, request

__all__ = ["EXPECTED", "REQUEST_ID", "describe_seen", "enter_request", "exit_request", "make_app", "task"]

REQUEST_ID: ContextVar[str] = ContextVar("quart_request_id")
HEADER = "X-Request-Id"
EXPECTED = ("req-1", "req-1", "req-1")


def task() -> tuple[Any, Any, Any]:
    """The unit of work: read g, a ContextVar and the request; ``None`` for what the worker cannot see."""
    return (
        g.get("request_id") if has_app_context() else None,
        REQUEST_ID.get(None),
        request.headers.get(HEADER) if has_request_context() else None,
    )


def describe_seen(seen: tuple[Any, Any, Any]) -> str:
    labels = ("g", "var", "request")
    return " ".join(
        f"{label} {'✓' if got == want else '✗'}" for label, got, want in zip(labels, seen, EXPECTED, strict=True)
    )


def make_app() -> quart.Quart:
    return quart.Quart("ctxsnap_bench")


async def enter_request(app: quart.Quart, g_attributes: int = 10, request_id: str = "req-1") -> Any:
    """Push a test request in the current task, with g and the ContextVar set; return the context manager."""
    request_context = app.test_request_context("/fanout", headers={HEADER: request_id})
    await request_context.__aenter__()
    g.request_id = request_id
    for index in range(max(0, g_attributes - 1)):
        setattr(g, f"attribute_{index}", index)
    REQUEST_ID.set(request_id)
    return request_context


async def exit_request(request_context: Any) -> None:
    await request_context.__aexit__(None, None, None)
