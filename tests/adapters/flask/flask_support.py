"""Helpers shared by the Flask adapter's tests (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import contextvars
import importlib.metadata
from typing import Any

import flask
import flask.globals

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("test_flask_request_id")

#: The installed Flask's release, as the tests' oracle for layout-dependent outcomes; the adapter itself never
#: reads it (it detects features).
FLASK_VERSION = tuple(int(part) for part in importlib.metadata.version("flask").split(".")[:2])
#: Flask 3.2 (main today) merges the request context into the app context (pallets/flask#5812): there a request
#: cannot be active without an app context, and one context object is pushed per request.
MERGED_LAYOUT = FLASK_VERSION >= (3, 2)


def flask_context_seen() -> dict[str, bool]:
    """What Flask context the calling thread holds, seen through Flask's own public checks."""
    return {"app": flask.has_app_context(), "request": flask.has_request_context()}


def current_app_context() -> Any:
    """The app context object itself. Flask >= 2.2 exposes it as ``flask.globals.app_ctx``; before, only the
    ``_app_ctx_stack`` held it (looked up by feature, like the adapter does)."""
    proxy = vars(flask.globals).get("app_ctx")
    if proxy is not None:
        return proxy._get_current_object()
    return vars(flask.globals)["_app_ctx_stack"].top
