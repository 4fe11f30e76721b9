"""The wrappers that :meth:`Snapshot.wrap` returns, and the code objects that recognise them.

Kept apart from the Snapshot because a wrapper is what users keep and call (often millions of times): each
kind below is shaped for fewer frames and fewer lookups per call (issue 14; docs/benchmarks.md), and every
wrapper of a kind shares its code object, which makes "is this already wrapped?" a set lookup.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import Context
from types import FunctionType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from ._checks import ASYNC_RESULTS as _ASYNC_RESULTS
from ._checks import refuse_async_result as _refuse_async_result
from ._compiled import speedups as _speedups

if TYPE_CHECKING:
    from ._snapshot import Snapshot

__all__ = ["WRAPPER_CODES", "run_task", "wrap_checked"]

P = ParamSpec("P")
R = TypeVar("R")


def wrap_checked(snapshot: Snapshot, fn: Callable[P, R]) -> Callable[P, R]:
    """``snapshot.wrap(fn)`` for adapters that checked ``fn`` themselves, to name their own call in the error."""
    if not snapshot._entries:
        # The common case (contextvars only, or a framework with nothing active) gets a wrapper with one
        # frame less: a fresh copy of the captured context per call, and the call.
        return _make_plain_wrapper(snapshot._base, fn)
    return _make_wrapper(snapshot._run, fn)


def _make_wrapper(
    run: Callable[[Callable[P, R], tuple[Any, ...], dict[str, Any]], R], fn: Callable[P, R]
) -> Callable[P, R]:
    def ctxsnap_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run(fn, args, kwargs)

    return _with_metadata_of(fn, ctxsnap_wrapper)


def _make_plain_wrapper(base: Context | None, fn: Callable[P, R]) -> Callable[P, R]:
    fresh_context = base.copy if base is not None else Context
    if _takes_no_arguments(fn):
        # P is empty for such a function; mypy cannot narrow a ParamSpec from a runtime check.
        return _make_plain_wrapper_without_arguments(fresh_context, fn)  # type: ignore[return-value]

    def ctxsnap_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # An empty *args/**kwargs still costs a call with unpacking (a third of the wrapper): called without
        # arguments, the wrapper calls without them.
        if args or kwargs:
            result = fresh_context().run(fn, *args, **kwargs)
        else:
            result = fresh_context().run(fn)  # type: ignore[call-arg]  # called without arguments: P is empty
        if type(result) in _ASYNC_RESULTS:
            _refuse_async_result(fn, result)
        return result

    return _with_metadata_of(fn, ctxsnap_wrapper)


def _make_plain_wrapper_without_arguments(
    fresh_context: Callable[[], Context], fn: Callable[[], R]
) -> Callable[[], R]:
    # For a function that takes no argument at all, a wrapper that takes none either: calling it with one
    # raises the TypeError fn would ("task() takes 0 positional arguments but 1 was given": functools.wraps
    # gives the wrapper fn's qualified name), and a call skips building *args and **kwargs (issue 14).
    def ctxsnap_wrapper() -> R:
        result = fresh_context().run(fn)
        if type(result) in _ASYNC_RESULTS:
            _refuse_async_result(fn, result)
        return result

    return _with_metadata_of(fn, ctxsnap_wrapper)


def run_task(
    carried: Context | Snapshot, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    """Run a submitted task in what ``capture_for_task()`` captured for it: ``submit(run_task, carried, ...)``.

    When only ContextVars are carried, ``carried`` is the Context itself and no Snapshot is ever built for the
    task. It is still copied here: an executor that calls a task twice (a retry) must start each call afresh.
    """
    try:
        if type(carried) is not Context:
            return carried._run(fn, args, kwargs)
        result = carried.copy().run(fn, *args, **kwargs) if args or kwargs else carried.copy().run(fn)
    except BaseException:
        del carried  # no captured value in the frames a traceback keeps (see Snapshot._run)
        raise
    if type(result) in _ASYNC_RESULTS:
        _refuse_async_result(fn, result)
    return result


_ANY_ARGUMENTS: Final = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS
_TYPE_PARAMS: Final = "__type_params__" in functools.WRAPPER_ASSIGNMENTS  # Python >= 3.12

W = TypeVar("W", bound=Callable[..., Any])


def _with_metadata_of(fn: object, wrapper: W) -> W:
    """``functools.update_wrapper(wrapper, fn)``: the same attributes, in the same order.

    For a plain function, whose every attribute exists, the copy is written out: ``update_wrapper`` loops with
    ``getattr``/``setattr`` under ``try`` and was two thirds of ``ctxsnap.wrap(fn)`` (issue 14). Anything else
    goes through ``update_wrapper`` itself, with its handling of missing attributes.
    """
    if type(fn) is not FunctionType:
        return functools.update_wrapper(wrapper, fn)  # type: ignore[arg-type,return-value]
    target: Any = wrapper
    target.__module__ = fn.__module__
    target.__name__ = fn.__name__
    target.__qualname__ = fn.__qualname__
    target.__doc__ = fn.__doc__
    target.__annotations__ = fn.__annotations__
    if _TYPE_PARAMS:
        target.__type_params__ = getattr(fn, "__type_params__")  # noqa: B009 - not in 3.11's typeshed
    if fn.__dict__:
        target.__dict__.update(fn.__dict__)
    target.__wrapped__ = fn
    return wrapper


def _takes_no_arguments(fn: object) -> bool:
    """Whether ``fn`` is a plain function whose signature is ``()``. Decided once, when it is wrapped."""
    if type(fn) is not FunctionType:
        return False
    code = fn.__code__
    return not (code.co_argcount or code.co_kwonlyargcount or code.co_flags & _ANY_ARGUMENTS)


#: The code objects of the three wrapper kinds and run_task; ``ctxsnap._capture`` adds the Snapshot's run methods.
WRAPPER_CODES: Final = (
    _make_wrapper(lambda fn, args, kwargs: None, print).__code__,
    _make_plain_wrapper(None, print).__code__,
    _make_plain_wrapper_without_arguments(Context, lambda: None).__code__,
    run_task.__code__,
)

if _speedups is not None:
    # The same function in C, without the frame and the argument unpacking (see ctxsnap._compiled). Its code
    # object above stays in WRAPPER_CODES: a task submitted by the pure-Python path is still recognised.
    run_task = _speedups.run_task
