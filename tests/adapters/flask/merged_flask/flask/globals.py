"""Only ``_cv_app`` remains, as in the merged design; the proxies read the request through the app context."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_cv_app: ContextVar[Any] = ContextVar("flask.app_ctx")


class _Proxy:
    def __init__(self, attribute: str) -> None:
        object.__setattr__(self, "_attribute", attribute)

    def _get_current_object(self) -> Any:
        try:
            ctx = _cv_app.get()
        except LookupError:
            raise RuntimeError("Working outside of application context.") from None
        return getattr(ctx, object.__getattribute__(self, "_attribute"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __getitem__(self, key: Any) -> Any:
        return self._get_current_object()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._get_current_object()[key] = value


current_app: Any = _Proxy("app")
g: Any = _Proxy("g")
request: Any = _Proxy("request")
session: Any = _Proxy("session")
