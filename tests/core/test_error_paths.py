"""What a failing run leaves behind: the task's exception, every undo, memory, pickling.

These are the cases adversarial probes found (issue 11, section 2): an exception that refuses notes, a
ProviderError raised in a process-pool worker, the reference cycle a failing undo made, the captured values a
kept Future held on to, and a sync callable that returns a coroutine. What error reports see of frame locals is
in ``tests/reliability/test_error_reports.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import gc
import pickle
import warnings
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import pytest

import ctxsnap
from tests.support import TIMEOUT

from .conftest import Register


class Marker:
    """A captured value the tests watch: weak-referenceable, and with a repr that would give it away."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Marker({self.text!r})"


class StateProvider(ctxsnap.Provider):
    """Carries whatever ``holder[0]`` is at capture; its undo fails when asked to, and journals when it runs."""

    def __init__(self, name: str, holder: list[Any], journal: list[str], *, fail_undo: bool = False) -> None:
        self.name = name
        self.holder = holder
        self.journal = journal
        self.fail_undo = fail_undo

    def capture(self) -> Any:
        return self.holder[0] if self.holder else None

    def apply(self, state: Any) -> None:
        return None

    def undo(self, state: Any, token: Any, exc: BaseException | None) -> None:
        self.journal.append(f"undo {self.name}")
        if self.fail_undo:
            raise ValueError(f"{self.name} could not clean up")


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Only reference counting frees anything while the test runs: a cycle shows up as an object kept alive."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# -- 3. an exception that refuses notes --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FrozenError(Exception):
    code: int


class TupleNotesError(Exception):
    def __init__(self) -> None:
        super().__init__("notes kept as a tuple")
        self.__notes__ = ("set by the library",)  # type: ignore[assignment]


@pytest.mark.parametrize(
    "make", [lambda: FrozenError(7), TupleNotesError], ids=["frozen-dataclass", "tuple-notes"]
)
def test_an_exception_that_refuses_notes_still_reaches_the_caller_and_every_undo_runs(
    registered: Register, make: Any
) -> None:
    journal: list[str] = []
    holder = ["state"]
    # Undone in reverse order: the failing one first, then the others must still run.
    registered(
        StateProvider("test.notes.first", holder, journal),
        StateProvider("test.notes.second", holder, journal),
        StateProvider("test.notes.failing", holder, journal, fail_undo=True),
    )
    error = make()

    def task() -> None:
        raise error

    with pytest.raises(type(error)) as raised:
        ctxsnap.capture().run(task)

    assert raised.value is error
    assert journal == ["undo test.notes.failing", "undo test.notes.second", "undo test.notes.first"]


def test_an_exception_that_takes_notes_gets_the_undo_failure_as_a_note(registered: Register) -> None:
    registered(StateProvider("test.notes.failing", ["state"], [], fail_undo=True))

    def task() -> None:
        raise KeyError("task")

    with pytest.raises(KeyError) as raised:
        ctxsnap.capture().run(task)
    assert raised.value.__notes__ == [
        "context provider 'test.notes.failing' failed during undo: ValueError: test.notes.failing could not "
        "clean up. Fix the provider, or leave it out with ctxsnap.capture(exclude=['test.notes.failing'])."
    ]


# -- 4. every ctxsnap exception pickles and copies ---------------------------------------------------------

ERRORS = {
    "SnapshotError": lambda: ctxsnap.SnapshotError("something went wrong"),
    "SnapshotClosedError": lambda: ctxsnap.SnapshotClosedError("sealed"),
    "ProviderError": lambda: ctxsnap.ProviderError("test.pickle", "undo", ValueError("boom")),
    "ProviderError-hint": lambda: ctxsnap.ProviderError("test.pickle", "load", ImportError("x"), hint="Do this."),
    "UnportableValueError": lambda: ctxsnap.UnportableValueError("refused", carrier="app", variable="tenant"),
    "PayloadError": lambda: ctxsnap.PayloadError("tampered", carrier="app"),
}


@pytest.mark.parametrize("make", ERRORS.values(), ids=ERRORS.keys())
@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_every_ctxsnap_exception_pickles_and_copies(make: Any, duplicate: Any) -> None:
    error = make()
    error.add_note("a note")
    twin = duplicate(error)
    assert type(twin) is type(error)
    assert str(twin) == str(error)
    assert twin.args == error.args
    assert twin.__dict__ == error.__dict__  # provider, phase and the notes


def test_every_public_exception_is_covered_by_the_pickling_test() -> None:
    public = {
        name
        for name in ctxsnap.__all__
        if isinstance(getattr(ctxsnap, name), type) and issubclass(getattr(ctxsnap, name), BaseException)
    }
    assert public <= {name.partition("-")[0] for name in ERRORS}


class _FailingCapture(ctxsnap.Provider):
    name = "test.pool.failing"

    def capture(self) -> Any:
        raise RuntimeError("no backend in this process")

    def apply(self, state: Any) -> None:
        return None


def _capture_with_a_failing_provider() -> None:
    # Runs in the pool's worker process: the registration is that process's own.
    ctxsnap.register_provider(_FailingCapture(), replace=True)
    ctxsnap.capture()


def test_a_provider_error_raised_in_a_process_pool_worker_reaches_the_caller_and_the_pool_lives_on() -> None:
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(ctxsnap.ProviderError) as raised:
            pool.submit(_capture_with_a_failing_provider).result(timeout=TIMEOUT)
        assert (raised.value.provider, raised.value.phase) == ("test.pool.failing", "capture")
        assert "no backend in this process" in str(raised.value)
        # Not a BrokenProcessPool: the pool still takes work.
        assert pool.submit(len, "abc").result(timeout=TIMEOUT) == 3


# -- 10. nothing captured outlives a failed run through a cycle or a kept Future ---------------------------


@pytest.mark.parametrize("task_raises", [False, True], ids=["task-returns", "task-raises"])
def test_a_failing_undo_leaves_no_cycle_holding_the_state(
    registered: Register, no_gc: None, task_raises: bool
) -> None:
    holder: list[Any] = [Marker("state")]
    registered(StateProvider("test.cycle.failing", holder, [], fail_undo=True))
    snap = ctxsnap.capture()
    state = weakref.ref(holder.pop())

    def task() -> None:
        if task_raises:
            raise KeyError("task")

    with pytest.raises((ctxsnap.ProviderError, KeyError)):
        snap.run(task)
    assert state() is not None  # the snapshot holds it
    del snap
    assert state() is None, gc.get_referrers(state())


def test_a_kept_future_of_a_failed_task_does_not_keep_the_captured_values(
    registered: Register, no_gc: None
) -> None:
    holder: list[Any] = [Marker("provider state")]
    variable: ContextVar[Marker] = ContextVar("test_error_paths_value")
    registered(StateProvider("test.future.state", holder, []))
    token = variable.set(Marker("contextvar value"))
    state, value = weakref.ref(holder[0]), weakref.ref(variable.get())

    def task() -> None:
        raise KeyError("task")

    pool = ctxsnap.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(task)
    wrapped_future = pool.submit(ctxsnap.wrap(task))
    pool.shutdown(wait=True)  # the worker has dropped its work items too
    holder.clear()
    variable.reset(token)

    assert isinstance(future.exception(), KeyError)
    assert isinstance(wrapped_future.exception(), KeyError)
    del wrapped_future  # a callable from Snapshot.wrap keeps its snapshot: its traceback holds the wrapper
    assert state() is None, gc.get_referrers(state())
    assert value() is None, gc.get_referrers(value())


# -- 5. a sync callable that returns a coroutine; a class with an async __call__ ---------------------------


class AsyncCallable:
    def __init__(self, label: str = "built") -> None:
        self.label = label

    async def __call__(self) -> str:
        return self.label


async def coroutine_function() -> None:
    raise AssertionError("the body must never run")


async def async_generator_function() -> Any:
    yield 1


def test_a_class_whose_instances_have_an_async_call_is_accepted_it_only_builds_an_instance() -> None:
    instance = ctxsnap.capture().run(AsyncCallable, "in the snapshot")
    assert isinstance(instance, AsyncCallable) and instance.label == "in the snapshot"
    with ctxsnap.ThreadPoolExecutor(max_workers=1) as pool:
        assert isinstance(pool.submit(AsyncCallable).result(timeout=TIMEOUT), AsyncCallable)
    # Its instances are still async callables, refused as before.
    with pytest.raises(TypeError, match="got the async callable"):
        ctxsnap.capture().run(AsyncCallable())  # type: ignore[unused-coroutine]  # refused at run time; the signature allows it


@pytest.mark.parametrize("how", ["run", "wrap", "wrap-with-provider", "pool", "asyncio.to_thread"])
def test_a_sync_callable_returning_a_coroutine_is_refused_and_the_coroutine_closed(
    registered: Register, how: str
) -> None:
    def sneaky() -> Any:
        return coroutine_function()

    if how == "wrap-with-provider":
        registered(StateProvider("test.coroutine.state", ["state"], []))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "coroutine ... was never awaited" RuntimeWarning fails the test
        with pytest.raises(TypeError) as raised:
            if how == "run":
                ctxsnap.capture().run(sneaky)
            elif how in ("wrap", "wrap-with-provider"):
                ctxsnap.wrap(sneaky)()
            elif how == "pool":
                with ctxsnap.ThreadPoolExecutor(max_workers=1) as pool:
                    pool.submit(sneaky).result(timeout=TIMEOUT)
            else:
                from ctxsnap.adapters.asyncio import to_thread

                asyncio.run(to_thread(sneaky))
        gc.collect()  # a coroutine left open would warn when collected
    assert str(raised.value) == (
        "test_a_sync_callable_returning_a_coroutine_is_refused_and_the_coroutine_closed.<locals>.sneaky() "
        "returned a coroutine instead of a result. Await async code directly: its body would run later, "
        "outside the snapshot, and ctxsnap runs sync functions in threads."
    )


def test_a_sync_callable_returning_an_async_generator_is_refused() -> None:
    with pytest.raises(TypeError, match=r"returned an async generator instead of a result"):
        ctxsnap.capture().run(lambda: async_generator_function())
