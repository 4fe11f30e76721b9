"""Argument checks shared by the core and the adapters, and the errors they raise.

Each check runs where the mistake is made (``wrap``, ``submit``, ``ContextExecutor(...)``), so the error names
the call the user wrote rather than surfacing later from inside a worker thread. The run path calls the
``refuse_*``/``raise_*`` functions only once it knows something is wrong: they cost nothing on success.
"""

from __future__ import annotations

import inspect
import sys
from types import AsyncGeneratorType, CoroutineType, FunctionType
from typing import Any, Final, NoReturn

from ._errors import SnapshotClosedError

__all__ = [
    "ASYNC_FLAGS",
    "ASYNC_RESULTS",
    "check_callable",
    "check_executor",
    "raise_async",
    "raise_sealed",
    "refuse_async_result",
    "refuse_async_run",
    "refuse_selection_for_wrapped",
]


#: An async function (or async generator function) returns without running its body; the body would run later,
#: in whatever loop awaits it, outside the snapshot.
ASYNC_FLAGS: Final = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def check_callable(method: str, fn: object, before: str = "") -> None:
    """Refuse what ``method`` could not run inside a snapshot: a non-callable, or an async callable.

    ``before`` is what precedes the function in a correct call (``"target="`` for ``Thread``), so that the
    example in the message is a call that would work.
    """
    # Plain functions are the common case and one flag test answers for them; inspect handles the rest.
    if type(fn) is FunctionType:
        if fn.__code__.co_flags & ASYNC_FLAGS:
            raise_async(method, fn)
        return
    if not callable(fn):
        raise TypeError(
            f"{method}() expects a callable, got {type(fn).__name__} {_short_repr(fn)}. Pass the function "
            f"itself, for example {method}({before}fn), not {method}({before}fn())."
        )
    if (
        inspect.iscoroutinefunction(fn)
        or inspect.isasyncgenfunction(fn)
        # An instance with an async __call__, but not a class that has one: calling the class only builds an
        # instance, synchronously, which is what the caller gets back.
        or (
            not inspect.isroutine(fn)
            and not isinstance(fn, type)
            and inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004  # not callable(): its __call__ is what runs
        )
    ):
        raise_async(method, fn)


def raise_async(method: str, fn: object) -> NoReturn:
    raise TypeError(
        f"{method}() got the async callable {_callable_name(fn)!r}, whose body escapes the snapshot. "
        "Await async code directly; ctxsnap runs sync functions in threads."
    )


def _callable_name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", type(fn).__qualname__))


def check_executor(
    method: str, executor: object, example: str, *, none_means: str = "", carries: bool = False
) -> None:
    """Refuse what ``method`` cannot hand work to: anything but a thread-side ``concurrent.futures`` executor.

    Anything with a callable ``submit`` passes, as ``loop.run_in_executor`` accepts any executor. ``example``
    is a correct call with ``{}`` where the executor goes; ``none_means`` is set when ``None`` is accepted;
    ``carries`` is set where ``carrier=`` is the way to use a process pool.
    """
    if isinstance(executor, type):
        # The class has a callable submit too; unchecked, the mistake surfaces at the first submit as an
        # AttributeError or a missing-argument TypeError from deep inside the executor.
        name = executor.__qualname__
        raise TypeError(
            f"{method}() takes an executor instance, got the class {name}. Create one first: "
            f"{example.format(name + '()')}."
        )
    # Refused outright rather than left to fail at pickling, whose message names some object deep inside the
    # snapshot, not the choice of executor. Looked up in sys.modules: naming concurrent.futures.ProcessPoolExecutor
    # would import multiprocessing, and while its module is not loaded no process pool can exist.
    process = sys.modules.get("concurrent.futures.process")
    if process is not None and isinstance(executor, process.ProcessPoolExecutor):
        if carries:
            raise TypeError(
                f"{method}() cannot use a ProcessPoolExecutor without a carrier. Declare what crosses with a "
                "ctxsnap.Carrier and pass carrier=, or use a thread pool such as ctxsnap.ThreadPoolExecutor(): "
                "a snapshot holds live objects (request, g, ContextVar values) that cannot be sent to another "
                "process."
            )
        raise TypeError(
            f"{method}() cannot use a ProcessPoolExecutor. Use a thread pool such as "
            "ctxsnap.ThreadPoolExecutor(), or submit to the process pool directly with plain values: a snapshot "
            "holds live objects of this process (request, g, ContextVar values) that cannot be sent to another "
            "process."
        )
    if not callable(getattr(executor, "submit", None)):
        accepted = f" or None ({none_means})" if none_means else ""
        raise TypeError(
            f"{method}() takes a concurrent.futures.Executor{accepted}, got {type(executor).__name__} "
            f"{_short_repr(executor)}. Pass an executor instance such as concurrent.futures.ThreadPoolExecutor()."
        )


def _short_repr(value: object) -> str:
    # The value is shown to say what went wrong, but it may be a large or secret object: keep it short.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


#: What a sync function returns when it is really an async one in disguise (a lambda returning a coroutine, a
#: partial of an async method): its body would run later, in some event loop, outside the snapshot.
ASYNC_RESULTS: Final = frozenset({CoroutineType, AsyncGeneratorType})


def refuse_async_run(fn: object, result: Any) -> NoReturn:
    """:meth:`Snapshot.run`'s refusal of an async result: "got the async callable" when ``fn`` is one."""
    if type(fn) is FunctionType and fn.__code__.co_flags & ASYNC_FLAGS:
        if type(result) is CoroutineType:
            result.close()
        raise_async("run", fn)
    refuse_async_result(fn, result)


def refuse_async_result(fn: object, result: Any) -> NoReturn:
    if type(result) is CoroutineType:
        result.close()  # never started: closing it runs nothing, and spares a "never awaited" RuntimeWarning
    kind = "a coroutine" if type(result) is CoroutineType else "an async generator"
    raise TypeError(
        f"{_callable_name(fn)}() returned {kind} instead of a result. Await async code directly: its body "
        "would run later, outside the snapshot, and ctxsnap runs sync functions in threads."
    )


def raise_sealed(method: str) -> NoReturn:
    raise SnapshotClosedError(
        f"Snapshot.{method}() was called after the snapshot was sealed. Wrap the work inside the block, or "
        "take a new snapshot with ctxsnap.capture(); a snapshot is sealed when its 'with' block ends."
    )


def refuse_selection_for_wrapped(method: str) -> NoReturn:
    """Refuse ``include``/``exclude`` given to ``method`` beside a callable that carries its own snapshot."""
    raise TypeError(
        f"{method}() got include=/exclude= for a callable that is already wrapped. It runs in the snapshot it "
        "was wrapped with: pass the plain function, or select when wrapping, as in ctxsnap.wrap(fn, include=...)."
    )
