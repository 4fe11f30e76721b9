"""``ctxsnap.instrument()``: the standard hand-offs carry the snapshot while instrumented, and only then.

The conformance suite plays the whole semantics table against each instrumented hand-off; this module checks
what is particular to instrumentation: reversibility, idempotence, the switches and the selection, bad input,
subclasses, pool workers starting clean (and keeping no request alive), ``detached()``, and the config key.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.threads
import concurrent.futures
import contextvars
import gc
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import flask
import pytest
import trio

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.support import TIMEOUT

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("instrument_request_id", default="unset")

#: Every attribute instrument() may replace, with the object it holds before any test runs.
ORIGINALS: dict[tuple[Any, str], Any] = {
    (threading.Thread, "start"): vars(threading.Thread)["start"],
    (concurrent.futures.ThreadPoolExecutor, "submit"): vars(concurrent.futures.ThreadPoolExecutor)["submit"],
    (asyncio.base_events.BaseEventLoop, "run_in_executor"): vars(asyncio.base_events.BaseEventLoop)[
        "run_in_executor"
    ],
    (asyncio, "to_thread"): asyncio.to_thread,
    (asyncio.threads, "to_thread"): asyncio.threads.to_thread,
    (anyio.to_thread, "run_sync"): anyio.to_thread.run_sync,
}


def assert_originals() -> None:
    for (owner, name), original in ORIGINALS.items():
        assert vars(owner)[name] is original, f"{owner.__name__}.{name} is not the original object"
    assert "map" not in vars(concurrent.futures.ThreadPoolExecutor), "ThreadPoolExecutor.map was left behind"


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    assert ctxsnap.instrumentation() == (), "a previous test left instrumentation on"
    try:
        yield
    finally:
        ctxsnap.uninstrument()
    assert_originals()


@pytest.fixture
def app() -> flask.Flask:
    app = flask.Flask("instrumented")
    app.config["SECRET_KEY"] = "tests only"

    @app.route("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return str(item_id)

    return app


def seen() -> tuple[str, bool, Any, str | None, str | None]:
    """What a worker sees: the ContextVar, whether an app context exists, its g object, the path, the app name."""
    if not flask.has_app_context():
        return REQUEST_ID.get(), False, None, None, None
    path = flask.request.path if flask.has_request_context() else None
    return REQUEST_ID.get(), True, flask.g._get_current_object(), path, flask.current_app.name


def thread_result(start: Callable[[threading.Thread], None], fn: Callable[[], Any]) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    start(thread)
    thread.join(TIMEOUT)
    return box[0]


def in_request(app: flask.Flask, body: Callable[[], Any]) -> Any:
    def run() -> Any:
        with app.test_request_context("/items/7"):
            REQUEST_ID.set("request-7")
            flask.g.user = "alice"
            return body()

    return contextvars.copy_context().run(run)


# -- on, off, reversible --------------------------------------------------------------------------------------


def test_off_is_the_standard_library(app: flask.Flask) -> None:
    def body() -> Any:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return thread_result(threading.Thread.start, seen), pool.submit(seen).result(TIMEOUT)

    assert in_request(app, body) == (("unset", False, None, None, None),) * 2
    with ctxsnap.instrumented():
        pass
    assert in_request(app, body) == (("unset", False, None, None, None),) * 2


def test_on_every_hand_off_carries_the_request_with_a_private_g(app: flask.Flask) -> None:
    async def on_asyncio() -> list[Any]:
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(1) as own:
            return [
                await asyncio.to_thread(seen),
                await loop.run_in_executor(None, seen),
                await loop.run_in_executor(own, seen),
                await anyio.to_thread.run_sync(seen),
            ]

    def body() -> Any:
        parent_g = flask.g._get_current_object()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = [
                thread_result(threading.Thread.start, seen),
                pool.submit(seen).result(TIMEOUT),
                *pool.map(lambda _: seen(), range(2)),
                *asyncio.run(on_asyncio()),
                anyio.run(anyio.to_thread.run_sync, seen, backend="trio"),
            ]
        return parent_g, results

    with ctxsnap.instrumented():
        parent_g, results = in_request(app, body)
    assert len(results) == 9
    for value, has_app, g, path, app_name in results:
        assert (value, has_app, path, app_name) == ("request-7", True, "/items/7", "instrumented")
        assert g is not parent_g and g.user == "alice"


def test_uninstrument_restores_every_original_object() -> None:
    ctxsnap.instrument()
    assert vars(threading.Thread)["start"] is not ORIGINALS[(threading.Thread, "start")]
    assert "map" in vars(concurrent.futures.ThreadPoolExecutor)
    ctxsnap.uninstrument()
    assert_originals()
    ctxsnap.uninstrument()  # a second call does nothing
    assert_originals()


def test_instrument_is_idempotent_one_layer_however_often() -> None:
    ctxsnap.instrument()
    first = {key: vars(owner)[name] for key in ORIGINALS for owner, name in [key]}
    ctxsnap.instrument()
    ctxsnap.instrument()
    assert {key: vars(owner)[name] for key in ORIGINALS for owner, name in [key]} == first
    assert ctxsnap.instrumentation() == (
        "threading.Thread.start",
        "concurrent.futures.ThreadPoolExecutor.submit",
        "concurrent.futures.ThreadPoolExecutor.map",
        "asyncio.BaseEventLoop.run_in_executor",
        "asyncio.threads.to_thread",
        "asyncio.to_thread",
        "anyio.to_thread.run_sync",
    )


def test_instrumented_restores_the_settings_before_the_block() -> None:
    ctxsnap.instrument(threads=False)
    before = ctxsnap.instrumentation()
    with ctxsnap.instrumented(executors=False, asyncio=False, anyio=False):
        assert ctxsnap.instrumentation() == ("threading.Thread.start",)
    assert ctxsnap.instrumentation() == before
    assert vars(threading.Thread)["start"] is ORIGINALS[(threading.Thread, "start")]


def test_instrument_and_uninstrument_from_many_threads_at_once_leave_one_layer() -> None:
    barrier = threading.Barrier(6, timeout=TIMEOUT)

    def toggle(index: int) -> None:
        barrier.wait()
        for _ in range(20):
            ctxsnap.instrument() if index % 2 else ctxsnap.uninstrument()

    threads = [threading.Thread(target=toggle, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    ctxsnap.instrument()
    start = vars(threading.Thread)["start"]
    assert start.__wrapped__ is ORIGINALS[(threading.Thread, "start")], "more than one ctxsnap layer"
    ctxsnap.uninstrument()
    assert_originals()


# -- switches and selection -------------------------------------------------------------------------------------


def test_each_switch_patches_only_its_hand_offs() -> None:
    ctxsnap.instrument(threads=False, asyncio=False, anyio=False)
    assert ctxsnap.instrumentation() == (
        "concurrent.futures.ThreadPoolExecutor.submit",
        "concurrent.futures.ThreadPoolExecutor.map",
    )
    assert vars(threading.Thread)["start"] is ORIGINALS[(threading.Thread, "start")]
    ctxsnap.instrument(executors=False, asyncio=False)  # replaces the settings: executors restored
    assert ctxsnap.instrumentation() == ("threading.Thread.start", "anyio.to_thread.run_sync")
    assert (
        vars(concurrent.futures.ThreadPoolExecutor)["submit"]
        is ORIGINALS[(concurrent.futures.ThreadPoolExecutor, "submit")]
    )


def test_include_and_exclude_apply_to_every_capture(app: flask.Flask) -> None:
    other: contextvars.ContextVar[str] = contextvars.ContextVar("instrument_other", default="unset")

    def body() -> Any:
        other.set("other")
        return thread_result(threading.Thread.start, lambda: (*seen()[:2], other.get()))

    with ctxsnap.instrumented(exclude=["flask"]):
        assert in_request(app, body) == ("request-7", False, "other")
    with ctxsnap.instrumented(include=[REQUEST_ID]):
        assert in_request(app, body) == ("request-7", False, "unset")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"threads": "yes"},
            TypeError,
            r"instrument\(threads=...\) takes True or False, not str 'yes'\. Pass threads=False",
        ),
        (
            {"threads": False, "executors": False, "asyncio": False, "anyio": False},
            ValueError,
            r"patch no hand-off\. Leave one switched on",
        ),
        ({"include": ["no-such-provider"]}, ValueError, "unknown provider"),
        ({"exclude": 42}, TypeError, "exclude="),
    ],
)
def test_bad_arguments_fail_clearly_and_patch_nothing(
    arguments: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        ctxsnap.instrument(**arguments)
    assert ctxsnap.instrumentation() == ()
    assert_originals()


def test_bad_arguments_leave_the_previous_settings_in_force() -> None:
    ctxsnap.instrument(asyncio=False)
    before = ctxsnap.instrumentation()
    with pytest.raises(ValueError):
        ctxsnap.instrument(include=[])
    assert ctxsnap.instrumentation() == before


# -- what passes through unchanged ------------------------------------------------------------------------------


def test_input_the_standard_library_accepts_passes_through(app: flask.Flask) -> None:
    async def coroutine_function() -> str:
        return "awaited"

    def body() -> Any:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # The standard library runs it and returns the coroutine object; ctxsnap would refuse it.
            coroutine = pool.submit(coroutine_function).result(TIMEOUT)
            result = asyncio.run(coroutine)
            not_callable: Any = pool.submit(42)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="not callable"):
                not_callable.result(TIMEOUT)
        return result

    with ctxsnap.instrumented():
        assert in_request(app, body) == "awaited"


def test_ctxsnaps_own_helpers_are_not_captured_twice(app: flask.Flask) -> None:
    def body() -> Any:
        with ctxsnap.capture() as snapshot:
            wrapped = snapshot.wrap(seen)
        flask.g.user = "bob"  # after the capture: the wrapped callable keeps the snapshot it carries
        REQUEST_ID.set("later")
        with concurrent.futures.ThreadPoolExecutor(1) as pool, ctxsnap.ThreadPoolExecutor(1) as own:
            return pool.submit(wrapped).result(TIMEOUT), own.submit(seen).result(TIMEOUT)

    with ctxsnap.instrumented():
        (value, _, g, _, _), (own_value, _, own_g, _, _) = in_request(app, body)
    assert (value, g.user) == ("request-7", "alice")
    assert (own_value, own_g.user) == ("later", "bob")


# -- subclasses -------------------------------------------------------------------------------------------------


class DefinedBefore(concurrent.futures.ThreadPoolExecutor):
    """A third-party pool defined at import, before instrument(): it overrides submit and calls the base."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return super().submit(fn, *args, **kwargs)


class TimerLike(threading.Thread):
    def run(self) -> None:
        self.seen = seen()


def test_subclasses_defined_before_and_after_instrument_capture(app: flask.Flask) -> None:
    ctxsnap.instrument()

    class DefinedAfter(concurrent.futures.ThreadPoolExecutor):
        pass

    def body() -> Any:
        results = []
        for pool_class in (DefinedBefore, DefinedAfter):
            with pool_class(1) as pool:
                results.append(pool.submit(seen).result(TIMEOUT))
                results.extend(pool.map(lambda _: seen(), [0]))
        thread = TimerLike()
        thread.start()
        thread.join(TIMEOUT)
        results.append(thread.seen)
        timer = threading.Timer(0, lambda: results.append(seen()))
        timer.start()
        timer.join(TIMEOUT)
        return results

    results = in_request(app, body)
    assert len(results) == 6
    assert {(value, path, g.user) for value, _, g, path, _ in results} == {("request-7", "/items/7", "alice")}


# -- pool workers start clean -----------------------------------------------------------------------------------


def _worker_state() -> tuple[str, bool]:
    return REQUEST_ID.get(), flask.has_app_context()


def test_pool_worker_threads_start_clean_and_keep_no_request_alive(app: flask.Flask) -> None:
    """Worker threads started during a request: the stdlib pool's, asyncio's default executor's, anyio's, trio's.

    anyio and trio run each call in a copy of the caller's context, so what their worker thread itself holds
    cannot be probed; a worker pinned to the request's snapshot would keep the request alive, which can be.
    """
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop = asyncio.new_event_loop()
    requests: list[weakref.ref[Any]] = []

    async def first_use_on_loop() -> list[Any]:
        return [await asyncio.to_thread(seen), await anyio.to_thread.run_sync(seen)]

    def body() -> list[Any]:
        requests.append(weakref.ref(flask.request._get_current_object()))  # type: ignore[attr-defined]  # Flask types its proxies as the object they stand for
        return [
            pool.submit(seen).result(TIMEOUT),  # starts the pool's worker thread inside the request
            *loop.run_until_complete(first_use_on_loop()),  # the loop's default executor and anyio's worker
            trio.run(_trio_first_use),
        ]

    with ctxsnap.instrumented():
        results = in_request(app, body)
        assert [value for value, *_ in results] == ["request-7"] * 4, "the test is void: nothing was carried"
        gc.collect()
        assert requests[0]() is None, "a worker thread started during the request keeps the request alive"
        with ctxsnap.detached():  # the probes themselves run plain, on the same workers
            assert pool.submit(_worker_state).result(TIMEOUT) == ("unset", False)
            assert loop.run_until_complete(loop.run_in_executor(None, _worker_state)) == ("unset", False)
    pool.shutdown()
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


async def _trio_first_use() -> Any:
    # Through anyio (instrumented) on trio: trio's thread cache starts its worker inside the request.
    return await anyio.to_thread.run_sync(seen)


def test_a_thread_started_inside_detached_starts_clean(app: flask.Flask) -> None:
    def body() -> Any:
        with ctxsnap.detached():
            clean = thread_result(threading.Thread.start, _worker_state)
        return clean, thread_result(threading.Thread.start, _worker_state)

    with ctxsnap.instrumented():
        assert in_request(app, body) == (("unset", False), ("request-7", True))


def test_a_finished_instrumented_thread_keeps_no_request_alive(app: flask.Flask) -> None:
    kept: list[threading.Thread] = []
    requests: list[weakref.ref[Any]] = []

    def body() -> Any:
        requests.append(weakref.ref(flask.request._get_current_object()))  # type: ignore[attr-defined]  # Flask types its proxies as the object they stand for
        thread = threading.Thread(target=seen)
        thread.start()
        thread.join(TIMEOUT)
        kept.append(thread)

    with ctxsnap.instrumented():
        in_request(app, body)
    gc.collect()
    assert requests[0]() is None and kept[0].is_alive() is False


# -- wrappers left under another tool's wrapper -----------------------------------------------------------------


def test_a_wrapper_copied_elsewhere_does_nothing_once_uninstrumented(app: flask.Flask) -> None:
    """What OpenTelemetry does to Timer: it copies the Thread.start it finds into Timer's own class dict."""

    class CopiedStart(threading.Thread):
        pass

    ctxsnap.instrument()
    CopiedStart.start = vars(threading.Thread)["start"]  # type: ignore[method-assign]

    def body() -> Any:
        thread = CopiedStart(target=lambda: box.append(_worker_state()))
        thread.start()
        thread.join(TIMEOUT)

    box: list[Any] = []
    in_request(app, body)
    ctxsnap.uninstrument()
    in_request(app, body)
    assert box == [("request-7", True), ("unset", False)]


def test_a_wrapper_under_another_tools_is_not_wrapped_again_and_is_taken_out_once_on_top() -> None:
    ctxsnap.instrument()
    ours = vars(threading.Thread)["start"]

    def other_tool_start(self: threading.Thread) -> None:
        ours(self)

    other_tool_start.__wrapped__ = ours  # type: ignore[attr-defined]
    threading.Thread.start = other_tool_start  # type: ignore[method-assign]
    ctxsnap.uninstrument()  # cannot take ours out from under the other tool's wrapper
    assert vars(threading.Thread)["start"] is other_tool_start
    ctxsnap.instrument()  # ours is still in the chain: no second layer
    assert vars(threading.Thread)["start"] is other_tool_start
    assert "threading.Thread.start" in ctxsnap.instrumentation()
    threading.Thread.start = ours  # type: ignore[method-assign]  # the other tool uninstalls itself
    ctxsnap.uninstrument()
    assert_originals()


# -- the config key ---------------------------------------------------------------------------------------------


def test_the_flask_config_key_instruments_and_rejects_a_non_bool(app: flask.Flask) -> None:
    app.config["CTXSNAP_INSTRUMENT"] = "yes"
    message = r"app.config\['CTXSNAP_INSTRUMENT'\] must be True or False, not str 'yes'\. Set it to True"
    with pytest.raises(TypeError, match=message):
        ctxsnap_flask.CtxSnap(app)
    assert ctxsnap.instrumentation() == ()
    app.config["CTXSNAP_INSTRUMENT"] = True
    ctxsnap_flask.CtxSnap(app)
    assert "threading.Thread.start" in ctxsnap.instrumentation()


def test_the_config_key_keeps_settings_chosen_in_code(app: flask.Flask) -> None:
    ctxsnap.instrument(threads=False)
    app.config["CTXSNAP_INSTRUMENT"] = True
    ctxsnap_flask.CtxSnap(app)
    assert "threading.Thread.start" not in ctxsnap.instrumentation()


def test_python_m_ctxsnap_shows_the_state_and_how_to_turn_it_on() -> None:
    from ctxsnap.__main__ import report

    assert "instrumentation: off" in report()
    assert "ctxsnap.instrument()" in report()
    ctxsnap.instrument(anyio=False)
    assert "threading.Thread.start" in report()
