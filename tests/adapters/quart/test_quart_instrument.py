"""``ctxsnap.instrument()`` in a Quart app: its hand-offs carry the request with a private ``g``, Quart's own
``run_sync`` keeps Quart's semantics, and no worker thread keeps a request alive."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import threading
import weakref
from asyncio import to_thread as imported_before_instrument
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import pytest

import ctxsnap
from tests.support import TIMEOUT, run

if TYPE_CHECKING:
    from quart import Quart

pytestmark = pytest.mark.quart

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("quart_instrument_request_id", default="unset")


@pytest.fixture(autouse=True)
def uninstrumented() -> Iterator[None]:
    try:
        yield
    finally:
        ctxsnap.uninstrument()


def seen() -> tuple[str, Any, str, str]:
    import quart

    return REQUEST_ID.get(), quart.g._get_current_object(), quart.request.path, quart.current_app.name


def test_sync_before_request_writes_g_for_the_view_while_instrumented(app: Quart) -> None:
    """Quart runs sync handlers through run_sync (copy_context().run in run_in_executor): left alone."""
    import quart

    @app.before_request
    def load_user() -> None:
        quart.g.user = "alice"

    @app.route("/me")
    def me() -> str:  # a sync view: Quart runs it through run_sync too
        quart.g.seen_by_view = True
        return str(quart.g.user)

    @app.after_request
    async def check(response: Any) -> Any:
        response.headers["X-Seen-By-View"] = str(getattr(quart.g, "seen_by_view", False))
        return response

    async def main() -> tuple[bytes, str]:
        response = await app.test_client().get("/me")
        return await response.get_data(as_text=False), response.headers["X-Seen-By-View"]

    with ctxsnap.instrumented():
        assert "asyncio.BaseEventLoop.run_in_executor" in ctxsnap.instrumentation()
        assert run(main()) == (b"alice", "True")


def test_every_hand_off_from_an_async_view_gets_the_request_and_a_private_g(app: Quart) -> None:
    import quart

    results: list[Any] = []

    @app.route("/work")
    async def work() -> str:
        REQUEST_ID.set("request-9")
        quart.g.user = "alice"
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            box: list[Any] = []
            thread = threading.Thread(target=lambda: box.append(seen()))
            thread.start()
            await loop.run_in_executor(None, thread.join, TIMEOUT)
            results.extend(
                [
                    box[0],
                    await asyncio.wrap_future(pool.submit(seen)),
                    await asyncio.to_thread(seen),
                    await loop.run_in_executor(None, seen),
                    await loop.run_in_executor(pool, seen),
                    await anyio.to_thread.run_sync(seen),
                ]
            )
        results.append(quart.g._get_current_object())
        return "done"

    async def main() -> bytes:
        response = await app.test_client().get("/work")
        return await response.get_data(as_text=False)

    with ctxsnap.instrumented():
        assert run(main()) == b"done"
    *children, parent_g = results
    assert len(children) == 6
    for value, g, path, app_name in children:
        assert (value, g.user, path, app_name) == ("request-9", "alice", "/work", app.name)
        assert g is not parent_g


def test_worker_threads_started_during_a_request_keep_no_request_alive(app: Quart) -> None:
    import quart

    requests: list[weakref.ref[Any]] = []
    loop = asyncio.new_event_loop()

    @app.route("/first")
    async def first() -> str:
        requests.append(weakref.ref(quart.request._get_current_object()))  # type: ignore[attr-defined]  # Quart types its proxies as the object they stand for
        # The first use of this loop's default executor and of anyio's workers: their threads start here.
        value = await asyncio.to_thread(REQUEST_ID.get)
        await anyio.to_thread.run_sync(REQUEST_ID.get)
        return value

    async def main() -> bytes:
        REQUEST_ID.set("from the test")
        response = await app.test_client().get("/first")
        return await response.get_data(as_text=False)

    with ctxsnap.instrumented():
        assert loop.run_until_complete(main()) == b"from the test"
        gc.collect()
        assert requests[0]() is None, "a worker thread started during the request keeps the request alive"
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def test_the_quart_config_key_instruments(app: Quart) -> None:
    from ctxsnap.adapters import quart as ctxsnap_quart

    app.config["CTXSNAP_INSTRUMENT"] = 1
    with pytest.raises(TypeError, match=r"must be True or False, not int 1\. Set it to True"):
        ctxsnap_quart.CtxSnap(app)
    app.config["CTXSNAP_INSTRUMENT"] = True
    ctxsnap_quart.CtxSnap(app)
    assert "asyncio.to_thread" in ctxsnap.instrumentation()


def test_to_thread_imported_by_name_before_instrument_escapes_it(app: Quart) -> None:
    """What docs/instrument.md warns about: the name bound at import is the standard function."""
    import quart

    @app.route("/escape")
    async def escape() -> str:
        quart.g.user = "alice"

        def child() -> None:
            quart.g.user = "written by the child"

        await imported_before_instrument(child)  # the parent's own g: the standard library's behaviour
        escaped = quart.g.user
        quart.g.user = "alice"
        await asyncio.to_thread(child)  # looked up at the call: instrumented, a private g
        return f"{escaped} | {quart.g.user}"

    async def main() -> bytes:
        response = await app.test_client().get("/escape")
        return await response.get_data(as_text=False)

    with ctxsnap.instrumented():
        assert run(main()) == b"written by the child | alice"
