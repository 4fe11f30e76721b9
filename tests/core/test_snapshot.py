"""``Snapshot``, ``capture`` and ``wrap``: what a snapshot carries, how it is sealed, what it refuses, and what it
never reveals. The same rules through every stdlib adapter are in ``test_semantics.py``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import pickle
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import ctxsnap
from ctxsnap._capture import is_wrapped
from tests.support import TIMEOUT

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("core_snapshot_request_id")
scratch: contextvars.ContextVar[str | None] = contextvars.ContextVar("core_snapshot_scratch")
secret: contextvars.ContextVar[str | None] = contextvars.ContextVar("core_snapshot_secret")


@pytest.fixture(autouse=True)
def _each_test_starts_from_none() -> Iterator[None]:
    # Tests share the main thread's context: give each one None to start from, and put back what was there.
    tokens = [(var, var.set(None)) for var in (request_id, scratch, secret)]
    yield
    for var, token in reversed(tokens):
        var.reset(token)


def read() -> tuple[str | None, str | None]:
    return request_id.get(None), scratch.get(None)


def in_fresh_thread(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` in a new plain thread (which starts with an empty context) and return what it returned."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed back to the test thread, which re-raises it
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=TIMEOUT)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
    return result[0]


# -- contextvars --------------------------------------------------------------------------------------------


def test_run_sees_the_captured_values_and_its_writes_stay_in_the_child() -> None:
    request_id.set("parent")
    snap = ctxsnap.capture()

    def child() -> tuple[str | None, str | None]:
        seen = read()
        request_id.set("child")
        scratch.set("child")
        return seen

    assert snap.run(child) == ("parent", None)
    assert read() == ("parent", None)
    # A second run starts from the captured values again, not from the first run's writes.
    assert snap.run(read) == ("parent", None)


def test_a_thread_sees_the_values_as_they_were_at_capture_not_later_writes() -> None:
    request_id.set("at capture")
    snap = ctxsnap.capture()
    request_id.set("after capture")
    assert in_fresh_thread(lambda: snap.run(read)) == ("at capture", None)
    assert in_fresh_thread(read) == (None, None)  # without the snapshot a thread sees nothing


def test_run_passes_arguments_including_one_named_fn() -> None:
    snap = ctxsnap.capture()

    def task(a: int, /, b: int, *, fn: str) -> tuple[int, int, str]:
        return a, b, fn

    assert snap.run(task, 1, b=2, fn="kw") == (1, 2, "kw")
    assert snap.wrap(task)(1, 2, fn="kw") == (1, 2, "kw")


def test_module_level_wrap_captures_when_called() -> None:
    request_id.set("first")
    wrapped = ctxsnap.wrap(read)
    request_id.set("second")
    assert in_fresh_thread(wrapped) == ("first", None)
    assert in_fresh_thread(ctxsnap.wrap(read)) == ("second", None)


def test_snapshot_constructor_is_capture() -> None:
    request_id.set("constructed")
    snap = ctxsnap.Snapshot(exclude=[scratch])
    request_id.set("later")
    assert snap.run(read) == ("constructed", None)


# -- no context at all --------------------------------------------------------------------------------------


def test_capture_in_a_thread_with_an_empty_context_works_and_carries_nothing() -> None:
    def capture_in_empty_thread() -> ctxsnap.Snapshot:
        assert len(contextvars.copy_context()) == 0
        return ctxsnap.capture()

    snap = in_fresh_thread(capture_in_empty_thread)
    request_id.set("this thread's own")
    assert snap.run(read) == (None, None)
    assert snap.providers[0] == "contextvars"


# -- reuse --------------------------------------------------------------------------------------------------


def test_one_wrapped_callable_runs_concurrently_in_many_threads() -> None:
    """A shared ``Context`` would raise "already entered"; every run must get its own copy."""
    workers = 8
    barrier = threading.Barrier(workers, timeout=TIMEOUT)
    request_id.set("shared parent")

    def task(index: int) -> tuple[str | None, str | None]:
        seen = read()
        scratch.set(f"worker {index}")
        barrier.wait()  # every worker is inside the snapshot at once
        return seen[0], scratch.get(None)

    wrapped = ctxsnap.capture().wrap(task)
    results: dict[int, Any] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, wrapped(i))) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert results == {i: ("shared parent", f"worker {i}") for i in range(workers)}
    assert read() == ("shared parent", None)


def test_a_run_nested_inside_another_run_of_the_same_snapshot_works() -> None:
    request_id.set("outer")
    snap = ctxsnap.capture()

    def outer() -> tuple[str | None, str | None]:
        scratch.set("outer's")
        return snap.run(read)

    assert snap.run(outer) == ("outer", None)


# -- late child ---------------------------------------------------------------------------------------------


def test_a_snapshot_taken_in_a_thread_that_has_ended_still_applies() -> None:
    def parent() -> Callable[[], tuple[str | None, str | None]]:
        request_id.set("the ended parent's")
        return ctxsnap.wrap(read)

    wrapped = in_fresh_thread(parent)  # that thread has finished by now
    assert in_fresh_thread(wrapped) == ("the ended parent's", None)


# -- sealing ------------------------------------------------------------------------------------------------


def test_leaving_the_with_block_seals_the_snapshot_but_wrapped_callables_still_run() -> None:
    request_id.set("inside the block")
    with ctxsnap.capture() as snap:
        assert not snap.sealed
        wrapped = snap.wrap(read)
        assert snap.run(read) == ("inside the block", None)
    request_id.set("after the block")
    assert snap.sealed
    with pytest.raises(ctxsnap.SnapshotClosedError, match=r"Snapshot\.wrap\(\) was called after .* sealed"):
        snap.wrap(read)
    with pytest.raises(ctxsnap.SnapshotClosedError, match=r"take a new snapshot with ctxsnap\.capture\(\)"):
        snap.run(read)
    with pytest.raises(ctxsnap.SnapshotClosedError), snap:
        pass
    assert in_fresh_thread(wrapped) == ("inside the block", None)
    assert wrapped() == ("inside the block", None)


def test_the_block_seals_also_when_it_raises() -> None:
    with pytest.raises(KeyError), ctxsnap.capture() as snap:
        raise KeyError("inside")
    with pytest.raises(ctxsnap.SnapshotClosedError):
        snap.run(read)


def test_close_seals_a_bare_snapshot() -> None:
    snap = ctxsnap.capture()
    snap.close()
    assert snap.sealed
    with pytest.raises(ctxsnap.SnapshotClosedError):
        snap.wrap(read)


def test_sealed_error_is_a_snapshot_error_and_a_runtime_error() -> None:
    assert issubclass(ctxsnap.SnapshotClosedError, ctxsnap.SnapshotError)
    assert issubclass(ctxsnap.SnapshotClosedError, RuntimeError)
    assert issubclass(ctxsnap.ProviderError, ctxsnap.SnapshotError)


# -- errors -------------------------------------------------------------------------------------------------


class TaskFailed(Exception):
    pass


def test_the_function_exception_propagates_unchanged() -> None:
    error = TaskFailed("from the task")

    def fails() -> None:
        scratch.set("before failing")
        raise error

    snap = ctxsnap.capture()
    with pytest.raises(TaskFailed) as info:
        snap.run(fails)
    assert info.value is error
    assert not isinstance(info.value, ctxsnap.SnapshotError)
    assert "fails" in [entry.name for entry in info.traceback]
    with pytest.raises(TaskFailed) as info:
        in_fresh_thread(snap.wrap(fails))
    assert info.value is error
    assert scratch.get(None) is None


def test_base_exceptions_propagate_unchanged() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ctxsnap.capture().run(interrupted)


NOT_CALLABLE = [42, "read", None, read()]


@pytest.mark.parametrize("value", NOT_CALLABLE, ids=repr)
@pytest.mark.parametrize("method", ["wrap", "run", "ctxsnap.wrap"])
def test_non_callables_are_refused_with_the_fix(method: str, value: object) -> None:
    snap = ctxsnap.capture()
    # Typed loosely on purpose: each test hands the entry point what its signature refuses.
    calls: dict[str, Callable[..., Any]] = {"wrap": snap.wrap, "run": snap.run, "ctxsnap.wrap": ctxsnap.wrap}
    call = calls[method]
    with pytest.raises(TypeError, match=r"expects a callable, got .*Pass the function itself"):
        call(value)


async def async_function() -> None:
    pass


async def async_generator() -> AsyncIterator[int]:
    yield 1


class AsyncCallable:
    async def __call__(self) -> None:
        pass

    async def method(self) -> None:
        pass


ASYNC_CALLABLES = {
    "async def": async_function,
    "async generator": async_generator,
    "partial of async def": functools.partial(async_function),
    "bound async method": AsyncCallable().method,
    "object with async __call__": AsyncCallable(),
}


@pytest.mark.parametrize("fn", ASYNC_CALLABLES.values(), ids=ASYNC_CALLABLES.keys())
@pytest.mark.parametrize("method", ["wrap", "run", "ctxsnap.wrap"])
def test_async_callables_are_refused(method: str, fn: Callable[[], Any]) -> None:
    """Their body would run later, in an event loop, outside the snapshot: refusing beats a silent no-op."""
    snap = ctxsnap.capture()
    # Typed loosely on purpose: each test hands the entry point what its signature refuses.
    calls: dict[str, Callable[..., Any]] = {"wrap": snap.wrap, "run": snap.run, "ctxsnap.wrap": ctxsnap.wrap}
    call = calls[method]
    with pytest.raises(TypeError, match=r"got the async callable .*Await async code directly"):
        call(fn)


def test_sync_callables_of_every_kind_are_accepted() -> None:
    class Callable_:
        def __call__(self) -> str:
            return "instance"

        def method(self) -> str:
            return "method"

    snap = ctxsnap.capture()
    assert snap.run(Callable_()) == "instance"
    assert snap.run(Callable_().method) == "method"
    assert snap.run(functools.partial(str, "partial")) == "partial"
    assert snap.run(len, "abc") == 3
    assert isinstance(snap.run(Callable_), Callable_)


# -- signature and metadata ---------------------------------------------------------------------------------


def documented(a: int, b: str = "x", *args: float, c: bool = False, **kwargs: object) -> tuple[int, str]:
    """The docstring survives wrapping."""
    return a, b


documented.custom_attribute = "kept"  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", [lambda fn: ctxsnap.capture().wrap(fn), ctxsnap.wrap], ids=["snap.wrap", "wrap"])
def test_wrap_keeps_signature_and_metadata(make: Callable[[Any], Any]) -> None:
    wrapped = make(documented)
    assert inspect.signature(wrapped) == inspect.signature(documented)
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__", "__annotations__"):
        assert getattr(wrapped, attribute) == getattr(documented, attribute)
    assert wrapped.__wrapped__ is documented
    assert wrapped.custom_attribute == "kept"
    assert wrapped(1, c=True) == (1, "x")


def test_wrapped_callables_are_recognised_as_wrapped() -> None:
    assert not is_wrapped(read)
    assert is_wrapped(ctxsnap.wrap(read))
    assert is_wrapped(ctxsnap.capture(exclude="contextvars").wrap(read))


# -- privacy ------------------------------------------------------------------------------------------------


def test_repr_names_providers_and_variables_but_never_values() -> None:
    secret.set("hunter2-password")
    request_id.set("rid-value-123")
    with ctxsnap.capture() as snap:
        text = repr(snap)
        assert "contextvars" in text
        assert "core_snapshot_secret" in text and "core_snapshot_request_id" in text
        assert "hunter2" not in text and "rid-value-123" not in text
        assert "sealed" not in text
    assert "sealed" in repr(snap)
    assert "hunter2" not in str(snap)


def test_repr_stays_short_with_many_variables() -> None:
    many: list[contextvars.ContextVar[Any]] = [
        contextvars.ContextVar(f"core_snapshot_many_{i:03}") for i in range(60)
    ]

    def capture_with_many() -> ctxsnap.Snapshot:
        for i, var in enumerate(many):
            var.set(f"value {i}")
        return ctxsnap.capture()

    text = repr(in_fresh_thread(capture_with_many))
    assert "core_snapshot_many_000" in text
    assert "... 40 more" in text
    assert "value" not in text


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_is_refused_with_the_reason(protocol: int) -> None:
    snap = ctxsnap.capture()
    with pytest.raises(TypeError, match=r"cannot be pickled: it holds this process's live objects"):
        pickle.dumps(snap, protocol=protocol)
