"""A stand-in for Flask with merged app and request contexts: see ../README.md. Test support only."""

from __future__ import annotations

from typing import Any, Callable

from .ctx import AppContext, _AppCtxGlobals
from .globals import _cv_app, current_app, g, request, session

__all__ = ["AppContext", "Flask", "current_app", "g", "has_app_context", "has_request_context", "request",
           "session", "appcontext_pushed", "appcontext_popped"]


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[Callable[..., Any]] = []

    def connect(self, receiver: Callable[..., Any]) -> Callable[..., Any]:
        self.receivers.append(receiver)
        return receiver

    def send(self, sender: Any, **kwargs: Any) -> None:
        for receiver in self.receivers:
            receiver(sender, **kwargs)


appcontext_pushed = _Signal()
appcontext_popped = _Signal()


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

    def teardown_request(self, f: Callable[[BaseException | None], None]) -> Callable[[BaseException | None], None]:
        self.teardown_request_funcs.append(f)
        return f

    def teardown_appcontext(
        self, f: Callable[[BaseException | None], None]
    ) -> Callable[[BaseException | None], None]:
        self.teardown_appcontext_funcs.append(f)
        return f

    def do_teardown_request(self, exc: BaseException | None) -> None:
        for f in reversed(self.teardown_request_funcs):
            f(exc)

    def do_teardown_appcontext(self, exc: BaseException | None) -> None:
        for f in reversed(self.teardown_appcontext_funcs):
            f(exc)

    def app_context(self) -> AppContext:
        return AppContext(self)

    def test_request_context(self, path: str = "/", headers: dict[str, str] | None = None) -> AppContext:
        return AppContext(self, request=Request(path, headers or {}), session={})


def has_request_context() -> bool:
    ctx = _cv_app.get(None)
    return ctx is not None and ctx.has_request


def has_app_context() -> bool:
    return _cv_app.get(None) is not None
