"""``ctxsnap.Thread``: captures when ``start()`` is called, covers subclasses that override ``run()``, starts once.

The semantics-table rows shared with every other adapter run through ``ctxsnap.Thread`` in
``tests/core/test_semantics.py``; this file covers what only a Thread has.
"""

from __future__ import annotations

import contextvars
import functools
import gc
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import ctxsnap
from tests.support import TIMEOUT

request_id: contextvars.ContextVar[Any] = contextvars.ContextVar("adapters_threading_request_id")
scratch: contextvars.ContextVar[str | None] = contextvars.ContextVar("adapters_threading_scratch")


@pytest.fixture(autouse=True)
def _each_test_starts_from_none() -> Iterator[None]:
    # Tests share the main thread's context: give each one None to start from, and put back what was there.
    tokens = [(var, var.set(None)) for var in (request_id, scratch)]
    yield
    for var, token in reversed(tokens):
        var.reset(token)


class Counter(ctxsnap.Provider):
    """Counts captures, to see when (and how often) a Thread captures."""

    name = "test.threading.counter"

    def __init__(self) -> None:
        self.captures = 0

    def capture(self) -> int:
        self.captures += 1
        return self.captures

    def apply(self, state: int) -> None:
        pass


@pytest.fixture
def counter() -> Iterator[Counter]:
    provider = Counter()
    ctxsnap.register_provider(provider)
    yield provider
    ctxsnap.unregister_provider(provider.name)


def run_thread(thread: threading.Thread) -> None:
    thread.start()
    thread.join(timeout=TIMEOUT)
    assert not thread.is_alive()


def test_captures_at_start_not_at_construction(counter: Counter) -> None:
    seen: list[Any] = []
    request_id.set("at construction")
    thread = ctxsnap.Thread(target=lambda: seen.append(request_id.get(None)))
    assert counter.captures == 0
    request_id.set("at start")
    run_thread(thread)
    assert seen == ["at start"]
    assert counter.captures == 1


def test_the_child_writes_stay_in_the_child() -> None:
    request_id.set("parent")
    thread = ctxsnap.Thread(target=lambda: (request_id.set("child"), scratch.set("child")))
    run_thread(thread)
    assert (request_id.get(None), scratch.get(None)) == ("parent", None)


def test_a_subclass_overriding_run_runs_inside_the_snapshot() -> None:
    class Worker(ctxsnap.Thread):
        def __init__(self) -> None:
            super().__init__(name="custom-worker")
            self.seen: Any = None

        def run(self) -> None:
            self.seen = (request_id.get(None), threading.current_thread().name)

    request_id.set("for the subclass")
    worker = Worker()
    run_thread(worker)
    assert worker.seen == ("for the subclass", "custom-worker")


def test_constructor_arguments_pass_through() -> None:
    seen: list[Any] = []
    thread = ctxsnap.Thread(
        target=lambda a, b, *, c: seen.append((a, b, c, threading.current_thread().name)),
        args=(1, 2),
        kwargs={"c": 3},
        name="named",
        daemon=True,
    )
    assert thread.daemon and thread.name == "named"
    run_thread(thread)
    assert seen == [(1, 2, 3, "named")]


def test_starting_twice_raises_threadings_own_error_without_capturing_again(counter: Counter) -> None:
    seen: list[Any] = []
    request_id.set("first start")
    thread = ctxsnap.Thread(target=lambda: seen.append(request_id.get(None)))
    run_thread(thread)
    request_id.set("second start")
    with pytest.raises(RuntimeError, match="threads can only be started once"):
        thread.start()
    assert seen == ["first start"]
    assert counter.captures == 1


def test_a_finished_thread_keeps_nothing_of_its_snapshot_alive() -> None:
    class Payload:
        pass

    payload = Payload()
    reference = weakref.ref(payload)
    request_id.set(payload)
    thread = ctxsnap.Thread(target=lambda: None)
    run_thread(thread)
    request_id.set(None)
    del payload
    gc.collect()
    # A Thread object kept around (in a list of workers, say) must not pin the request it ran for.
    assert reference() is None
    assert "run" not in vars(thread)


def test_a_thread_that_fails_to_start_is_left_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_more_threads(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("can't start new thread")

    # The name of the low-level starter differs across Python versions; whichever this one has.
    starter = "_start_new_thread" if hasattr(threading, "_start_new_thread") else "_start_joinable_thread"
    monkeypatch.setattr(threading, starter, no_more_threads)
    thread = ctxsnap.Thread(target=print)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        thread.start()
    assert "run" not in vars(thread)


def test_the_target_exception_reaches_the_excepthook_unchanged() -> None:
    error = LookupError("from the thread")
    received: list[BaseException | None] = []
    original = threading.excepthook

    def fails() -> None:
        raise error

    thread = ctxsnap.Thread(target=fails)
    threading.excepthook = lambda args: (
        received.append(args.exc_value) if args.thread is thread else original(args)
    )
    try:
        run_thread(thread)
    finally:
        threading.excepthook = original
    assert received == [error]
    assert received[0] is error


def test_include_and_exclude_apply_to_the_capture() -> None:
    seen: list[Any] = []
    request_id.set("kept")
    scratch.set("left out")

    def target() -> None:
        seen.append((request_id.get(None), scratch.get(None)))

    run_thread(ctxsnap.Thread(target=target, exclude=scratch))
    run_thread(ctxsnap.Thread(target=target, include=scratch))
    assert seen == [("kept", None), (None, "left out")]


async def async_target() -> None:
    pass


class AsyncCall:
    async def __call__(self) -> None:
        pass


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"target": 42}, TypeError, r"Thread\(\) expects a callable, got int 42\. .* Thread\(target=fn\), not"),
        ({"target": async_target}, TypeError, r"Thread\(\) got the async callable 'async_target'"),
        ({"target": functools.partial(async_target)}, TypeError, r"Thread\(\) got the async callable"),
        ({"target": AsyncCall()}, TypeError, r"Thread\(\) got the async callable 'AsyncCall'"),
        ({"target": print, "args": 5}, TypeError, r"Thread\(args=...\) takes an iterable .*, got int 5"),
        ({"target": print, "kwargs": [("a", 1)]}, TypeError, r"Thread\(kwargs=...\) takes a mapping .*got list"),
        ({"target": print, "exclude": ["nope"]}, ValueError, "unknown provider 'nope'"),
        ({"target": print, "include": [3]}, TypeError, "as an entry. Pass provider names"),
    ],
    ids=[
        "non-callable-target",
        "async-target",
        "async-partial",
        "async-call",
        "args-not-iterable",
        "kwargs-not-a-mapping",
        "unknown-provider",
        "bad-selection-type",
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    # threading.Thread accepts every one of these and fails (or, for an async target, silently does nothing)
    # only inside the new thread.
    with pytest.raises(error, match=message):
        ctxsnap.Thread(**kwargs)


def test_args_given_as_any_iterable_reach_the_target_whole() -> None:
    seen: list[Any] = []
    run_thread(ctxsnap.Thread(target=lambda *a, **k: seen.append((a, k)), args=(x for x in (1, 2, 3))))
    run_thread(ctxsnap.Thread(target=lambda *a, **k: seen.append((a, k)), args=[4], kwargs=types_mapping()))
    assert seen == [((1, 2, 3), {}), ((4,), {"key": "value"})]


def types_mapping() -> Any:
    # A read-only mapping, not a dict: anything with keys() is a mapping to ** unpacking.
    return types.MappingProxyType({"key": "value"})


def test_many_threads_started_by_many_parents_each_see_their_own_parent() -> None:
    results: dict[int, Any] = {}

    def parent(index: int) -> None:
        request_id.set(f"parent {index}")
        child = ctxsnap.Thread(target=lambda: results.__setitem__(index, request_id.get(None)))
        child.start()
        child.join(timeout=TIMEOUT)

    parents = [threading.Thread(target=parent, args=(i,)) for i in range(16)]
    for thread in parents:
        thread.start()
    for thread in parents:
        thread.join(timeout=TIMEOUT)
    assert results == {i: f"parent {i}" for i in range(16)}
