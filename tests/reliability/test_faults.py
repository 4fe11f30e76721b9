"""Worker hygiene under faults: whatever goes wrong in a run, the worker thread ends up exactly as before.

Faults come from every side: a provider raising in capture, apply or undo; the task raising, including
``BaseException`` subclasses that ordinary ``except Exception`` code lets through; an executor shut down with
tasks still queued; an async caller cancelled while its thread is busy. After each, a plain task on the same
worker thread looks at that thread's own context.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import threading
import weakref
from typing import Any, cast

import flask
import pytest

import ctxsnap
from ctxsnap.adapters import asyncio as ctxsnap_asyncio
from tests.support import TIMEOUT

from ._flask_support import identity, make_app
from ._support import ThreadStackProvider, WorkerProbe, framework_state, registered

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("reliability_faults_request_id")
child_var: contextvars.ContextVar[str] = contextvars.ContextVar("reliability_faults_child_var")


class Abort(BaseException):
    """A KeyboardInterrupt-like exception: not an Exception, so nothing catches it by accident."""


class Boom(Exception):
    pass


def _task_that_sets_then_raises(exc: BaseException) -> None:
    child_var.set("written by the failing task")
    raise exc


def _reads() -> tuple[str | None, str | None]:
    return request_id.get(None), child_var.get(None)


class RaisesIn(ctxsnap.Provider):
    """A provider that fails in one chosen phase and sets a ContextVar before failing."""

    def __init__(self, name: str, phase: str) -> None:
        self.name = name
        self.phase = phase
        self.undone = 0

    def capture(self) -> object:
        if self.phase == "capture":
            raise Boom(f"{self.name} cannot capture")
        return "state"

    def apply(self, state: object) -> None:
        child_var.set(f"set by {self.name} before failing")
        if self.phase == "apply":
            raise Boom(f"{self.name} cannot apply")

    def undo(self, state: object, token: Any, exc: BaseException | None) -> None:
        self.undone += 1
        if self.phase == "undo":
            raise Boom(f"{self.name} cannot undo")


# -- providers that fail ---------------------------------------------------------------------------------


def test_provider_failing_in_capture_names_itself_and_leaves_the_parent_untouched() -> None:
    request_id.set("parent")
    with registered(RaisesIn("test.capture", "capture")):
        before = dict(contextvars.copy_context())
        with pytest.raises(ctxsnap.ProviderError) as info:
            ctxsnap.capture()
        assert info.value.provider == "test.capture"
        assert info.value.phase == "capture"
        assert isinstance(info.value.__cause__, Boom)
        assert "exclude=['test.capture']" in str(info.value)
        assert dict(contextvars.copy_context()) == before
        # The way out the message names works.
        assert ctxsnap.capture(exclude=["test.capture"]).run(_reads) == ("parent", None)


def test_provider_failing_in_apply_undoes_what_ran_before_it(worker: WorkerProbe) -> None:
    earlier = ThreadStackProvider("test.earlier")
    failing = RaisesIn("test.apply", "apply")
    request_id.set("parent")
    with registered(earlier, failing):
        task = ctxsnap.wrap(_reads)
    with pytest.raises(ctxsnap.ProviderError) as info:
        worker.run(task)
    assert (info.value.provider, info.value.phase) == ("test.apply", "apply")
    assert worker.run(earlier.stack) == [], "the provider applied before the failing one was not undone"
    assert failing.undone == 0, "undo was called for a provider whose apply failed"
    worker.assert_clean()


def test_provider_raising_a_base_exception_in_apply_propagates_it_unwrapped(worker: WorkerProbe) -> None:
    """Only ``Exception`` becomes ProviderError; a BaseException (an interrupt, an exit) passes as it is."""

    class AbortsInApply(RaisesIn):
        def apply(self, state: object) -> None:
            raise Abort("stop now")

    earlier = ThreadStackProvider("test.earlier")
    with registered(earlier, AbortsInApply("test.aborts", "none")):
        task = ctxsnap.wrap(_reads)
    with pytest.raises(Abort, match="stop now"):
        worker.run(task)
    assert worker.run(earlier.stack) == [], "the provider applied before the aborting one was not undone"
    worker.assert_clean()


@pytest.mark.parametrize("task_raises", [False, True], ids=["task-returns", "task-raises"])
def test_provider_failing_in_undo_still_lets_every_other_undo_run(worker: WorkerProbe, task_raises: bool) -> None:
    outer = ThreadStackProvider("test.outer")
    failing = RaisesIn("test.undo", "undo")
    inner = ThreadStackProvider("test.inner")
    with registered(outer, failing, inner):
        task = ctxsnap.wrap(_task_that_sets_then_raises if task_raises else _reads)
    if task_raises:
        # The task's own exception wins and propagates unchanged; the failed undo is noted on it.
        with pytest.raises(Boom, match="from the task") as info:
            worker.run(task, Boom("from the task"))
        assert any("'test.undo' failed during undo" in note for note in info.value.__notes__)
    else:
        with pytest.raises(ctxsnap.ProviderError) as error:
            worker.run(task)
        assert (error.value.provider, error.value.phase) == ("test.undo", "undo")
    assert failing.undone == 1
    assert worker.run(outer.stack) == [] and worker.run(inner.stack) == []
    worker.assert_clean()


def test_provider_raising_a_base_exception_in_undo_still_lets_every_other_undo_run(worker: WorkerProbe) -> None:
    """An interrupt from one undo (a teardown calling sys.exit) must not leave the others' state pushed."""

    class AbortsInUndo(RaisesIn):
        def undo(self, state: object, token: Any, exc: BaseException | None) -> None:
            self.undone += 1
            raise Abort("stop in undo")

    outer = ThreadStackProvider("test.outer")
    aborting = AbortsInUndo("test.aborts-undo", "none")
    inner = ThreadStackProvider("test.inner")
    with registered(outer, aborting, inner):
        task = ctxsnap.wrap(_reads)
    with pytest.raises(Abort, match="stop in undo"):
        worker.run(task)
    assert aborting.undone == 1
    assert worker.run(outer.stack) == [] and worker.run(inner.stack) == []
    worker.assert_clean()


# -- tasks that fail ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [Boom("plain"), Abort("custom BaseException"), SystemExit(3), KeyboardInterrupt(), GeneratorExit()],
    ids=lambda e: type(e).__name__,
)
def test_task_raising_anything_propagates_unchanged_and_leaves_a_clean_worker(
    worker: WorkerProbe, exc: BaseException
) -> None:
    provider = ThreadStackProvider("test.stack")
    request_id.set("parent")
    with registered(provider):
        task = ctxsnap.wrap(_task_that_sets_then_raises)
    with pytest.raises(type(exc)) as info:
        worker.run(task, exc)
    assert info.value is exc
    assert worker.run(provider.stack) == []
    worker.assert_clean()
    # The next task on the same thread sees its own snapshot and nothing of the failed one.
    request_id.set("next")
    assert worker.run(ctxsnap.wrap(_reads)) == ("next", None)


def test_base_exception_in_a_started_thread_leaves_the_parent_alone() -> None:
    request_id.set("parent")
    seen: list[object] = []
    original_hook = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_type)
    try:
        thread = ctxsnap.Thread(target=_task_that_sets_then_raises, args=(Abort("in a thread"),))
        thread.start()
        thread.join(timeout=TIMEOUT)
    finally:
        threading.excepthook = original_hook
    assert not thread.is_alive()
    assert seen == [Abort]
    assert _reads() == ("parent", None)


def test_one_wrapper_failing_in_one_worker_does_not_disturb_the_same_wrapper_elsewhere() -> None:
    """Runs share the wrapper but never a Context: a failure in one is invisible to the others."""
    provider = ThreadStackProvider("test.stack")
    barrier = threading.Barrier(4, timeout=TIMEOUT)

    def task(fail: bool) -> tuple[str | None, int]:
        child_var.set(f"mine {threading.get_ident()}")
        barrier.wait()
        if fail:
            raise Boom("one of four")
        return request_id.get(None), len(provider.stack())

    request_id.set("shared")
    with registered(provider):
        wrapped = ctxsnap.wrap(task)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(wrapped, i == 0) for i in range(4)]
        outcomes = [f.exception(timeout=TIMEOUT) or f.result() for f in futures]
    assert isinstance(outcomes[0], Boom)
    assert outcomes[1:] == [("shared", 1)] * 3


# -- executors shut down, callers cancelled -------------------------------------------------------------


def test_shutdown_with_cancel_futures_runs_no_queued_task_and_releases_their_snapshots() -> None:
    class Marker:
        """Held by a ContextVar: alive for as long as some snapshot holds the context it was set in."""

    release = threading.Event()
    started = threading.Event()
    ran: list[int] = []

    def blocker() -> str | None:
        started.set()
        release.wait(timeout=TIMEOUT)
        return request_id.get(None)

    def queued(i: int) -> None:
        ran.append(i)

    pool = ctxsnap.ThreadPoolExecutor(max_workers=1)
    request_id.set("blocker")
    blocked = pool.submit(blocker)
    assert started.wait(timeout=TIMEOUT)

    def submit_queued() -> tuple[list[concurrent.futures.Future[None]], weakref.ref[Marker]]:
        marker = Marker()
        marker_var: contextvars.ContextVar[Marker] = contextvars.ContextVar("marker")
        marker_var.set(marker)
        return [pool.submit(queued, i) for i in range(20)], weakref.ref(marker)

    # Capture in a context of its own, so only the queued tasks' snapshots can keep the marker alive.
    pending, marker_ref = contextvars.copy_context().run(submit_queued)
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    pool.shutdown(wait=True)
    assert blocked.result(timeout=TIMEOUT) == "blocker"
    assert all(f.cancelled() for f in pending)
    assert ran == []
    del pending
    gc.collect()
    assert marker_ref() is None, "a cancelled task's snapshot is still alive after shutdown"
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(queued, 99)


def test_cancelled_async_caller_leaves_its_worker_clean(worker: WorkerProbe) -> None:
    """The caller's task is cancelled while its function runs in a thread: the thread finishes the run alone."""
    release = threading.Event()

    async def main() -> tuple[str | None, str | None]:
        loop = asyncio.get_running_loop()
        entered = asyncio.Event()

        def slow() -> None:
            child_var.set("set in the worker")
            loop.call_soon_threadsafe(entered.set)
            release.wait(timeout=TIMEOUT)

        async def caller() -> None:
            await ctxsnap_asyncio.run_in_executor(worker.pool, slow)

        request_id.set("async caller")
        task = asyncio.create_task(caller())
        await asyncio.wait_for(entered.wait(), timeout=TIMEOUT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        return _reads()

    assert asyncio.run(main()) == ("async caller", None)
    worker.assert_clean()


def test_cancelled_to_thread_caller_does_not_keep_a_dirty_default_executor() -> None:
    release = threading.Event()

    async def scenario() -> tuple[str | None, str | None]:
        loop = asyncio.get_running_loop()
        entered = asyncio.Event()

        def slow() -> None:
            child_var.set("set in the worker")
            loop.call_soon_threadsafe(entered.set)
            release.wait(timeout=TIMEOUT)

        probe = WorkerProbe()
        loop.set_default_executor(probe.pool)
        request_id.set("async caller")
        task = asyncio.create_task(ctxsnap_asyncio.to_thread(slow))
        await asyncio.wait_for(entered.wait(), timeout=TIMEOUT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        probe.assert_clean()
        return _reads()

    assert asyncio.run(scenario()) == ("async caller", None)


# -- Flask: the same faults inside a request ------------------------------------------------------------


@pytest.mark.parametrize("teardown", [False, True], ids=["default", "teardown-mode"])
@pytest.mark.parametrize(
    "exc", [Boom("plain"), Abort("custom BaseException"), SystemExit(3)], ids=lambda e: type(e).__name__
)
def test_flask_task_raising_leaves_no_flask_context_on_the_worker(
    worker: WorkerProbe, teardown: bool, exc: BaseException
) -> None:
    app, lifecycle = make_app(teardown=teardown)
    with app.test_request_context("/", headers={"X-Request-Id": "req-1"}):
        flask.g.request_id = "req-1"
        request_id.set("req-1")
        task = ctxsnap.wrap(_flask_task_that_writes_then_raises)
    with pytest.raises(type(exc)) as info:
        worker.run(task, exc)
    assert info.value is exc
    worker.assert_clean()
    worker_thread = worker.run(threading.get_ident)
    # Teardown mode: the child's own app context was popped once, and its handler saw the task's exception.
    expected = [("teardown_appcontext", type(exc))] if teardown else []
    assert lifecycle.in_thread(worker_thread) == expected
    # The next task on that thread, from another request, sees that request and nothing of the failed one.
    with app.test_request_context("/", headers={"X-Request-Id": "req-2"}):
        flask.g.request_id = "req-2"
        request_id.set("req-2")

        def next_task() -> tuple[Any, Any, tuple[str | None, str | None]]:
            return identity()["g"], identity()["header"], _reads()

        assert worker.run(ctxsnap.wrap(next_task)) == ("req-2", "req-2", ("req-2", None))
    worker.assert_clean()


def _flask_task_that_writes_then_raises(exc: BaseException) -> None:
    flask.g.request_id = "overwritten by the failing task"
    flask.g.extra = "added by the failing task"
    child_var.set("written by the failing task")
    raise exc


def test_flask_parent_g_is_untouched_by_a_failing_task(worker: WorkerProbe) -> None:
    app, _ = make_app()
    with app.test_request_context("/"):
        flask.g.request_id = "parent"
        with pytest.raises(Boom):
            worker.run(ctxsnap.wrap(_flask_task_that_writes_then_raises), Boom("x"))
        assert vars(flask.g) == {"request_id": "parent"}


def test_provider_failing_in_apply_after_flask_pops_the_pushed_app_context(worker: WorkerProbe) -> None:
    """Teardown mode pushes an app context in apply: a later provider failing must not leave it pushed."""
    app, lifecycle = make_app(teardown=True)
    with registered(RaisesIn("test.after-flask", "apply")):
        with app.test_request_context("/"):
            task = ctxsnap.wrap(_reads)
        with pytest.raises(ctxsnap.ProviderError) as info:
            worker.run(task)
    assert info.value.provider == "test.after-flask"
    worker.assert_clean()
    worker_thread = worker.run(threading.get_ident)
    assert [handler for handler, _ in lifecycle.in_thread(worker_thread)] == ["teardown_appcontext"]


def test_provider_failing_in_capture_leaves_the_request_as_it_was() -> None:
    app, lifecycle = make_app(teardown=True)
    with app.test_request_context("/"):
        flask.g.request_id = "parent"
        g_before = flask.g._get_current_object()
        with registered(RaisesIn("test.capture", "capture")), pytest.raises(ctxsnap.ProviderError):
            ctxsnap.capture()
        assert flask.g._get_current_object() is g_before
        assert vars(flask.g) == {"request_id": "parent"}
        assert flask.has_request_context()
    own_teardown = [("teardown_request", None), ("teardown_appcontext", None)]
    assert lifecycle.in_thread(threading.get_ident()) == own_teardown


def test_flask_shutdown_with_cancel_futures_runs_nothing_and_releases_the_request() -> None:
    app, lifecycle = make_app(teardown=True)
    release = threading.Event()
    started = threading.Event()
    ran: list[int] = []

    def blocker() -> str | None:
        started.set()
        release.wait(timeout=TIMEOUT)
        return cast(str | None, flask.g.get("request_id"))

    pool = ctxsnap.ThreadPoolExecutor(max_workers=1)
    with app.test_request_context("/"):
        flask.g.request_id = "blocked"
        request_ref = weakref.ref(flask.request._get_current_object())  # type: ignore[attr-defined]
        blocked = pool.submit(blocker)
        assert started.wait(timeout=TIMEOUT)
        pending = [pool.submit(ran.append, i) for i in range(20)]
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    pool.shutdown(wait=True)
    assert blocked.result(timeout=TIMEOUT) == "blocked"
    assert all(f.cancelled() for f in pending) and ran == []
    # Only the one task that ran tore down its own app context; cancelled tasks never pushed one.
    worker_events = [e for e in lifecycle.events if e[1] != threading.get_ident()]
    assert [handler for handler, _, _ in worker_events] == ["teardown_appcontext"]
    del pending, blocked
    gc.collect()
    assert request_ref() is None, "a cancelled task's snapshot still holds the request"


# -- anyio: a cancelled caller on asyncio and on trio --------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_caller_cancelled_with_abandon_on_cancel_leaves_nothing_behind(backend: str) -> None:
    import anyio
    import anyio.to_thread

    from ctxsnap.adapters import anyio as ctxsnap_anyio

    provider = ThreadStackProvider("test.anyio")
    entered = threading.Event()
    release = threading.Event()
    finished = threading.Event()
    returned: list[object] = []

    def slow() -> None:
        try:
            child_var.set("set in the worker")
            entered.set()
            release.wait(timeout=TIMEOUT)
        finally:
            finished.set()

    async def caller() -> None:
        returned.append(await ctxsnap_anyio.run_sync(slow, abandon_on_cancel=True))

    async def main() -> tuple[Any, ...]:
        request_id.set("anyio caller")
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(caller)
                assert await anyio.to_thread.run_sync(entered.wait, 30)
                scope.cancel()
        assert scope.cancelled_caught and returned == []
        # The caller is gone; the abandoned thread finishes its call on its own.
        release.set()
        assert await anyio.to_thread.run_sync(finished.wait, 30)
        probe = await anyio.to_thread.run_sync(lambda: (_reads(), provider.stack(), framework_state()))
        return _reads(), probe

    with registered(provider):
        caller_sees, (probe_sees, stack, frameworks) = anyio.run(main, backend=backend)
    assert caller_sees == ("anyio caller", None), "the abandoned worker's write reached the caller"
    # The probe runs in a copy of the caller's context (anyio's rule): the caller's id, nothing of the child.
    assert probe_sees == ("anyio caller", None)
    assert stack == [] and not any(frameworks.values())


# -- Quart: the same faults inside a request, through to_thread ----------------------------------------------


def _quart_task_that_writes_then_raises(exc: BaseException) -> None:
    import quart

    quart.g.request_id = "overwritten by the failing task"
    child_var.set("written by the failing task")
    raise exc


@pytest.mark.quart
@pytest.mark.parametrize("teardown", [False, True], ids=["default", "teardown-mode"])
@pytest.mark.parametrize(
    "exc", [Boom("plain"), Abort("custom BaseException"), SystemExit(3)], ids=lambda e: type(e).__name__
)
def test_quart_to_thread_task_raising_leaves_a_clean_worker(teardown: bool, exc: BaseException) -> None:
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    from ._quart_support import make_quart_app, quart_identity

    app, lifecycle = make_quart_app(teardown=teardown)
    probe = WorkerProbe()

    async def scenario() -> tuple[tuple[dict[str, Any], tuple[str | None, str | None]], int]:
        asyncio.get_running_loop().set_default_executor(probe.pool)
        async with app.test_request_context("/", headers={"X-Request-Id": "req-1"}):
            quart.g.request_id = "req-1"
            request_id.set("req-1")
            with pytest.raises(type(exc)) as info:
                await ctxsnap_quart.to_thread(_quart_task_that_writes_then_raises, exc)
            assert info.value is exc
            assert quart.g.request_id == "req-1"
        probe.assert_clean()
        async with app.test_request_context("/", headers={"X-Request-Id": "req-2"}):
            quart.g.request_id = "req-2"
            request_id.set("req-2")
            next_task = await ctxsnap_quart.to_thread(lambda: (quart_identity(), _reads()))
        return next_task, probe.run(threading.get_ident)

    try:
        (seen, reads), worker_thread = asyncio.run(scenario())
    finally:
        probe.close()
    assert (seen["g"], seen["header"], reads) == ("req-2", "req-2", ("req-2", None))
    assert seen["thread"] == worker_thread
    expected = [("teardown_appcontext", type(exc)), ("teardown_appcontext", None)] if teardown else []
    assert lifecycle.in_thread(worker_thread) == expected


@pytest.mark.quart
def test_quart_cancelled_to_thread_caller_leaves_a_clean_worker() -> None:
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    from ._quart_support import make_quart_app

    app, lifecycle = make_quart_app(teardown=True)
    probe = WorkerProbe()
    release = threading.Event()

    async def scenario() -> tuple[str | None, int]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(probe.pool)
        entered = asyncio.Event()

        def slow() -> None:
            quart.g.request_id = "written by the abandoned worker"
            child_var.set("set in the worker")
            loop.call_soon_threadsafe(entered.set)
            release.wait(timeout=TIMEOUT)

        async with app.test_request_context("/"):
            quart.g.request_id = "parent"
            task = asyncio.create_task(ctxsnap_quart.to_thread(slow))
            await asyncio.wait_for(entered.wait(), timeout=TIMEOUT)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()
            probe.assert_clean()
            assert _reads() == (None, None)
            return quart.g.request_id, probe.run(threading.get_ident)

    try:
        parent_g, worker_thread = asyncio.run(scenario())
    finally:
        probe.close()
    assert parent_g == "parent"
    # The abandoned run still tore its own app context down, once, in its own thread.
    assert lifecycle.in_thread(worker_thread) == [("teardown_appcontext", None)]
