"""Only ``_cv_app`` remains, as on Flask main; every proxy reads through the one app context.

Names and shapes as in Flask main's ``src/flask/globals.py`` (checked at pallets/flask 2ac8988, 3.2.0.dev): the
proxies ``app_ctx``, ``current_app``, ``g``, ``request`` and ``session`` on ``_cv_app``, and ``request_ctx`` as a
deprecated alias of ``app_ctx``. The proxy class here is a minimal stand-in for Werkzeug's ``LocalProxy``.
"""

from __future__ import annotations

import warnings
from contextvars import ContextVar
from typing import Any

_cv_app: ContextVar[Any] = ContextVar("flask.app_ctx")


class _Proxy:
    def __init__(self, attribute: str | None, unbound: str) -> None:
        object.__setattr__(self, "_attribute", attribute)
        object.__setattr__(self, "_unbound", unbound)

    def _get_current_object(self) -> Any:
        try:
            ctx = _cv_app.get()
        except LookupError:
            raise RuntimeError(object.__getattribute__(self, "_unbound")) from None
        attribute = object.__getattribute__(self, "_attribute")
        return ctx if attribute is None else getattr(ctx, attribute)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._get_current_object(), name)

    def __getitem__(self, key: Any) -> Any:
        return self._get_current_object()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._get_current_object()[key] = value

    def __contains__(self, key: Any) -> bool:
        return key in self._get_current_object()


_no_app_msg = "Working outside of application context."
_no_req_msg = "Working outside of request context."
app_ctx: Any = _Proxy(None, _no_app_msg)
current_app: Any = _Proxy("app", _no_app_msg)
g: Any = _Proxy("g", _no_app_msg)
request: Any = _Proxy("request", _no_req_msg)
session: Any = _Proxy("session", _no_req_msg)


def __getattr__(name: str) -> Any:
    if name == "request_ctx":
        warnings.warn("'request_ctx' has merged with 'app_ctx'", DeprecationWarning, stacklevel=2)
        return app_ctx
    raise AttributeError(name)
