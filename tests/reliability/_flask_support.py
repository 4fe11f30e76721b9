"""A small Flask app that records its lifecycle, for the reliability tests that run in every Flask cell.

The load tests use the project's example app on a real server; the fault, leak, stale-snapshot and nesting
tests need to see more (which teardown ran, in which thread, how often), so they use this one through
``test_request_context``.
"""

from __future__ import annotations

from typing import Any

import flask

from ctxsnap.adapters import flask as ctxsnap_flask
from tests.support import Lifecycle


def make_app(*, teardown: bool = False, extension: bool = True) -> tuple[flask.Flask, Lifecycle]:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = "reliability tests only"
    app.config["CTXSNAP_TEARDOWN"] = teardown
    if extension:
        ctxsnap_flask.CtxSnap(app)
    lifecycle = Lifecycle()

    @app.teardown_request
    def record_teardown_request(exc: BaseException | None) -> None:
        lifecycle.record("teardown_request", exc)

    @app.teardown_appcontext
    def record_teardown_appcontext(exc: BaseException | None) -> None:
        lifecycle.record("teardown_appcontext", exc)

    @app.route("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return str(item_id)

    return app, lifecycle


def identity() -> dict[str, Any]:
    """What a worker sees of "which request am I working for", read through every channel Flask offers."""
    return {
        "g": flask.g.get("request_id"),
        "header": flask.request.headers.get("X-Request-Id"),
        "app": flask.current_app.name,
        "url": flask.url_for("item", item_id=1),
    }
