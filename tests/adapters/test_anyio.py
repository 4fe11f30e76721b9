"""``ctxsnap.adapters.anyio.run_sync`` on both of anyio's backends: pass-through options, cancellation, errors.

The semantics table runs against it in ``tests/conformance``; these tests cover what is particular to anyio:
``limiter`` and ``abandon_on_cancel`` keep their meaning, a cancelled caller leaves no state behind, and the
worker does not believe an event loop runs in it.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, TypeVar

import anyio
import anyio.to_thread
import pytest
import sniffio

import ctxsnap
from ctxsnap.adapters.anyio import run_sync
from tests.support import TIMEOUT

T = TypeVar("T")
BACKENDS = ["asyncio", "trio"]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("anyio_request_id")


def run(main: Callable[[], Awaitable[T]], backend: str) -> T:
    """``anyio.run`` in a fresh copy of the context, so one test's ContextVars never reach the next."""
    return contextvars.copy_context().run(lambda: anyio.run(main, backend=backend))


async def until(condition: Callable[[], bool], what: str) -> None:
    try:
        with anyio.fail_after(TIMEOUT):
            while not condition():
                await anyio.sleep(0.002)
    except TimeoutError:
        raise AssertionError(f"timed out after {TIMEOUT} s waiting for {what}") from None


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_worker_sees_the_callers_contextvars_and_its_own_set_stays_there(backend: str) -> None:
    def child(suffix: str) -> str:
        seen = REQUEST_ID.get() + suffix
        REQUEST_ID.set("changed in the worker")
        return seen

    async def main() -> tuple[str, str]:
        REQUEST_ID.set("caller")
        return await run_sync(child, "!"), REQUEST_ID.get()

    assert run(main, backend) == ("caller!", "caller")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_limiter_is_the_one_that_caps_the_threads(backend: str) -> None:
    async def main() -> None:
        limiter = anyio.CapacityLimiter(1)
        first_in, release = threading.Event(), threading.Event()

        def first() -> str:
            first_in.set()
            release.wait(TIMEOUT)
            return "first"

        async def call(fn: Callable[[], str]) -> None:
            await run_sync(fn, limiter=limiter)

        async with anyio.create_task_group() as group:
            group.start_soon(call, first)
            await until(first_in.is_set, "the first call to start")
            group.start_soon(call, lambda: "second")
            # The second call waits on exactly this limiter: the option reached anyio.
            await until(lambda: limiter.statistics().tasks_waiting == 1, "the second call to queue")
            assert limiter.borrowed_tokens == 1
            release.set()
        assert limiter.borrowed_tokens == 0

    run(main, backend)


class CancelOptions(TypedDict, total=False):
    """The keywords of ``run_sync`` that say what a cancelled caller does."""

    abandon_on_cancel: bool
    cancellable: bool


def _cancel_while_running(
    backend: str, abandon: bool, marked: dict[int, str], options: CancelOptions | None = None
) -> dict[str, Any]:
    """Cancel a caller while its thread runs; report what the caller, the worker thread and the loop saw.

    ``options`` are the keywords given to ``run_sync`` (``abandon_on_cancel=abandon`` unless set).
    """
    report: dict[str, Any] = {"loop_errors": []}
    keywords: CancelOptions = {"abandon_on_cancel": abandon} if options is None else options

    async def main() -> None:
        if backend == "asyncio":
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda _loop, context: report["loop_errors"].append(context))
        limiter = anyio.CapacityLimiter(1)
        entered, release, finished = threading.Event(), threading.Event(), threading.Event()

        def child() -> str:
            report["marked_in_the_worker"] = threading.get_ident() in marked
            entered.set()
            REQUEST_ID.set("changed by the cancelled task")
            release.wait(TIMEOUT)
            finished.set()
            if abandon:
                raise RuntimeError("an error nobody will retrieve")
            return "result nobody will read"

        REQUEST_ID.set("caller")
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:

                async def cancel_once_running() -> None:
                    await until(entered.is_set, "the worker to start")
                    scope.cancel()
                    if not abandon:
                        # The caller is shielded until its thread is done: let the thread finish now.
                        release.set()

                group.start_soon(cancel_once_running)
                report["result"] = await run_sync(child, limiter=limiter, **keywords)
                await anyio.sleep(0)
                report["past_the_next_checkpoint"] = True
        report["cancelled"] = scope.cancelled_caught
        report["finished_when_caller_returned"] = finished.is_set()
        report["marks_when_caller_returned"] = dict(marked)
        report["caller_context"] = REQUEST_ID.get()
        release.set()
        await until(finished.is_set, "the thread to finish")
        if abandon:
            # An abandoned thread undoes after its function returns, with nobody waiting for it: wait for the
            # undo rather than for a thread anyio does not expose.
            await until(lambda: not marked, "the abandoned worker thread to drop the snapshot's thread state")
        # The next call on the one-token limiter: it sees its own caller's context and nothing of the task's.
        report["next_call_saw"] = await anyio.to_thread.run_sync(REQUEST_ID.get, limiter=limiter)
        await until(lambda: limiter.borrowed_tokens == 0, "the limiter to be released")
        if backend == "asyncio":
            report["tasks_left"] = asyncio.all_tasks() - {asyncio.current_task()}

    run(main, backend)
    return report


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancelled_caller_waits_for_its_thread_by_default_and_keeps_its_context(
    backend: str, thread_mark: dict[int, str]
) -> None:
    report = _cancel_while_running(backend, abandon=False, marked=thread_mark)
    assert report["marked_in_the_worker"], "the test is void: the work did not run inside the snapshot"
    # anyio's rule: the caller ignores the cancellation until its thread is done, gets the result, and the
    # cancellation takes effect at its next checkpoint.
    assert report["result"] == "result nobody will read"
    assert report["cancelled"] and "past_the_next_checkpoint" not in report
    assert report["finished_when_caller_returned"]
    # The caller got its result only after the undo ran in the worker thread.
    assert report["marks_when_caller_returned"] == {}
    assert report["caller_context"] == "caller"
    assert report["next_call_saw"] == "caller"
    assert report.get("tasks_left", set()) == set()
    assert report["loop_errors"] == [], "the loop reported a stray error"


@pytest.mark.parametrize("backend", BACKENDS)
def test_abandon_on_cancel_returns_at_once_and_the_thread_still_leaves_nothing_behind(
    backend: str, thread_mark: dict[int, str]
) -> None:
    report = _cancel_while_running(backend, abandon=True, marked=thread_mark)
    assert report["marked_in_the_worker"], "the test is void: the work did not run inside the snapshot"
    assert "result" not in report and report["cancelled"]
    assert not report["finished_when_caller_returned"]  # the option reached anyio
    assert report["caller_context"] == "caller"
    assert report["next_call_saw"] == "caller"
    # The thread's exception is dropped: no "exception was never retrieved" report, no task left pending.
    assert report.get("tasks_left", set()) == set()
    assert report["loop_errors"] == [], "the loop reported a stray error"


def _deprecation_warnings(call: Callable[[], Awaitable[Any]]) -> list[tuple[str, str]]:
    """The DeprecationWarnings ``await call()`` gives on asyncio, with the file each one points at."""
    import warnings

    async def main() -> None:
        await call()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(main, "asyncio")
    return [(str(w.message), w.filename) for w in caught if issubclass(w.category, DeprecationWarning)]


def test_cancellable_gives_anyios_own_deprecation_warning_pointing_at_the_caller() -> None:
    # anyio 4.1 renamed cancellable= to abandon_on_cancel= and still accepts the old name, with a warning that
    # anyio's own tests check; code moving from anyio's run_sync to ctxsnap's must see no difference.
    ours = _deprecation_warnings(lambda: run_sync(len, "abc", cancellable=False))
    anyios = _deprecation_warnings(lambda: anyio.to_thread.run_sync(len, "abc", cancellable=False))
    assert len(anyios) == 1 and "abandon_on_cancel=" in anyios[0][0]
    assert ours == anyios
    assert ours[0][1] == __file__


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancellable_true_means_abandon_on_cancel(backend: str, thread_mark: dict[int, str]) -> None:
    with pytest.warns(DeprecationWarning, match="use `abandon_on_cancel=` instead"):
        report = _cancel_while_running(backend, abandon=True, marked=thread_mark, options={"cancellable": True})
    assert "result" not in report and report["cancelled"]
    assert not report["finished_when_caller_returned"]
    assert report["next_call_saw"] == "caller"


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancellable_overrides_abandon_on_cancel_as_in_anyio(backend: str, thread_mark: dict[int, str]) -> None:
    with pytest.warns(DeprecationWarning):
        report = _cancel_while_running(
            backend, abandon=False, marked=thread_mark, options={"cancellable": False, "abandon_on_cancel": True}
        )
    assert report["result"] == "result nobody will read"  # the caller waited for its thread
    assert report["finished_when_caller_returned"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_worker_does_not_believe_an_event_loop_runs_in_it(backend: str) -> None:
    # anyio sets sniffio's ContextVar to "asyncio" in code it runs on the loop for a thread (from_thread), and
    # clears it in its worker threads; a snapshot taken in such code must not carry "asyncio" into the worker.
    def child() -> str:
        try:
            return sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return "none"

    async def main() -> tuple[str, str]:
        token = sniffio.current_async_library_cvar.set(backend)
        try:
            return await run_sync(child), sniffio.current_async_library()
        finally:
            sniffio.current_async_library_cvar.reset(token)

    assert run(main, backend) == ("none", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exceptions_propagate_unchanged(backend: str) -> None:
    class Boom(Exception):
        pass

    raised = Boom("no")

    def child() -> None:
        raise raised

    async def main() -> None:
        with pytest.raises(Boom) as caught:
            await run_sync(child)
        assert caught.value is raised

    run(main, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_callable_wrapped_earlier_keeps_its_own_snapshot(backend: str) -> None:
    async def main() -> str:
        REQUEST_ID.set("wrapped here")
        with ctxsnap.capture() as snapshot:
            wrapped = snapshot.wrap(REQUEST_ID.get)
        REQUEST_ID.set("called here")
        return await run_sync(wrapped)

    assert run(main, backend) == "wrapped here"


def test_an_async_function_is_refused() -> None:
    async def handler() -> None:
        pass

    async def main() -> None:
        with pytest.raises(TypeError, match="async callable"):
            await run_sync(handler)  # type: ignore[unused-coroutine]  # refused at run time; the signature allows it

    run(main, "asyncio")


def test_outside_an_event_loop_it_says_where_to_call_it_from() -> None:
    coroutine = run_sync(print)
    with pytest.raises(RuntimeError, match=r"needs a running event loop \(asyncio or trio\).*ThreadPoolExecutor"):
        coroutine.send(None)
    coroutine.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_caller_cancelled_while_waiting_for_the_limiter_never_runs_its_function(backend: str) -> None:
    ran: list[bool] = []

    async def main() -> None:
        limiter = anyio.CapacityLimiter(1)
        busy_in, release = threading.Event(), threading.Event()

        def busy() -> None:
            busy_in.set()
            release.wait(TIMEOUT)

        async with anyio.create_task_group() as group:

            async def occupy() -> None:
                await run_sync(busy, limiter=limiter)

            group.start_soon(occupy)
            await until(busy_in.is_set, "the limiter's only token to be taken")
            with anyio.CancelScope() as scope:

                async def cancel_once_queued() -> None:
                    await until(lambda: limiter.statistics().tasks_waiting == 1, "the call to queue")
                    scope.cancel()

                group.start_soon(cancel_once_queued)
                await run_sync(lambda: ran.append(True), limiter=limiter)
            assert scope.cancelled_caught
            release.set()

    run(main, backend)
    assert ran == []
