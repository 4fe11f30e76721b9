"""``ctxsnap.adapters.quart.to_thread``: arguments, errors, and what a cancelled caller leaves behind."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from typing import TYPE_CHECKING, Any

import pytest

import ctxsnap
from tests.support import TIMEOUT, run, until

if TYPE_CHECKING:
    from quart import Quart

pytestmark = pytest.mark.quart

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("quart_to_thread_request_id")
LEFT_BEHIND: contextvars.ContextVar[str] = contextvars.ContextVar("quart_to_thread_left_behind")


def test_arguments_and_the_result_pass_through(app: Quart) -> None:
    from ctxsnap.adapters.quart import to_thread

    def child(a: int, b: int, *, scale: int) -> tuple[int, str]:
        import quart

        return (a + b) * scale, quart.request.path

    async def main() -> tuple[int, str]:
        async with app.test_request_context("/items/3"):
            return await to_thread(child, 1, 2, scale=10)

    assert run(main()) == (30, "/items/3")


def test_outside_an_event_loop_it_says_where_to_call_it_from() -> None:
    from ctxsnap.adapters.quart import to_thread

    coroutine = to_thread(print)
    with pytest.raises(RuntimeError, match=r"needs a running asyncio event loop.*Await it inside an async view"):
        coroutine.send(None)
    coroutine.close()


def test_an_async_function_is_refused_because_its_body_would_run_outside_the_snapshot(app: Quart) -> None:
    from ctxsnap.adapters.quart import to_thread

    async def handler() -> None:
        pass

    async def main() -> None:
        with pytest.raises(TypeError, match="async callable"):
            await to_thread(handler)  # type: ignore[unused-coroutine]  # refused at run time; the signature allows it

    run(main())


def test_a_callable_wrapped_earlier_keeps_the_snapshot_it_was_wrapped_in(app: Quart) -> None:
    import quart

    from ctxsnap.adapters.quart import to_thread

    async def main() -> tuple[Any, ...]:
        async with app.test_request_context("/items/1"):
            REQUEST_ID.set("first")
            quart.g.user = "alice"
            with ctxsnap.capture() as snapshot:
                wrapped = snapshot.wrap(lambda: (REQUEST_ID.get(), quart.g.user))
        async with app.test_request_context("/items/2"):
            REQUEST_ID.set("second")
            quart.g.user = "bob"
            return await to_thread(wrapped)

    assert run(main()) == ("first", "alice")


def _worker_state() -> tuple[int, str | None, str | None, bool, bool]:
    import quart

    return (
        threading.get_ident(),
        REQUEST_ID.get(None),
        LEFT_BEHIND.get(None),
        quart.has_app_context(),
        quart.has_request_context(),
    )


def test_a_cancelled_caller_leaves_nothing_in_the_worker_nor_in_the_loop(app: Quart) -> None:
    import quart

    from ctxsnap.adapters.quart import to_thread

    errors: list[dict[str, Any]] = []
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quart-cancel")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)  # one worker: the next task lands on the thread the cancelled one used
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        clean = await loop.run_in_executor(None, _worker_state)
        entered, release, finished = threading.Event(), threading.Event(), threading.Event()

        def child() -> str:
            entered.set()
            LEFT_BEHIND.set("set by the cancelled task")
            REQUEST_ID.set("changed by the cancelled task")
            quart.g.user = "mallory"
            if not release.wait(TIMEOUT):
                raise AssertionError("never released")
            finished.set()
            return "result nobody will read"

        async with app.test_request_context("/items/1"):
            REQUEST_ID.set("parent")
            quart.g.user = "alice"
            call = asyncio.ensure_future(to_thread(child))
            await until(entered.is_set, "the worker to start")
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            # The caller is back at once, its own context untouched, while the thread still runs.
            assert not finished.is_set()
            assert (REQUEST_ID.get(), quart.g.user) == ("parent", "alice")
            release.set()
            after = await loop.run_in_executor(None, _worker_state)
        assert finished.is_set()
        assert after == clean
        assert asyncio.all_tasks() == {asyncio.current_task()}

    try:
        run(main())
    finally:
        pool.shutdown(wait=True)
    assert errors == [], "the loop reported a stray error (an exception nobody retrieved?)"


def test_a_caller_cancelled_before_the_worker_started_never_runs_the_function(app: Quart) -> None:
    from ctxsnap.adapters.quart import to_thread

    ran: list[bool] = []
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="quart-cancel-queued")
    busy = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        blocker = loop.run_in_executor(None, busy.wait, TIMEOUT)  # occupies the only worker
        async with app.test_request_context("/items/1"):
            queued = asyncio.ensure_future(to_thread(lambda: ran.append(True)))
            await asyncio.sleep(0)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
        busy.set()
        await blocker
        await loop.run_in_executor(None, lambda: None)  # the worker has drained its queue

    try:
        run(main())
    finally:
        pool.shutdown(wait=True)
    assert ran == []


def test_the_selection_comes_with_the_callable_and_every_keyword_reaches_the_function(app: Quart) -> None:
    # to_thread passes every keyword on, as asyncio.to_thread does, so a keyword named include= is the function's;
    # what the snapshot carries is chosen where the callable is wrapped (docs/async.md, "Choosing what travels").
    from ctxsnap.adapters.quart import to_thread

    def child(*, include: str) -> tuple[bool, bool, str]:
        import quart

        return quart.has_app_context(), quart.has_request_context(), include

    async def main() -> tuple[bool, bool, str]:
        async with app.test_request_context("/items/3"):
            return await to_thread(ctxsnap.wrap(child, exclude=["quart.request"]), include="the function's")

    assert run(main()) == (True, False, "the function's")
