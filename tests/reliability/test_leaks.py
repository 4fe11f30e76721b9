"""No leaks: a finished task holds nothing alive, and memory stays flat however many tasks run.

A snapshot holds the request, ``g`` and every ContextVar value of the moment it was taken. If a worker thread,
an executor or ctxsnap's own caches kept one alive, a long-running server would slowly hoard requests. These
tests watch objects through weak references and the heap through ``tracemalloc``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import tracemalloc
import weakref
from collections.abc import Callable
from typing import Any

import flask
import pytest

import ctxsnap
from ctxsnap.adapters import asyncio as ctxsnap_asyncio
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.support import TIMEOUT

from ._flask_support import make_app

payload: contextvars.ContextVar[object] = contextvars.ContextVar("reliability_leaks_payload")

#: Heap growth allowed between two windows of tasks after warm-up. A leak of a single small object per task
#: (about 50 bytes) over a window of 45,000 tasks is over 2 MB, far above this; allocator and interning noise is
#: far below it.
SLACK_BYTES = 256 * 1024
WARM_UP = 10_000
WINDOW = 45_000


class Marker:
    """A value to set in a ContextVar; it lives exactly as long as some context holding it."""


def _read_payload() -> object:
    return payload.get(None)


def _collected(ref: weakref.ref[Any]) -> bool:
    gc.collect()
    return ref() is None


def _let_the_worker_move_on(pool: Any) -> None:
    """Make a one-worker pool's thread drop its reference to the last task it ran.

    A pool worker hands over the result (waking the caller) a moment *before* it deletes its reference to the
    task, and the task holds the snapshot. One more task through the same single worker means that moment has
    passed. Without this the weak-reference checks below would race with the worker, and fail under load.
    """
    pool.submit(int).result(timeout=TIMEOUT)


def _in_own_context(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a throw-away copy of the context, so only what ``fn`` hands out can keep its values alive."""
    return contextvars.copy_context().run(fn)


def test_snapshot_and_its_values_are_collected_once_wrapped_callables_are_dropped() -> None:
    def scenario() -> tuple[Callable[[], object], weakref.ref[Marker], weakref.ref[ctxsnap.Snapshot]]:
        marker = Marker()
        payload.set(marker)
        snap = ctxsnap.capture()
        return snap.wrap(_read_payload), weakref.ref(marker), weakref.ref(snap)

    task, marker_ref, snap_ref = _in_own_context(scenario)
    with ctxsnap.ThreadPoolExecutor(max_workers=1) as pool:
        assert all(f.result(timeout=TIMEOUT) is marker_ref() for f in [pool.submit(task) for _ in range(50)])
        # While a wrapped callable is alive its values must be too: a late child still sees its snapshot.
        assert not _collected(marker_ref)
        del task
        # The worker, alive and idle, sees nothing of it; and having run this, it has let go of the last task.
        assert pool.submit(_read_payload).result(timeout=TIMEOUT) is None
        assert _collected(snap_ref), "the snapshot outlived the last callable wrapped from it"
        assert _collected(marker_ref), "a ContextVar value outlived the last callable that carried it"


def test_thread_objects_kept_after_join_hold_no_snapshot() -> None:
    def scenario() -> tuple[ctxsnap.Thread, weakref.ref[Marker]]:
        marker = Marker()
        payload.set(marker)
        thread = ctxsnap.Thread(target=_read_payload)
        thread.start()
        return thread, weakref.ref(marker)

    thread, marker_ref = _in_own_context(scenario)
    thread.join(timeout=TIMEOUT)
    assert not thread.is_alive()
    assert _collected(marker_ref), "a finished ctxsnap.Thread still holds its snapshot"


def test_executor_submissions_hold_nothing_after_their_futures_are_dropped() -> None:
    def scenario(pool: ctxsnap.ContextExecutor) -> weakref.ref[Marker]:
        marker = Marker()
        payload.set(marker)
        futures = [pool.submit(_read_payload) for _ in range(20)]
        futures += [pool.submit(ctxsnap.wrap(_read_payload))]
        assert list(pool.map(lambda _: _read_payload(), range(20))) == [marker] * 20
        assert all(f.result(timeout=TIMEOUT) is marker for f in futures)
        return weakref.ref(marker)

    from concurrent.futures import ThreadPoolExecutor

    with ctxsnap.ContextExecutor(ThreadPoolExecutor(max_workers=1)) as pool:
        marker_ref = contextvars.copy_context().run(scenario, pool)
        _let_the_worker_move_on(pool)
        assert _collected(marker_ref)


def test_asyncio_helpers_release_the_snapshot_after_the_await() -> None:
    async def scenario() -> weakref.ref[Marker]:
        marker = Marker()
        payload.set(marker)
        assert await ctxsnap_asyncio.to_thread(_read_payload) is marker
        assert await ctxsnap_asyncio.run_in_executor(None, _read_payload) is marker
        return weakref.ref(marker)

    async def main() -> weakref.ref[Marker]:
        # The scenario runs as a task of its own, so its context dies with it, as a request's would.
        return await asyncio.create_task(scenario())

    marker_ref = asyncio.run(main())
    assert _collected(marker_ref)


def _heap_after(run_tasks: Callable[[int], None], count: int) -> int:
    run_tasks(count)
    gc.collect()
    current, _peak = tracemalloc.get_traced_memory()
    return current


def assert_memory_flat(run_tasks: Callable[[int], None]) -> tuple[int, int]:
    """Run ``WARM_UP`` tasks, then two windows of ``WINDOW`` tasks; the heap must not grow across them."""
    tracemalloc.start()
    try:
        after_warm_up = _heap_after(run_tasks, WARM_UP)
        after_first = _heap_after(run_tasks, WINDOW)
        after_second = _heap_after(run_tasks, WINDOW)
    finally:
        tracemalloc.stop()
    growth = (after_first - after_warm_up, after_second - after_first)
    assert max(growth) < SLACK_BYTES, (
        f"heap grew by {growth[0]} then {growth[1]} bytes over two windows of {WINDOW} tasks"
    )
    return growth


def test_memory_is_flat_across_100_000_captures() -> None:
    """Capture, wrap and run per task, inline: every line of ctxsnap's own per-task path, no thread hop.

    The thread hop through a pool is covered by the Flask test below, which submits 100,000 tasks.
    """
    request_marker = Marker()
    payload.set(request_marker)

    def run_tasks(count: int) -> None:
        for i in range(count):
            if i % 2:
                assert ctxsnap.wrap(_read_payload)() is request_marker
            else:
                with ctxsnap.capture() as snap:
                    assert snap.run(_read_payload) is request_marker

    assert WARM_UP + 2 * WINDOW == 100_000
    assert_memory_flat(run_tasks)


def test_memory_is_flat_across_100_000_runs_of_one_wrapped_callable_with_providers() -> None:
    """The reuse path: one wrapper, many runs, each in a fresh copy; a provider with an undo on every run."""
    from ._support import ThreadStackProvider, registered

    provider = ThreadStackProvider("test.leaks")
    with registered(provider):
        wrapped = ctxsnap.wrap(lambda: (payload.get(None), len(provider.stack())))
    # Set after the capture: the runs must not see it, however many of them there are.
    payload.set(Marker())

    def run_tasks(count: int) -> None:
        for _ in range(count):
            assert wrapped() == (None, 1)

    assert_memory_flat(run_tasks)
    assert provider.stack() == []


# -- Flask: the request and its g ------------------------------------------------------------------------------


def _flask_task() -> tuple[object, str]:
    flask.g.written_by_worker = Marker()
    return flask.g.request_marker, flask.request.path


@pytest.mark.parametrize("how", ["wrap", "executor", "thread", "teardown-mode", "copy_current_request_context"])
def test_flask_request_and_g_are_collected_after_the_tasks_finish(how: str) -> None:
    app, _ = make_app(teardown=how == "teardown-mode")
    pool = ctxsnap.ThreadPoolExecutor(max_workers=1)
    with app.test_request_context("/leaks"):
        request_ref = weakref.ref(flask.request._get_current_object())  # type: ignore[attr-defined]
        g_ref = weakref.ref(flask.g._get_current_object())
        marker = Marker()
        marker_ref = weakref.ref(marker)
        flask.g.request_marker = marker
        del marker
        if how == "executor":
            results = [f.result(timeout=TIMEOUT) for f in [pool.submit(_flask_task) for _ in range(10)]]
        elif how == "thread":
            collected: list[tuple[object, str]] = []
            thread = ctxsnap.Thread(target=lambda: collected.append(_flask_task()))
            thread.start()
            thread.join(timeout=TIMEOUT)
            results = collected
            del collected
        elif how == "copy_current_request_context":
            task = ctxsnap_flask.copy_current_request_context(_flask_task)
            results = [f.result(timeout=TIMEOUT) for f in [pool.submit(task) for _ in range(10)]]
            del task
        else:
            task = ctxsnap.wrap(_flask_task)
            results = [f.result(timeout=TIMEOUT) for f in [pool.submit(task) for _ in range(10)]]
            del task
        assert results and all(r == (marker_ref(), "/leaks") for r in results)
        del results
    try:
        # The worker, still alive and idle, holds no Flask context (and has let go of the last task).
        assert pool.submit(flask.has_app_context).result(timeout=TIMEOUT) is False
        assert _collected(request_ref), "the request object is still alive after its tasks finished"
        assert _collected(g_ref), "the request's g is still alive after its tasks finished"
        assert _collected(marker_ref), "a value of g is still alive after its tasks finished"
    finally:
        pool.shutdown(wait=True)


def test_memory_is_flat_across_100_000_tasks_from_flask_requests() -> None:
    """Requests come and go (one per 250 tasks) while one shared pool runs their tasks."""
    app, _ = make_app()
    pool = ctxsnap.ThreadPoolExecutor(max_workers=2)
    per_request = 250

    def run_tasks(count: int) -> None:
        for request_number in range(count // per_request):
            with app.test_request_context(f"/r/{request_number}"):
                flask.g.request_marker = request_number
                futures = [pool.submit(_flask_task) for _ in range(per_request)]
                assert all(f.result(timeout=TIMEOUT) == (request_number, f"/r/{request_number}") for f in futures)

    try:
        assert_memory_flat(run_tasks)
    finally:
        pool.shutdown(wait=True)


# -- Quart: the request and its g, through to_thread ----------------------------------------------------------


@pytest.mark.quart
@pytest.mark.parametrize("teardown", [False, True], ids=["default", "teardown-mode"])
def test_quart_request_and_g_are_collected_after_to_thread_tasks(teardown: bool) -> None:
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    from ._quart_support import make_quart_app

    app, _ = make_quart_app(teardown=teardown)

    def task() -> object:
        quart.g.written_by_worker = Marker()
        return quart.g.request_marker

    async def scenario() -> tuple[bool, bool, bool, bool]:
        # One worker thread, so that one more call through it proves it let go of the tasks before.
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        async with app.test_request_context("/leaks"):
            request_ref = weakref.ref(quart.request._get_current_object())  # type: ignore[attr-defined]
            g_ref = weakref.ref(quart.g._get_current_object())
            marker = Marker()
            marker_ref = weakref.ref(marker)
            quart.g.request_marker = marker
            del marker
            results = await asyncio.gather(*(ctxsnap_quart.to_thread(task) for _ in range(10)))
            assert all(r is marker_ref() for r in results)
            del results
        # Checked while the loop's worker thread is still alive and idle.
        idle_worker_has_context = await asyncio.get_running_loop().run_in_executor(None, quart.has_app_context)
        return _collected(request_ref), _collected(g_ref), _collected(marker_ref), idle_worker_has_context

    request_gone, g_gone, marker_gone, idle_worker_has_context = asyncio.run(scenario())
    assert request_gone, "the request object is still alive after its tasks finished"
    assert g_gone, "the request's g is still alive after its tasks finished"
    assert marker_gone, "a value of g is still alive after its tasks finished"
    assert not idle_worker_has_context
