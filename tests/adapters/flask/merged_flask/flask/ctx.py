"""One context class for app and request, after pallets/flask#5812: a single token, a push count."""

from __future__ import annotations

from typing import Any

from .globals import _cv_app


class _AppCtxGlobals:
    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def pop(self, name: str, default: Any = None) -> Any:
        return self.__dict__.pop(name, default)


class AppContext:
    def __init__(self, app: Any, *, request: Any = None, session: Any = None) -> None:
        self.app = app
        self.g = app.app_ctx_globals_class()
        self.url_adapter = object()
        self._request = request
        self._session = session
        self._flashes = None
        self._after_request_functions: list[Any] = []
        self._cv_token: Any = None
        self._push_count = 0

    @property
    def has_request(self) -> bool:
        return self._request is not None

    @property
    def request(self) -> Any:
        if self._request is None:
            raise RuntimeError("Working outside of request context.")
        return self._request

    @property
    def session(self) -> Any:
        if self._session is None:
            raise RuntimeError("Working outside of request context.")
        return self._session

    def push(self) -> None:
        from . import appcontext_pushed

        self._push_count += 1
        if self._cv_token is not None:
            return
        self._cv_token = _cv_app.set(self)
        appcontext_pushed.send(self.app)

    def pop(self, exc: BaseException | None = None) -> None:
        from . import appcontext_popped

        if self._cv_token is None:
            raise RuntimeError(f"Cannot pop this context ({self!r}), it is not pushed.")
        if _cv_app.get(None) is not self:
            raise RuntimeError(f"Cannot pop this context ({self!r}), it is not the active context.")
        self._push_count -= 1
        if self._push_count > 0:
            return
        try:
            if self._request is not None:
                self.app.do_teardown_request(exc)
                self._request.close()
        finally:
            self.app.do_teardown_appcontext(exc)
            _cv_app.reset(self._cv_token)
            self._cv_token = None
            appcontext_popped.send(self.app)

    def __enter__(self) -> AppContext:
        self.push()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.pop(exc_info[1])
