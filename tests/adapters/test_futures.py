"""``ctxsnap.ContextExecutor`` over a real ``ThreadPoolExecutor``, and the ``ctxsnap.ThreadPoolExecutor`` drop-in.

The semantics-table rows (contextvars, no context, late child, sealing, errors, worker hygiene) run through
``submit`` and ``map`` of both in ``tests/core/test_semantics.py``; this file covers the executor surface:
capture per call, ``map`` at scale, already-wrapped callables, ``shutdown``/``with``/``cancel_futures``, and
the errors of each method.
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

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("adapters_futures_request_id")
scratch: contextvars.ContextVar[str | None] = contextvars.ContextVar("adapters_futures_scratch")


@pytest.fixture(autouse=True)
def _each_test_starts_from_none() -> Iterator[None]:
    # Tests share the main thread's context: give each one None to start from, and put back what was there.
    tokens = [(var, var.set(None)) for var in (request_id, scratch)]
    yield
    for var, token in reversed(tokens):
        var.reset(token)


def read(_: object = None) -> tuple[str | None, str | None]:
    return request_id.get(None), scratch.get(None)


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    executor = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="test-futures")
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


class Counter(ctxsnap.Provider):
    name = "test.futures.counter"

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


# -- capture at every call ------------------------------------------------------------------------------------


def test_submit_captures_at_each_call_not_at_construction(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    request_id.set("at construction")
    executor = ctxsnap.ContextExecutor(pool)
    request_id.set("first submit")
    first = executor.submit(read)
    request_id.set("second submit")
    second = executor.submit(read)
    assert first.result(timeout=TIMEOUT) == ("first submit", None)
    assert second.result(timeout=TIMEOUT) == ("second submit", None)


def test_the_drop_in_captures_at_submit_too() -> None:
    request_id.set("at construction")
    with ctxsnap.ThreadPoolExecutor(max_workers=2) as executor:
        request_id.set("at submit")
        assert executor.submit(read).result(timeout=TIMEOUT) == ("at submit", None)
        assert isinstance(executor, concurrent.futures.ThreadPoolExecutor)


def test_map_captures_once_per_call(pool: concurrent.futures.ThreadPoolExecutor, counter: Counter) -> None:
    request_id.set("at map")
    results = ctxsnap.ContextExecutor(pool).map(read, range(20))
    request_id.set("after map")
    assert list(results) == [("at map", None)] * 20
    assert counter.captures == 1


def test_a_registration_after_construction_applies_to_the_next_submit(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    executor = ctxsnap.ContextExecutor(pool, exclude=scratch)
    executor.submit(read).result(timeout=TIMEOUT)
    provider = Counter()
    ctxsnap.register_provider(provider)
    try:
        executor.submit(read).result(timeout=TIMEOUT)
        assert provider.captures == 1
    finally:
        ctxsnap.unregister_provider(provider.name)


# -- one wrapped callable through map on 8 workers x 2,000 items ---------------------------------------------


WORKERS, ITEMS = 8, 2_000


def mapped_through_plain_pool_wrap(fn: Callable[[int], Any]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as plain:
        return list(plain.map(ctxsnap.capture().wrap(fn), range(ITEMS), timeout=2 * TIMEOUT))


def mapped_through_context_executor(fn: Callable[[int], Any]) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as plain:
        return list(ctxsnap.ContextExecutor(plain).map(fn, range(ITEMS), timeout=2 * TIMEOUT))


def mapped_through_drop_in(fn: Callable[[int], Any]) -> list[Any]:
    with ctxsnap.ThreadPoolExecutor(WORKERS) as drop_in:
        return list(drop_in.map(fn, range(ITEMS), timeout=2 * TIMEOUT))


@pytest.mark.parametrize(
    "mapped",
    [mapped_through_plain_pool_wrap, mapped_through_context_executor, mapped_through_drop_in],
    ids=["pool.map(snap.wrap(fn))", "ContextExecutor.map", "ThreadPoolExecutor.map"],
)
def test_one_wrapped_callable_through_map_on_8_workers_x_2000_items(mapped: Callable[..., list[Any]]) -> None:
    barrier = threading.Barrier(WORKERS, timeout=TIMEOUT)
    request_id.set("the request")

    def item(index: int) -> tuple[str | None, str | None, str | None, int]:
        before = scratch.get(None)
        scratch.set(f"item {index}")
        if index < WORKERS:
            barrier.wait()  # the first eight items hold eight workers at once: the runs really overlap
        return request_id.get(None), before, scratch.get(None), threading.get_ident()

    results = mapped(item)
    assert len(results) == ITEMS
    for index, (seen, before, after, _) in enumerate(results):
        assert (seen, before, after) == ("the request", None, f"item {index}")
    assert len({ident for *_, ident in results[:WORKERS]}) == WORKERS
    assert read() == ("the request", None)


# -- already wrapped callables ---------------------------------------------------------------------------------


def test_an_already_wrapped_callable_is_submitted_as_it_is(
    pool: concurrent.futures.ThreadPoolExecutor, counter: Counter
) -> None:
    request_id.set("the snapshot the user chose")
    task = ctxsnap.capture().wrap(read)
    request_id.set("at submit")
    assert counter.captures == 1
    assert ctxsnap.ContextExecutor(pool).submit(task).result(timeout=TIMEOUT) == (
        "the snapshot the user chose",
        None,
    )
    with ctxsnap.ThreadPoolExecutor(1) as drop_in:
        assert drop_in.submit(task).result(timeout=TIMEOUT)[0] == "the snapshot the user chose"
        assert list(drop_in.map(task, [1])) == [("the snapshot the user chose", None)]
    assert counter.captures == 1  # no second capture, no double wrapping


def test_a_context_executor_over_the_drop_in_captures_once(counter: Counter) -> None:
    with ctxsnap.ThreadPoolExecutor(1) as drop_in:
        request_id.set("outer")
        assert ctxsnap.ContextExecutor(drop_in).submit(read).result(timeout=TIMEOUT) == ("outer", None)
    assert counter.captures == 1


# -- the rest of the executor surface ------------------------------------------------------------------------


def test_map_passes_several_iterables_timeout_and_chunksize(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    executor = ctxsnap.ContextExecutor(pool)
    assert list(executor.map(pow, [2, 3, 4], [3, 2, 1], timeout=TIMEOUT, chunksize=2)) == [8, 9, 4]
    with ctxsnap.ThreadPoolExecutor(2) as drop_in:
        assert list(drop_in.map(pow, [2, 3], [3, 2], timeout=TIMEOUT)) == [8, 9]


def test_map_reraises_the_item_exception_unchanged(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    error = ZeroDivisionError("item 2")

    def item(index: int) -> int:
        if index == 2:
            raise error
        return index

    results = ctxsnap.ContextExecutor(pool).map(item, range(4))
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ZeroDivisionError) as info:
        next(results)
    assert info.value is error


def test_shutdown_passes_through(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    executor = ctxsnap.ContextExecutor(pool)
    assert executor.executor is pool
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.submit(read)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.submit(read)


def test_the_with_statement_waits_and_shuts_the_wrapped_executor_down(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    gate = threading.Event()

    def slow() -> str:
        assert gate.wait(timeout=TIMEOUT)
        return "done"

    with ctxsnap.ContextExecutor(pool) as executor:
        assert isinstance(executor, ctxsnap.ContextExecutor)
        future = executor.submit(slow)
        gate.set()
    assert future.done() and future.result() == "done"
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(read)


@pytest.mark.parametrize("drop_in", [False, True], ids=["ContextExecutor", "ThreadPoolExecutor"])
def test_cancel_futures_cancels_what_is_still_queued(drop_in: bool) -> None:
    plain = concurrent.futures.ThreadPoolExecutor(1)
    executor: concurrent.futures.Executor = (
        ctxsnap.ThreadPoolExecutor(1) if drop_in else ctxsnap.ContextExecutor(plain)
    )
    started, gate = threading.Event(), threading.Event()

    def blocking() -> str:
        started.set()
        assert gate.wait(timeout=TIMEOUT)
        return "ran"

    try:
        running = executor.submit(blocking)
        assert started.wait(timeout=TIMEOUT)
        queued = [executor.submit(read) for _ in range(3)]
        executor.shutdown(wait=False, cancel_futures=True)
        assert all(future.cancelled() for future in queued)
    finally:
        gate.set()
        executor.shutdown(wait=True)
        plain.shutdown(wait=True)
    assert running.result(timeout=TIMEOUT) == "ran"


def test_repr_names_the_wrapped_executor(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    request_id.set("never in a repr")
    text = repr(ctxsnap.ContextExecutor(pool))
    assert text.startswith("<ctxsnap.ContextExecutor of <concurrent.futures.thread.ThreadPoolExecutor")
    assert "never in a repr" not in text


def test_selection_applies_to_every_submit(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    request_id.set("kept")
    scratch.set("left out")
    executor = ctxsnap.ContextExecutor(pool, exclude=[scratch])
    assert [executor.submit(read).result(timeout=TIMEOUT) for _ in range(3)] == [("kept", None)] * 3
    assert list(ctxsnap.ContextExecutor(pool, include=scratch).map(read, [1])) == [(None, "left out")]


# -- the field failure it fixes -------------------------------------------------------------------------------


def test_a_plain_pool_leaks_a_task_set_to_the_next_task_and_ctxsnap_does_not() -> None:
    """Plain pool tasks run in the worker thread's own context: a ``set`` stays for whatever runs next."""

    def sets() -> None:
        scratch.set("left by an earlier task")

    with concurrent.futures.ThreadPoolExecutor(1) as plain:
        plain.submit(sets).result(timeout=TIMEOUT)
        assert plain.submit(read).result(timeout=TIMEOUT)[1] == "left by an earlier task"
    with ctxsnap.ThreadPoolExecutor(1) as drop_in:
        drop_in.submit(sets).result(timeout=TIMEOUT)
        assert drop_in.submit(read).result(timeout=TIMEOUT)[1] is None
        # ... and nor does the worker thread itself keep it for a plain task.
        assert concurrent.futures.ThreadPoolExecutor.submit(drop_in, read).result(timeout=TIMEOUT)[1] is None


# -- bad arguments --------------------------------------------------------------------------------------------


async def coroutine_function() -> None:
    pass


@pytest.mark.parametrize("drop_in", [False, True], ids=["ContextExecutor", "ThreadPoolExecutor"])
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda ex: ex.submit(42), r"submit\(\) expects a callable, got int 42\. Pass the function itself"),
        (lambda ex: ex.submit(read()), r"submit\(\) expects a callable, got tuple"),
        (lambda ex: ex.map(None, [1]), r"map\(\) expects a callable, got NoneType"),
        (lambda ex: ex.submit(coroutine_function), r"submit\(\) got the async callable 'coroutine_function'"),
    ],
    ids=["submit-int", "submit-result", "map-none", "submit-async"],
)
def test_non_callables_and_async_functions_are_refused_by_name(
    pool: concurrent.futures.ThreadPoolExecutor, drop_in: bool, call: Callable[[Any], Any], message: str
) -> None:
    if drop_in:
        with ctxsnap.ThreadPoolExecutor(1) as executor, pytest.raises(TypeError, match=message):
            call(executor)
    else:
        with pytest.raises(TypeError, match=message):
            call(ctxsnap.ContextExecutor(pool))


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda pool: ctxsnap.ContextExecutor(42), TypeError, "takes a concurrent.futures.Executor, got int 42"),  # type: ignore[arg-type]
        (lambda pool: ctxsnap.ContextExecutor(pool, include=["nope"]), ValueError, "unknown provider 'nope'"),
        (lambda pool: ctxsnap.ContextExecutor(pool, exclude=[1.5]), TypeError, "as an entry. Pass provider names"),  # type: ignore[list-item]
        (lambda pool: ctxsnap.ContextExecutor(pool, include=[]), ValueError, "include= is empty"),
    ],
    ids=["not-an-executor", "unknown-provider", "bad-selection", "empty-include"],
)
def test_bad_construction_fails_at_once(
    pool: concurrent.futures.ThreadPoolExecutor, make: Callable[[Any], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make(pool)


def test_a_process_pool_is_refused_with_the_reason() -> None:
    processes = concurrent.futures.ProcessPoolExecutor(1)  # no process starts before the first submit
    try:
        with pytest.raises(TypeError, match="cannot use a ProcessPoolExecutor.*cannot be sent to another"):
            ctxsnap.ContextExecutor(processes)
    finally:
        processes.shutdown(wait=True)


def test_a_max_workers_that_is_not_a_number_is_refused_by_name() -> None:
    # The base class would say only "'<=' not supported between instances of 'str' and 'int'".
    message = r"ThreadPoolExecutor\(max_workers=...\) takes an int or None, got str '4'"
    with pytest.raises(TypeError, match=message + r"\. Pass the number of worker threads"):
        ctxsnap.ThreadPoolExecutor(max_workers="4")  # type: ignore[arg-type]


@pytest.mark.parametrize("max_workers", [None, 3, 2.0])
def test_the_drop_in_accepts_what_the_base_class_accepts(max_workers: Any) -> None:
    with ctxsnap.ThreadPoolExecutor(max_workers, "named", initializer=_mark_worker, initargs=("set up",)) as pool:
        assert pool.submit(_read_worker_mark).result(timeout=TIMEOUT) == ("set up", "named")
    # Its own clear errors are left to it.
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        ctxsnap.ThreadPoolExecutor(0)


_worker_mark = threading.local()


def _mark_worker(value: str) -> None:
    _worker_mark.value = value


def _read_worker_mark() -> tuple[str, str]:
    return _worker_mark.value, threading.current_thread().name.partition("_")[0]
