"""One context class for app and request (pallets/flask#5812), with Flask main's signatures.

Checked against Flask main's ``src/flask/ctx.py`` at pallets/flask 2ac8988 (3.2.0.dev): ``AppContext(app, *,
request=None, session=None)`` with ``has_request``, ``copy()``, one ``_cv_token`` and a ``_push_count``;
``pop(exc)`` runs ``app.do_teardown_request(self, exc)``, ``request.close()`` and
``app.do_teardown_appcontext(self, exc)``, collecting their errors; ``after_this_request`` appends to the
context's ``_after_request_functions``; ``copy_current_request_context`` pushes a copy and calls
``app.ensure_sync(f)``. Routing, sessions from cookies and the URL adapter are left out: the adapter does not
touch them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from .globals import _cv_app

_sentinel = object()


class _AppCtxGlobals:
    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def pop(self, name: str, default: Any = _sentinel) -> Any:
        if default is _sentinel:
            return self.__dict__.pop(name)
        return self.__dict__.pop(name, default)

    def setdefault(self, name: str, default: Any = None) -> Any:
        return self.__dict__.setdefault(name, default)

    def __contains__(self, item: str) -> bool:
        return item in self.__dict__

    def __iter__(self) -> Any:
        return iter(self.__dict__)


class _CollectErrors:
    """Run every teardown step, then raise what failed (Flask main collects them into an ExceptionGroup)."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if isinstance(exc, Exception):
            self.errors.append(exc)
            return True
        return False

    def raise_any(self, message: str) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ExceptionGroup(message, self.errors)


def after_this_request(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    ctx = _cv_app.get(None)
    if ctx is None or not ctx.has_request:
        raise RuntimeError("'after_this_request' can only be used when a request context is active.")
    ctx._after_request_functions.append(f)
    return f


def copy_current_request_context(f: Callable[..., Any]) -> Callable[..., Any]:
    ctx = _cv_app.get(None)
    if ctx is None:
        raise RuntimeError("'copy_current_request_context' can only be used when a request context is active.")
    ctx = ctx.copy()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with ctx:
            return ctx.app.ensure_sync(f)(*args, **kwargs)

    return update_wrapper(wrapper, f)


def has_request_context() -> bool:
    ctx = _cv_app.get(None)
    return ctx is not None and ctx.has_request


def has_app_context() -> bool:
    return _cv_app.get(None) is not None


class AppContext:
    def __init__(self, app: Any, *, request: Any = None, session: Any = None) -> None:
        self.app = app
        self.g = app.app_ctx_globals_class()
        self.url_adapter: Any = None
        self._request = request
        self._session = session
        self._flashes: list[tuple[str, str]] | None = None
        self._after_request_functions: list[Callable[[Any], Any]] = []
        self._cv_token: Any = None
        self._push_count = 0

    @property
    def has_request(self) -> bool:
        return self._request is not None

    def copy(self) -> AppContext:
        return self.__class__(self.app, request=self._request, session=self._session)

    @property
    def request(self) -> Any:
        if self._request is None:
            raise RuntimeError("There is no request in this context.")
        return self._request

    @property
    def session(self) -> Any:
        if self._request is None:
            raise RuntimeError("There is no request in this context.")
        if self._session is None:
            self._session = {}
        return self._session

    def push(self) -> None:
        from . import appcontext_pushed

        self._push_count += 1
        if self._cv_token is not None:
            return
        self._cv_token = _cv_app.set(self)
        appcontext_pushed.send(self.app, _async_wrapper=self.app.ensure_sync)

    def pop(self, exc: BaseException | None = None) -> None:
        from . import appcontext_popped

        if self._cv_token is None:
            raise RuntimeError(f"Cannot pop this context ({self!r}), it is not pushed.")
        if _cv_app.get(None) is not self:
            raise RuntimeError(f"Cannot pop this context ({self!r}), it is not the active context.")
        self._push_count -= 1
        if self._push_count > 0:
            return
        collect_errors = _CollectErrors()
        if self._request is not None:
            with collect_errors:
                self.app.do_teardown_request(self, exc)
            with collect_errors:
                self._request.close()
        with collect_errors:
            self.app.do_teardown_appcontext(self, exc)
        _cv_app.reset(self._cv_token)
        self._cv_token = None
        with collect_errors:
            appcontext_popped.send(self.app, _async_wrapper=self.app.ensure_sync)
        collect_errors.raise_any("Errors during context teardown")

    def __enter__(self) -> AppContext:
        self.push()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.pop(exc_info[1])
