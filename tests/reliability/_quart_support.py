"""A small Quart app that records its lifecycle, for the reliability tests marked ``quart``.

Its teardown functions are ``async def`` on purpose: Quart runs a sync teardown function through its executor,
that is in some worker thread, which would make "which thread tore down" meaningless. ctxsnap's teardown mode
runs them in the worker that ran the task, which is what these tests check.

Imported only by tests marked ``quart``, so the Flask-only cells never import Quart.
"""

from __future__ import annotations

import threading
from typing import Any

import quart

from ctxsnap.adapters import quart as ctxsnap_quart
from tests.support import Lifecycle


def make_quart_app(*, teardown: bool = False) -> tuple[quart.Quart, Lifecycle]:
    app = quart.Quart(__name__)
    app.config["CTXSNAP_TEARDOWN"] = teardown
    ctxsnap_quart.CtxSnap(app)
    lifecycle = Lifecycle()

    @app.teardown_request
    async def record_teardown_request(exc: BaseException | None) -> None:
        lifecycle.record("teardown_request", exc)

    @app.teardown_appcontext
    async def record_teardown_appcontext(exc: BaseException | None) -> None:
        lifecycle.record("teardown_appcontext", exc)

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return str(item_id)

    return app, lifecycle


def quart_identity() -> dict[str, Any]:
    """What a worker sees of "which request am I working for", read through Quart's globals."""
    return {
        "g": quart.g.get("request_id"),
        "header": quart.request.headers.get("X-Request-Id"),
        "app": quart.current_app.name,
        "thread": threading.get_ident(),
    }
