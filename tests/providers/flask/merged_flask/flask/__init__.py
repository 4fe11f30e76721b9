"""A stand-in for Flask main, whose app context holds the request: see ../README.md. Test support only.

``Flask.do_teardown_request(ctx, exc=None)`` and ``Flask.do_teardown_appcontext(ctx, exc=None)`` have Flask
main's signatures (pallets/flask 2ac8988, 3.2.0.dev): the context comes first. ``ensure_sync`` runs an
``async def`` function to completion, as Flask's does through asgiref.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any

from .ctx import (
    AppContext,
    _AppCtxGlobals,
    after_this_request,
    copy_current_request_context,
    has_app_context,
    has_request_context,
)
from .globals import _cv_app as _cv_app  # re-exported: Flask main's __init__ imports it too
from .globals import current_app, g, request, session

__all__ = [
    "AppContext",
    "Flask",
    "after_this_request",
    "appcontext_popped",
    "appcontext_pushed",
    "appcontext_tearing_down",
    "copy_current_request_context",
    "current_app",
    "g",
    "has_app_context",
    "has_request_context",
    "request",
    "session",
]


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[Callable[..., Any]] = []

    def connect(self, receiver: Callable[..., Any]) -> Callable[..., Any]:
        self.receivers.append(receiver)
        return receiver

    def send(self, sender: Any, _async_wrapper: Any = None, **kwargs: Any) -> None:
        for receiver in self.receivers:
            receiver(sender, **kwargs)


appcontext_pushed = _Signal()
appcontext_popped = _Signal()
appcontext_tearing_down = _Signal()


class Request:
    def __init__(self, path: str, headers: dict[str, str]) -> None:
        self.path = path
        self.headers = headers
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Flask:
    app_ctx_globals_class = _AppCtxGlobals

    def __init__(self, name: str) -> None:
        self.name = name
        self.config: dict[str, Any] = {}
        self.extensions: dict[str, Any] = {}
        self.teardown_request_funcs: list[Callable[[BaseException | None], None]] = []
        self.teardown_appcontext_funcs: list[Callable[[BaseException | None], None]] = []

    def teardown_request(
        self, f: Callable[[BaseException | None], None]
    ) -> Callable[[BaseException | None], None]:
        self.teardown_request_funcs.append(f)
        return f

    def teardown_appcontext(
        self, f: Callable[[BaseException | None], None]
    ) -> Callable[[BaseException | None], None]:
        self.teardown_appcontext_funcs.append(f)
        return f

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):
            return functools.wraps(func)(lambda *args, **kwargs: asyncio.run(func(*args, **kwargs)))
        return func

    def do_teardown_request(self, ctx: AppContext, exc: BaseException | None = None) -> None:
        for f in reversed(self.teardown_request_funcs):
            self.ensure_sync(f)(exc)

    def do_teardown_appcontext(self, ctx: AppContext, exc: BaseException | None = None) -> None:
        for f in reversed(self.teardown_appcontext_funcs):
            self.ensure_sync(f)(exc)
        appcontext_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)

    def app_context(self) -> AppContext:
        return AppContext(self)

    def test_request_context(self, path: str = "/", headers: dict[str, str] | None = None) -> AppContext:
        return AppContext(self, request=Request(path, headers or {}))
