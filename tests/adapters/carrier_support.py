"""What the process-boundary tests carry, and the probe a worker runs to report what it sees.

It lives in a module of its own (never a test module) because a worker finds the carrier by importing the
module that defines it: spawn and forkserver children, and Celery workers, import this module by name. The
probe reports every kind of value a worker could wrongly see: the two declared ContextVars and the declared
``g`` attribute, and the undeclared ContextVar and ``g`` attribute that must never arrive.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any

import flask

import ctxsnap

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
TENANT: contextvars.ContextVar[Any] = contextvars.ContextVar("tenant")
UNDECLARED: contextvars.ContextVar[str] = contextvars.ContextVar("undeclared")

_apps: list[flask.Flask] = []


def create_app() -> flask.Flask:
    """The worker's app: a plain Flask app. Counted, so a test can check the factory runs once per process."""
    app = flask.Flask("carrier_support")
    app.config["CREATED_IN"] = os.getpid()
    _apps.append(app)
    return app


CARRIER = ctxsnap.Carrier("ctxsnap-tests", vars=[REQUEST_ID, TENANT], g=["user_id"], app=create_app)
SIGNED = ctxsnap.Carrier(
    "ctxsnap-tests-signed", vars=[REQUEST_ID], g=["user_id"], app=create_app, secret_key="test secret"
)


def observe(*_: Any) -> dict[str, Any]:
    """What the running task sees; ``None`` for anything absent."""
    in_app = flask.has_app_context()
    return {
        "request_id": REQUEST_ID.get(None),
        "tenant": TENANT.get(None),
        "undeclared": UNDECLARED.get(None),
        "user_id": flask.g.get("user_id") if in_app else None,
        "g_undeclared": flask.g.get("undeclared") if in_app else None,
        "app_context": in_app,
        "app_name": flask.current_app.name if in_app else None,
        "request_context": flask.has_request_context(),
        "apps_created": len(_apps),
        "pid": os.getpid(),
    }


def observe_then_pollute(*_: Any) -> dict[str, Any]:
    """Report, then set every variable and ``g`` attribute, as a careless task would."""
    seen = observe()
    REQUEST_ID.set("polluted")
    TENANT.set("polluted")
    UNDECLARED.set("polluted")
    if flask.has_app_context():
        flask.g.user_id = "polluted"
    return seen


def echo_request_id(number: int) -> tuple[int, str | None]:
    return number, REQUEST_ID.get(None)


def touch(path: str) -> None:
    Path(path).write_text("ran")


def fail() -> None:
    raise LookupError("raised by the task")


def set_request(request_id: str, tenant: Any = "acme", user_id: Any = 42) -> None:
    """Set the declared and undeclared values the way a request handler does (inside a request context)."""
    REQUEST_ID.set(request_id)
    TENANT.set(tenant)
    UNDECLARED.set("must-not-cross")
    flask.g.user_id = user_id
    flask.g.undeclared = "must-not-cross"


EXPECTED_KEYS = ("request_id", "tenant", "undeclared", "user_id", "g_undeclared", "app_context", "request_context")


def declared_view(request_id: str, tenant: Any = "acme", user_id: Any = 42) -> dict[str, Any]:
    """What a worker must see for a request set up by :func:`set_request`: exactly the declared values."""
    return {
        "request_id": request_id,
        "tenant": tenant,
        "undeclared": None,
        "user_id": user_id,
        "g_undeclared": None,
        "app_context": True,
        "request_context": False,
    }


def view(seen: dict[str, Any]) -> dict[str, Any]:
    return {key: seen[key] for key in EXPECTED_KEYS}


WEB_APP = flask.Flask("carrier_support_web")
