"""Quart's ``g`` through a :class:`ctxsnap.Carrier`: exported in a Quart app context, restored in a sync worker."""

from __future__ import annotations

import concurrent.futures
import contextvars
from typing import TYPE_CHECKING, Any

import pytest

import ctxsnap
from tests.support import TIMEOUT, run

if TYPE_CHECKING:
    from quart import Quart

pytestmark = pytest.mark.quart

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("quart_carrier_request_id")


def probe() -> dict[str, Any]:
    import quart

    in_app = quart.has_app_context()
    return {
        "request_id": REQUEST_ID.get(None),
        "user_id": quart.g.get("user_id") if in_app else None,
        "undeclared": quart.g.get("undeclared") if in_app else None,
        "app": quart.current_app.name if in_app else None,
        "request": quart.has_request_context(),
    }


def test_g_crosses_into_the_carriers_quart_app(app: Quart) -> None:
    import quart

    worker_app = quart.Quart("quart_carrier_worker")
    carrier = ctxsnap.Carrier("quart-carrier-tests", vars=[REQUEST_ID], g=["user_id"], app=lambda: worker_app)

    async def export() -> str:
        async with app.test_request_context("/"):
            REQUEST_ID.set("q-1")
            quart.g.user_id = 7
            quart.g.undeclared = "must-not-cross"
            return carrier.export()

    payload = contextvars.Context().run(run, export())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        seen = pool.submit(carrier.run, payload, probe).result(TIMEOUT)
        after = pool.submit(probe).result(TIMEOUT)
    assert seen == {
        "request_id": "q-1",
        "user_id": 7,
        "undeclared": None,
        "app": "quart_carrier_worker",
        "request": False,
    }
    assert after == {"request_id": None, "user_id": None, "undeclared": None, "app": None, "request": False}
