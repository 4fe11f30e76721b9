"""``ctxsnap.adapters.asyncio``: ``to_thread`` and ``run_in_executor`` applying the caller's snapshot.

The semantics table runs against both in ``tests/conformance``; these tests cover the helpers' own promises:
when they capture, how they fail, and what a cancelled caller leaves behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import ctxsnap
from ctxsnap.adapters.asyncio import run_in_executor, to_thread
from tests.support import TIMEOUT, run, until

T = TypeVar("T")

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("asyncio_request_id")
LEFT_BEHIND: contextvars.ContextVar[str] = contextvars.ContextVar("asyncio_left_behind")


def test_to_thread_passes_arguments_and_runs_in_the_callers_context() -> None:
    def child(a: int, *, b: int) -> tuple[int, str, bool]:
        REQUEST_ID.set("changed in the worker")
        return a + b, threading.current_thread().name, threading.current_thread() is threading.main_thread()

    async def main() -> tuple[Any, str]:
        REQUEST_ID.set("caller")
        result = await to_thread(child, 1, b=2)
        return result, REQUEST_ID.get()

    (total, _, on_main_thread), after = run(main())
    assert (total, on_main_thread, after) == (3, False, "caller")


def test_run_in_executor_captures_at_the_call_not_when_awaited() -> None:
    async def main() -> str:
        REQUEST_ID.set("at the call")
        release = threading.Event()

        def child() -> str:
            release.wait(TIMEOUT)
            return REQUEST_ID.get()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = run_in_executor(pool, child)
            REQUEST_ID.set("before the await")
            release.set()
            return await future

    assert run(main()) == "at the call"


def test_exceptions_propagate_unchanged() -> None:
    class Boom(Exception):
        pass

    raised: list[Boom] = []

    def child() -> None:
        raised.append(Boom("no"))
        raise raised[-1]

    async def main() -> None:
        with pytest.raises(Boom) as first:
            await to_thread(child)
        with pytest.raises(Boom) as second:
            await run_in_executor(None, child)
        assert [first.value, second.value] == raised
        assert first.value is raised[0] and second.value is raised[1]

    run(main())


def test_outside_an_event_loop_both_say_where_to_call_them_from() -> None:
    coroutine = to_thread(print)
    with pytest.raises(RuntimeError, match=r"to_thread\(\) needs a running event loop.*ThreadPoolExecutor"):
        coroutine.send(None)
    coroutine.close()
    with pytest.raises(RuntimeError, match=r"run_in_executor\(\) needs a running event loop"):
        run_in_executor(None, print)


def test_an_async_function_is_refused() -> None:
    async def handler() -> None:
        pass

    async def main() -> None:
        with pytest.raises(TypeError, match="async callable"):
            await to_thread(handler)  # type: ignore[unused-coroutine]  # refused at run time; the signature allows it
        with pytest.raises(TypeError, match="async callable"):
            run_in_executor(None, handler)

    run(main())


def test_a_callable_wrapped_earlier_keeps_its_own_snapshot() -> None:
    async def main() -> tuple[str, str]:
        REQUEST_ID.set("wrapped here")
        with ctxsnap.capture() as snapshot:
            wrapped = snapshot.wrap(REQUEST_ID.get)
        REQUEST_ID.set("called here")
        return await to_thread(wrapped), await run_in_executor(None, wrapped)

    assert run(main()) == ("wrapped here", "wrapped here")


def _worker_state(marked: dict[int, str]) -> Callable[[], tuple[int, str | None, str | None, bool]]:
    def state() -> tuple[int, str | None, str | None, bool]:
        ident = threading.get_ident()
        return ident, REQUEST_ID.get(None), LEFT_BEHIND.get(None), ident in marked

    return state


@pytest.mark.parametrize("helper", ["to_thread", "run_in_executor"])
def test_a_cancelled_caller_leaves_nothing_in_the_worker_nor_in_the_loop(
    helper: str, thread_mark: dict[int, str]
) -> None:
    worker_state = _worker_state(thread_mark)
    errors: list[dict[str, Any]] = []
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asyncio-cancel")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)  # one worker: the next task lands where the cancelled one ran
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        clean = await loop.run_in_executor(None, worker_state)
        entered, release, finished = threading.Event(), threading.Event(), threading.Event()
        marked_in_the_worker: list[bool] = []

        def child() -> None:
            marked_in_the_worker.append(worker_state()[3])
            entered.set()
            LEFT_BEHIND.set("set by the cancelled task")
            REQUEST_ID.set("changed by the cancelled task")
            release.wait(TIMEOUT)
            finished.set()
            raise RuntimeError("an error nobody will retrieve")

        REQUEST_ID.set("caller")
        call = asyncio.ensure_future(to_thread(child) if helper == "to_thread" else run_in_executor(None, child))
        await until(entered.is_set, "the worker to start")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not finished.is_set() and REQUEST_ID.get() == "caller"
        release.set()
        after = await loop.run_in_executor(None, worker_state)
        assert finished.is_set()
        assert marked_in_the_worker == [True], "the test is void: the work did not run inside the snapshot"
        # The same thread, its ContextVars as before, and the thread-local state the provider set is gone.
        assert after == clean
        assert asyncio.all_tasks() == {asyncio.current_task()}

    try:
        run(main())
    finally:
        pool.shutdown(wait=True)
    assert errors == [], "the loop reported a stray error"


@pytest.mark.parametrize("helper", ["to_thread", "run_in_executor"])
def test_a_caller_cancelled_while_its_work_is_queued_never_runs_it(helper: str) -> None:
    ran: list[bool] = []
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asyncio-cancel-queued")
    busy = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        blocker = loop.run_in_executor(None, busy.wait, TIMEOUT)  # occupies the only worker

        def work() -> None:
            ran.append(True)

        queued = asyncio.ensure_future(to_thread(work) if helper == "to_thread" else run_in_executor(None, work))
        await asyncio.sleep(0)  # the helper has captured and handed the work to the executor's queue
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        # The loop passes the cancellation on to the executor's future in a callback of its own: let it run
        # before the worker is freed, as it would be in an app whose worker is busy for longer than a step.
        await asyncio.sleep(0)
        busy.set()
        await blocker
        await loop.run_in_executor(None, lambda: None)  # the worker has drained its queue

    try:
        run(main())
    finally:
        pool.shutdown(wait=True)
    assert ran == []
