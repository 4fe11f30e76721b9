"""DESIGN.md's semantics table, the rows about contextvars, through every stdlib way of handing work to a thread.

Each "via" is one way a user hands work over: ``Snapshot.run`` or ``Snapshot.wrap`` or ``ctxsnap.wrap`` on a
plain pool, ``ctxsnap.Thread``, ``ContextExecutor.submit``/``map`` over a real ``ThreadPoolExecutor``, and the
``ctxsnap.ThreadPoolExecutor`` drop-in. Every via captures in the calling thread at launch. Adapter-specific
behaviour (start twice, shutdown, cancel_futures, ...) is in ``tests/adapters/``.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ctxsnap
from tests.support import TIMEOUT

from .conftest import Register

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("core_semantics_request_id")
scratch: contextvars.ContextVar[str | None] = contextvars.ContextVar("core_semantics_scratch")


@pytest.fixture(autouse=True)
def _each_test_starts_from_none() -> Iterator[None]:
    # Tests share the main thread's context: give each one None to start from, and put back what was there.
    tokens = [(var, var.set(None)) for var in (request_id, scratch)]
    yield
    for var, token in reversed(tokens):
        var.reset(token)


Result = Callable[[], Any]


class Via:
    """A way of running work in another thread. ``launch`` captures now and returns a getter for the result."""

    name = ""
    #: Whether the work lands on a long-lived worker thread that a plain task can look at afterwards.
    has_worker = True

    def __init__(self, workers: int) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=f"via-{self.name}")

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        raise NotImplementedError

    def on_worker(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the worker as a plain, unwrapped task (ctxsnap's drop-in would wrap it)."""
        return concurrent.futures.ThreadPoolExecutor.submit(self.pool, fn).result(timeout=TIMEOUT)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _getter(future: concurrent.futures.Future[Any]) -> Result:
    return lambda: future.result(timeout=TIMEOUT)


class SnapshotRun(Via):
    name = "Snapshot.run"

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        return _getter(self.pool.submit(ctxsnap.capture().run, fn, *args))


class SnapshotWrap(Via):
    name = "Snapshot.wrap"

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        return _getter(self.pool.submit(ctxsnap.capture().wrap(fn), *args))


class ModuleWrap(Via):
    name = "ctxsnap.wrap"

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        return _getter(self.pool.submit(ctxsnap.wrap(fn), *args))


class ContextExecutorSubmit(Via):
    name = "ContextExecutor.submit"

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        return _getter(ctxsnap.ContextExecutor(self.pool).submit(fn, *args))


class ContextExecutorMap(Via):
    name = "ContextExecutor.map"

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        results = ctxsnap.ContextExecutor(self.pool).map(fn, *[[arg] for arg in args] or [[None]], timeout=TIMEOUT)
        return lambda: next(results)


class DropInSubmit(Via):
    name = "ThreadPoolExecutor.submit"

    def __init__(self, workers: int) -> None:
        self.pool = ctxsnap.ThreadPoolExecutor(workers, thread_name_prefix="via-drop-in")

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        return _getter(self.pool.submit(fn, *args))


class DropInMap(DropInSubmit):
    name = "ThreadPoolExecutor.map"

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        results = self.pool.map(fn, *[[arg] for arg in args] or [[None]], timeout=TIMEOUT)
        return lambda: next(results)


class ContextThread(Via):
    name = "ctxsnap.Thread"
    has_worker = False

    def __init__(self, workers: int) -> None:
        pass

    def launch(self, fn: Callable[..., Any], *args: Any) -> Result:
        outcome: list[tuple[bool, Any]] = []

        def target() -> None:
            try:
                outcome.append((True, fn(*args)))
            except BaseException as exc:  # handed to the getter, which re-raises it in the test thread
                outcome.append((False, exc))

        thread = ctxsnap.Thread(target=target)
        # A provider failing in the child raises around the target, so it reaches threading.excepthook.
        original_hook = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            if args.thread is thread:
                outcome.append((False, args.exc_value))
            else:
                original_hook(args)

        threading.excepthook = hook
        try:
            thread.start()
        except BaseException:
            threading.excepthook = original_hook
            raise

        def result() -> Any:
            thread.join(timeout=TIMEOUT)
            threading.excepthook = original_hook
            # An undo failure arrives after the target's own result: any failure wins.
            for ok, value in reversed(outcome):
                if not ok:
                    raise value
            return outcome[0][1]

        return result

    def close(self) -> None:
        pass


VIAS = [
    SnapshotRun,
    SnapshotWrap,
    ModuleWrap,
    ContextExecutorSubmit,
    ContextExecutorMap,
    DropInSubmit,
    DropInMap,
    ContextThread,
]
WITH_WORKER = [via for via in VIAS if via.has_worker]


@pytest.fixture(params=VIAS, ids=lambda via: via.name)
def via(request: pytest.FixtureRequest) -> Iterator[Via]:
    instance: Via = request.param(4)
    yield instance
    instance.close()


@pytest.fixture(params=WITH_WORKER, ids=lambda via: via.name)
def one_worker(request: pytest.FixtureRequest) -> Iterator[Via]:
    """The same vias on a single worker thread, so the next plain task lands where the last run did."""
    instance: Via = request.param(1)
    yield instance
    instance.close()


def read(_: object = None) -> tuple[str | None, str | None]:
    return request_id.get(None), scratch.get(None)


def read_then_write(_: object = None) -> tuple[str | None, str | None]:
    seen = read()
    request_id.set("written by the child")
    scratch.set("written by the child")
    return seen


# -- contextvars: the child sees every ContextVar as at capture; its set never reaches parent or sibling -------


def test_child_sees_values_at_capture_and_its_writes_reach_neither_parent_nor_sibling(via: Via) -> None:
    request_id.set("parent")
    first = via.launch(read_then_write)
    request_id.set("parent, later")  # after capture: not seen by the first child
    assert first() == ("parent", None)
    assert read() == ("parent, later", None)
    assert via.launch(read)() == ("parent, later", None)  # the sibling sees nothing of the first child


def test_concurrent_children_each_keep_their_own_writes(via: Via) -> None:
    barrier = threading.Barrier(4, timeout=TIMEOUT)
    request_id.set("parent")

    def child(index: int) -> tuple[str | None, str | None]:
        seen = request_id.get(None)
        scratch.set(f"child {index}")
        barrier.wait()  # all four children hold their own value at the same moment
        return seen, scratch.get(None)

    results = [via.launch(child, i) for i in range(4)]
    assert [r() for r in results] == [("parent", f"child {i}") for i in range(4)]


# -- no context at all: capture still works and carries contextvars; no error ---------------------------------


def test_launching_from_a_thread_with_no_context_works(via: Via) -> None:
    def from_bare_thread() -> tuple[str | None, str | None]:
        assert len(contextvars.copy_context()) == 0
        seen: tuple[str | None, str | None] = via.launch(read)()
        return seen

    with concurrent.futures.ThreadPoolExecutor(1) as bare:
        request_id.set("not visible from the bare thread")
        assert bare.submit(from_bare_thread).result(timeout=TIMEOUT) == (None, None)


# -- late child: a child that starts after the parent ended still sees its snapshot ---------------------------


def test_a_child_that_starts_after_its_parent_ended_sees_the_snapshot(via: Via) -> None:
    gate = threading.Event()

    def child(_: object = None) -> tuple[str | None, str | None]:
        assert gate.wait(timeout=TIMEOUT)
        return read()

    def parent() -> Result:
        request_id.set("the parent's, at launch")
        result = via.launch(child)
        request_id.set("the parent's, after launch")
        return result

    with concurrent.futures.ThreadPoolExecutor(1) as parents:
        result = parents.submit(parent).result(timeout=TIMEOUT)
    # The parent's thread is gone (its pool is shut down); only now may the child go on.
    gate.set()
    assert result() == ("the parent's, at launch", None)


# -- sealing: callables wrapped inside the block still run; the sealed snapshot refuses new work -------------


def test_a_callable_wrapped_inside_a_sealed_block_runs_with_that_snapshot(via: Via) -> None:
    request_id.set("inside the block")
    with ctxsnap.capture() as snap:
        task = snap.wrap(read)
    request_id.set("after the block")
    assert via.launch(task)() == ("inside the block", None)
    with pytest.raises(ctxsnap.SnapshotClosedError):
        via.launch(snap.wrap(read))


# -- errors: exceptions from fn propagate unchanged; provider failures raise ProviderError -------------------


class TaskFailed(Exception):
    pass


def test_the_task_exception_propagates_unchanged(via: Via) -> None:
    error = TaskFailed("from the child")

    def fails(_: object = None) -> None:
        raise error

    result = via.launch(fails)
    with pytest.raises(TaskFailed) as info:
        result()
    assert info.value is error


class ThreadStack(ctxsnap.Provider):
    """State outside ContextVars (a per-thread stack, like Werkzeug < 2.0's) that undo must pop again."""

    def __init__(self, name: str, fail_in: str | None = None) -> None:
        self.name = name
        self.fail_in = fail_in
        self.local = threading.local()

    def stack(self) -> list[str]:
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        stack: list[str] = self.local.stack
        return stack

    def capture(self) -> str:
        if self.fail_in == "capture":
            raise RuntimeError("cannot capture")
        return "pushed"

    def apply(self, state: str) -> None:
        scratch.set("set by a provider")
        if self.fail_in == "apply":
            # The provider contract: an apply that raises leaves nothing behind (undo is only called for
            # providers whose apply returned), so it fails before pushing.
            raise RuntimeError("cannot apply")
        self.stack().append(state)

    def undo(self, state: str, token: Any, exc: BaseException | None) -> None:
        self.stack().pop()
        if self.fail_in == "undo":
            raise RuntimeError("cannot undo")


def test_a_provider_failing_in_capture_fails_the_launch_in_the_caller(via: Via, registered: Register) -> None:
    registered(ThreadStack("test.sem.capture", fail_in="capture"))
    with pytest.raises(ctxsnap.ProviderError, match="'test.sem.capture' failed during capture"):
        via.launch(read)


@pytest.mark.parametrize("phase", ["apply", "undo"])
def test_a_provider_failing_in_the_child_raises_provider_error_there(
    via: Via, registered: Register, phase: str
) -> None:
    registered(ThreadStack("test.sem.ok"), ThreadStack("test.sem.failing", fail_in=phase))
    result = via.launch(read)
    with pytest.raises(ctxsnap.ProviderError) as info:
        result()
    assert (info.value.provider, info.value.phase) == ("test.sem.failing", phase)


# -- worker hygiene: after a run the worker's own context is exactly as before --------------------------------


def worker_state(providers: tuple[ThreadStack, ...]) -> tuple[dict[Any, Any], list[list[str]]]:
    return dict(contextvars.copy_context()), [p.stack() for p in providers]


def raises(_: object = None) -> None:
    scratch.set("set by a failing task")
    raise TaskFailed("task")


@pytest.mark.parametrize(
    "task, fail_in",
    [
        (read_then_write, None),
        (raises, None),
        (read_then_write, "apply"),
        (read_then_write, "undo"),
        (read_then_write, "capture"),
    ],
    ids=["normal-task", "raising-task", "raising-apply", "raising-undo", "raising-capture"],
)
def test_the_next_plain_task_on_the_worker_sees_nothing_of_the_snapshot(
    one_worker: Via, registered: Register, task: Callable[..., Any], fail_in: str | None
) -> None:
    providers = (ThreadStack("test.sem.hygiene.outer"), ThreadStack("test.sem.hygiene.x", fail_in=fail_in))
    clean = one_worker.on_worker(lambda: worker_state(providers))
    registered(*providers)
    request_id.set("parent")
    try:
        one_worker.launch(task)()
    except (TaskFailed, ctxsnap.ProviderError):
        pass  # whichever way it failed, the worker must be clean
    assert one_worker.on_worker(lambda: worker_state(providers)) == clean
    assert clean == ({}, [[], []])
