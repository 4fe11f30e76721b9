"""Bad input: every public entry point, given the wrong thing, says what was wrong and what to do instead.

Each case below is one row of the error table in ``docs/reliability.md``; ``test_docs_table_lists_every_case``
keeps the two in step, so the table never promises a message the code does not give.

A case names a fragment of the message that states the problem and one that states the fix: a test that only
checked the exception type would pass for the unhelpful errors this suite exists to rule out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import flask
import pytest

import ctxsnap
from ctxsnap.adapters import anyio as ctxsnap_anyio
from ctxsnap.adapters import asyncio as ctxsnap_asyncio
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.support import PROCESS_TIMEOUT

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"

some_var: contextvars.ContextVar[str] = contextvars.ContextVar("reliability_bad_input_var")


@dataclass(frozen=True)
class Case:
    id: str
    shows: str  # the call as the docs table shows it
    call: Callable[[], object]
    raises: type[BaseException]
    problem: str  # a fragment of the message that names what was wrong
    fix: str  # a fragment of the message that names what to do


def _fn() -> None:
    return None


async def _async_fn() -> None:
    return None


class _ProviderClass(ctxsnap.Provider):
    name = "test.bad-input.class"

    def capture(self) -> object:
        return None

    def apply(self, state: object) -> None:
        return None


class _NoApply:
    name = "test.bad-input.no-apply"

    def capture(self) -> object:
        return None


class _NoName:
    def capture(self) -> object:
        return None

    def apply(self, state: object) -> None:
        return None


class _UndoNotCallable(_NoApply):
    name = "test.bad-input.undo"
    undo = "not a method"

    def apply(self, state: object) -> None:
        return None


class _OwnedVarsList(_UndoNotCallable):
    name = "test.bad-input.owned"
    undo = None  # type: ignore[assignment]  # a provider whose undo is not callable, on purpose
    owned_vars = [some_var]


def _sealed_snapshot() -> ctxsnap.Snapshot:
    with ctxsnap.capture() as snap:
        pass
    return snap


def _register_twice() -> None:
    ctxsnap.register_provider(_ProviderClass())
    try:
        ctxsnap.register_provider(_ProviderClass())
    finally:
        ctxsnap.unregister_provider(_ProviderClass.name)


def _with_executor(make: Callable[[], concurrent.futures.Executor], use: Callable[[Any], object]) -> object:
    executor = make()
    try:
        return use(executor)
    finally:
        executor.shutdown(wait=True)


def _outside_loop(coroutine_function: Callable[..., Any], *args: Any) -> object:
    """Drive an async helper one step with no event loop running, as a sync caller who forgot ``await`` would."""
    coroutine = coroutine_function(*args)
    try:
        return coroutine.send(None)
    finally:
        coroutine.close()


def _in_loop(coroutine_function: Callable[..., Any], *args: Any) -> object:
    return asyncio.run(coroutine_function(*args))


async def _run_in_executor_selecting_for_a_wrapped_callable() -> object:
    return await ctxsnap_asyncio.run_in_executor(None, ctxsnap.wrap(_fn), include=[some_var])


def _run_in_executor(executor: Any, fn: object) -> object:
    async def main() -> object:
        return await ctxsnap_asyncio.run_in_executor(executor, fn)  # type: ignore[arg-type]

    return asyncio.run(main())


def _run_in_process_pool(fn: object) -> object:
    return _with_executor(concurrent.futures.ProcessPoolExecutor, lambda pool: _run_in_executor(pool, fn))


def _in_a_fresh_interpreter(code: str) -> None:
    """Run ``code`` in a new interpreter and raise here the exception it raised there.

    For the states this process has left behind, such as "Quart is not imported yet". The exception travels
    pickled, so the message checked is the one ctxsnap produced.
    """
    wrapper = (
        "import pickle, sys\n"
        f"try:\n    exec({code!r})\n"
        "except Exception as exc:\n    sys.stdout.write(pickle.dumps(exc).hex())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        cwd=Path(__file__).resolve().parents[2],
        env={"CTXSNAP_DISABLE_ENTRY_POINTS": "1", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    if result.stdout:
        raise pickle.loads(bytes.fromhex(result.stdout))


class _NamedContextvars(_ProviderClass):
    name = "contextvars"


CORE_CASES = [
    Case(
        "wrap-non-callable",
        "ctxsnap.wrap(42)",
        lambda: ctxsnap.wrap(42),  # type: ignore[arg-type]
        TypeError,
        "expects a callable, got int",
        "Pass the function itself",
    ),
    Case(
        "wrap-called-result",
        "ctxsnap.wrap(fn())",
        lambda: ctxsnap.wrap(_fn()),  # type: ignore[arg-type, func-returns-value]
        TypeError,
        "expects a callable, got NoneType",
        "not wrap(fn())",
    ),
    Case(
        "wrap-async-function",
        "ctxsnap.wrap(async_fn)",
        lambda: ctxsnap.wrap(_async_fn),
        TypeError,
        "got the async",
        "Await async code directly",
    ),
    Case(
        "run-non-callable",
        'snap.run("fn")',
        lambda: ctxsnap.capture().run("fn"),  # type: ignore[arg-type]
        TypeError,
        "run() expects a callable, got str",
        "Pass the function itself",
    ),
    Case(
        "sealed-wrap",
        "snap.wrap(fn) after the with block",
        lambda: _sealed_snapshot().wrap(_fn),
        ctxsnap.SnapshotClosedError,
        "after the snapshot was sealed",
        "take a new snapshot",
    ),
    Case(
        "sealed-run",
        "snap.run(fn) after the with block",
        lambda: _sealed_snapshot().run(_fn),
        ctxsnap.SnapshotClosedError,
        "Snapshot.run() was called after",
        "Wrap the work inside the block",
    ),
    Case(
        "pickle-snapshot",
        "pickle.dumps(snap)",
        lambda: pickle.dumps(ctxsnap.capture()),
        TypeError,
        "cannot be pickled",
        "send the plain values you need",
    ),
    Case(
        "include-unknown-name",
        'capture(include=["flsk"])',
        lambda: ctxsnap.capture(include=["flsk"]),
        ValueError,
        "unknown provider 'flsk'",
        "registered providers are",
    ),
    Case(
        "exclude-unknown-name",
        'capture(exclude=["contextvar"])',
        lambda: ctxsnap.capture(exclude=["contextvar"]),
        ValueError,
        "unknown provider 'contextvar'",
        "registered providers are",
    ),
    Case(
        "include-bytes",
        'capture(include=b"flask")',
        lambda: ctxsnap.capture(include=b"flask"),  # type: ignore[arg-type]
        TypeError,
        "provider names as str, got bytes",
        "Decode it first",
    ),
    Case(
        "include-not-iterable",
        "capture(include=42)",
        lambda: ctxsnap.capture(include=42),  # type: ignore[arg-type]
        TypeError,
        "got int",
        "Pass one, or an iterable of them",
    ),
    Case(
        "exclude-bad-entry",
        'capture(exclude=["contextvars", 3.5])',
        lambda: ctxsnap.capture(exclude=["contextvars", 3.5]),  # type: ignore[list-item]
        TypeError,
        "got 3.5 of type float",
        "provider names (str) or ContextVar objects",
    ),
    Case(
        "include-var-without-contextvars",
        'capture(include=[var], exclude=["contextvars"])',
        lambda: ctxsnap.capture(include=[some_var], exclude=["contextvars"]),
        ValueError,
        "exclude= drops 'contextvars'",
        "Keep 'contextvars'",
    ),
    Case(
        "include-empty",
        "capture(include=[])",
        lambda: ctxsnap.capture(include=[]),
        ValueError,
        "include= is empty, so the snapshot would carry nothing",
        "leave include out (None)",
    ),
    Case(
        "include-and-exclude-one-name",
        'capture(include=["contextvars"], exclude=["contextvars"])',
        lambda: ctxsnap.capture(include=["contextvars"], exclude=["contextvars"]),
        ValueError,
        "include= names 'contextvars' and exclude= leaves it out again",
        "Remove it from one of the two",
    ),
    Case(
        "include-and-exclude-one-var",
        "capture(include=[var], exclude=[var])",
        lambda: ctxsnap.capture(include=[some_var], exclude=[some_var]),
        ValueError,
        "is in both include= and exclude=",
        "Remove it from one of the two",
    ),
    Case(
        "exclude-removes-all-included",
        'capture(include=["flask"], exclude=["flask.app", "flask.request"])',
        lambda: ctxsnap.capture(include=["flask"], exclude=["flask.app", "flask.request"]),
        ValueError,
        "exclude= leaves out every provider that include= selects",
        "Drop the exclude= entries that remove them",
    ),
    Case(
        "include-framework-not-imported",
        'capture(include=["quart"]) before Quart is imported',
        lambda: _in_a_fresh_interpreter("import ctxsnap; ctxsnap.capture(include=['quart'])"),
        ValueError,
        "but quart is not imported",
        "Import quart before capturing",
    ),
    Case(
        "register-class",
        "register_provider(MyProvider)",
        lambda: ctxsnap.register_provider(_ProviderClass),  # type: ignore[arg-type]
        TypeError,
        "got the class _ProviderClass",
        "register_provider(_ProviderClass())",
    ),
    Case(
        "register-no-name",
        "register_provider(obj_without_name)",
        lambda: ctxsnap.register_provider(_NoName()),  # type: ignore[arg-type]
        TypeError,
        "got None",
        "Set 'name' to dot-separated identifiers",
    ),
    Case(
        "register-missing-apply",
        "register_provider(obj_without_apply)",
        lambda: ctxsnap.register_provider(_NoApply()),  # type: ignore[arg-type]
        TypeError,
        "lacks the method(s) apply",
        "Subclass ctxsnap.Provider",
    ),
    Case(
        "register-undo-not-callable",
        'register_provider(obj) with undo = "text"',
        lambda: ctxsnap.register_provider(_UndoNotCallable()),  # type: ignore[arg-type]
        TypeError,
        "'undo' attribute that is not callable",
        "'undo'",
    ),
    Case(
        "register-owned-vars-list",
        "register_provider(obj) with owned_vars = [var]",
        lambda: ctxsnap.register_provider(_OwnedVarsList()),  # type: ignore[arg-type]
        TypeError,
        "has an invalid 'owned_vars'",
        "tuple of ContextVar objects",
    ),
    Case(
        "register-duplicate-name",
        "register_provider(p) twice under one name",
        _register_twice,
        ValueError,
        "is already registered",
        "Unregister it first",
    ),
    Case(
        "unregister-unknown",
        'unregister_provider("nope")',
        lambda: ctxsnap.unregister_provider("nope"),
        LookupError,
        "No provider named 'nope'",
        "Pass one of the registered names: ",
    ),
    Case(
        "unregister-not-a-name",
        "unregister_provider(42)",
        lambda: ctxsnap.unregister_provider(42),  # type: ignore[arg-type]
        TypeError,
        "got int, not a provider name",
        "Pass the name as a str",
    ),
    Case(
        "unregister-contextvars",
        'unregister_provider("contextvars")',
        lambda: ctxsnap.unregister_provider("contextvars"),
        ValueError,
        "cannot be unregistered",
        "capture(exclude=['contextvars'])",
    ),
    Case(
        "register-replace-contextvars",
        'register_provider(p named "contextvars", replace=True)',
        lambda: ctxsnap.register_provider(_NamedContextvars(), replace=True),
        ValueError,
        "cannot be replaced",
        "Register your provider under a name of its own",
    ),
    Case(
        "register-replace-not-a-bool",
        'register_provider(p, replace="yes")',
        lambda: ctxsnap.register_provider(_ProviderClass(), replace="yes"),  # type: ignore[arg-type]
        TypeError,
        "got 'yes'",
        "Pass True or False",
    ),
    Case(
        "thread-target-non-callable",
        "ctxsnap.Thread(target=42)",
        lambda: ctxsnap.Thread(target=42),  # type: ignore[arg-type]
        TypeError,
        "Thread() expects a callable, got int 42",
        "Thread(target=fn), not Thread(target=fn())",
    ),
    Case(
        "thread-target-async",
        "ctxsnap.Thread(target=async_fn)",
        lambda: ctxsnap.Thread(target=_async_fn),
        TypeError,
        "Thread() got the async callable '_async_fn'",
        "Await async code directly",
    ),
    Case(
        "thread-args-not-iterable",
        "ctxsnap.Thread(target=fn, args=5)",
        lambda: ctxsnap.Thread(target=_fn, args=5),  # type: ignore[arg-type]
        TypeError,
        "takes an iterable of positional arguments, got int 5",
        "Pass a tuple",
    ),
    Case(
        "thread-kwargs-not-a-mapping",
        'ctxsnap.Thread(target=fn, kwargs=[("a", 1)])',
        lambda: ctxsnap.Thread(target=_fn, kwargs=[("a", 1)]),  # type: ignore[arg-type]
        TypeError,
        "takes a mapping of keyword arguments, got list",
        "Pass a dict",
    ),
    Case(
        "thread-unknown-provider",
        'ctxsnap.Thread(target=fn, exclude=["flsk"])',
        lambda: ctxsnap.Thread(target=_fn, exclude=["flsk"]),
        ValueError,
        "unknown provider 'flsk'",
        "registered providers are",
    ),
    Case(
        "executor-not-an-executor",
        "ctxsnap.ContextExecutor(42)",
        lambda: ctxsnap.ContextExecutor(42),  # type: ignore[arg-type]
        TypeError,
        "got int",
        "Pass an executor instance",
    ),
    Case(
        "executor-class-not-instance",
        "ctxsnap.ContextExecutor(ThreadPoolExecutor)",
        lambda: ctxsnap.ContextExecutor(concurrent.futures.ThreadPoolExecutor),  # type: ignore[arg-type]
        TypeError,
        "got the class ThreadPoolExecutor",
        "ContextExecutor(ThreadPoolExecutor())",
    ),
    Case(
        "executor-process-pool",
        "ctxsnap.ContextExecutor(ProcessPoolExecutor())",
        lambda: _with_executor(concurrent.futures.ProcessPoolExecutor, ctxsnap.ContextExecutor),
        TypeError,
        "ContextExecutor() cannot use a ProcessPoolExecutor",
        "use a thread pool",
    ),
    Case(
        "executor-unknown-provider",
        'ctxsnap.ContextExecutor(pool, include=["flsk"])',
        lambda: _with_executor(
            concurrent.futures.ThreadPoolExecutor, lambda pool: ctxsnap.ContextExecutor(pool, include=["flsk"])
        ),
        ValueError,
        "unknown provider 'flsk'",
        "registered providers are",
    ),
    Case(
        "executor-submit-non-callable",
        "ctxsnap.ThreadPoolExecutor().submit(42)",
        lambda: _with_executor(ctxsnap.ThreadPoolExecutor, lambda pool: pool.submit(42)),
        TypeError,
        "expects a callable, got int",
        "Pass the function itself",
    ),
    Case(
        "executor-submit-async",
        "ctxsnap.ContextExecutor(pool).submit(async_fn)",
        lambda: _with_executor(
            concurrent.futures.ThreadPoolExecutor, lambda pool: ctxsnap.ContextExecutor(pool).submit(_async_fn)
        ),
        TypeError,
        "submit() got the async callable",
        "Await async code directly",
    ),
    Case(
        "executor-map-none",
        "ctxsnap.ContextExecutor(pool).map(None, items)",
        lambda: _with_executor(
            concurrent.futures.ThreadPoolExecutor,
            lambda pool: ctxsnap.ContextExecutor(pool).map(None, [1]),  # type: ignore[arg-type]
        ),
        TypeError,
        "map() expects a callable, got NoneType",
        "Pass the function itself",
    ),
    Case(
        "thread-pool-max-workers",
        'ctxsnap.ThreadPoolExecutor(max_workers="x")',
        lambda: ctxsnap.ThreadPoolExecutor(max_workers="x"),  # type: ignore[arg-type]
        TypeError,
        "takes an int or None, got str",
        "Pass the number of worker threads",
    ),
    Case(
        "thread-pool-unknown-provider",
        'ctxsnap.ThreadPoolExecutor(4, exclude=["flsk"])',
        lambda: ctxsnap.ThreadPoolExecutor(4, exclude=["flsk"]),
        ValueError,
        "unknown provider 'flsk'",
        "registered providers are",
    ),
    Case(
        "run-returns-coroutine",
        "snap.run(lambda: async_fn())",
        lambda: ctxsnap.capture().run(lambda: _async_fn()),
        TypeError,
        "returned a coroutine instead of a result",
        "Await async code directly",
    ),
    Case(
        "asyncio-to-thread-no-loop",
        "ctxsnap.adapters.asyncio.to_thread(fn) driven without a loop",
        lambda: _outside_loop(ctxsnap_asyncio.to_thread, _fn),
        RuntimeError,
        "needs a running event loop",
        "Await it inside 'async def'",
    ),
    Case(
        "asyncio-run-in-executor-no-loop",
        "ctxsnap.adapters.asyncio.run_in_executor(None, fn) in sync code",
        lambda: ctxsnap_asyncio.run_in_executor(None, _fn),
        RuntimeError,
        "needs a running event loop",
        "use snapshot.run() or ctxsnap.ThreadPoolExecutor",
    ),
    Case(
        "asyncio-to-thread-non-callable",
        "await ctxsnap.adapters.asyncio.to_thread(42)",
        lambda: _in_loop(ctxsnap_asyncio.to_thread, 42),
        TypeError,
        "expects a callable, got int",
        "Pass the function itself",
    ),
    Case(
        "asyncio-to-thread-async",
        "await ctxsnap.adapters.asyncio.to_thread(async_fn)",
        lambda: _in_loop(ctxsnap_asyncio.to_thread, _async_fn),
        TypeError,
        "to_thread() got the async callable",
        "Await async code directly",
    ),
    Case(
        "asyncio-run-in-executor-non-callable",
        "await ctxsnap.adapters.asyncio.run_in_executor(None, 42)",
        lambda: _run_in_executor(None, 42),
        TypeError,
        "run_in_executor() expects a callable, got int",
        "run_in_executor(executor, fn), not",
    ),
    Case(
        "asyncio-run-in-executor-async",
        "await ctxsnap.adapters.asyncio.run_in_executor(None, async_fn)",
        lambda: _run_in_executor(None, _async_fn),
        TypeError,
        "run_in_executor() got the async callable",
        "Await async code directly",
    ),
    Case(
        "asyncio-run-in-executor-not-an-executor",
        "await ctxsnap.adapters.asyncio.run_in_executor(42, fn)",
        lambda: _run_in_executor(42, _fn),
        TypeError,
        "takes a concurrent.futures.Executor or None (the loop's default executor), got int",
        "Pass an executor instance",
    ),
    Case(
        "asyncio-run-in-executor-class",
        "await ctxsnap.adapters.asyncio.run_in_executor(ThreadPoolExecutor, fn)",
        lambda: _run_in_executor(concurrent.futures.ThreadPoolExecutor, _fn),
        TypeError,
        "got the class ThreadPoolExecutor",
        "run_in_executor(ThreadPoolExecutor(), fn)",
    ),
    Case(
        "asyncio-run-in-executor-process-pool",
        "await ctxsnap.adapters.asyncio.run_in_executor(ProcessPoolExecutor(), fn)",
        lambda: _run_in_process_pool(_fn),
        TypeError,
        "run_in_executor() cannot use a ProcessPoolExecutor",
        "Use a thread pool",
    ),
    Case(
        "asyncio-run-in-executor-selection-for-wrapped",
        "await ctxsnap.adapters.asyncio.run_in_executor(None, ctxsnap.wrap(fn), include=[var])",
        lambda: _in_loop(_run_in_executor_selecting_for_a_wrapped_callable),
        TypeError,
        "got include=/exclude= for a callable that is already wrapped",
        "select when wrapping, as in ctxsnap.wrap(fn, include=...)",
    ),
]


def _flask_app(**config: object) -> flask.Flask:
    app = flask.Flask("bad_input")
    app.config.update(config)
    return app


def _flask_extension(**config: object) -> None:
    ctxsnap_flask.CtxSnap(_flask_app(**config))


def _flask_config_changed_after_init() -> None:
    app = _flask_app()
    ctxsnap_flask.CtxSnap(app)
    app.config["CTXSNAP_G"] = "deep"
    with app.test_request_context("/"):
        ctxsnap.capture()


def _flask_decorator_outside_a_request() -> None:
    ctxsnap_flask.copy_current_request_context(_fn)


def _flask_decorator_non_callable() -> None:
    with _flask_app().test_request_context("/"):
        ctxsnap_flask.copy_current_request_context(42)  # type: ignore[call-overload]


FLASK_CASES = [
    Case(
        "flask-extension-not-an-app",
        "CtxSnap(42)",
        lambda: ctxsnap_flask.CtxSnap(42),  # type: ignore[arg-type]
        TypeError,
        "got int",
        "Pass the app object",
    ),
    Case(
        "flask-config-g",
        'app.config["CTXSNAP_G"] = "deep"; CtxSnap(app)',
        lambda: _flask_extension(CTXSNAP_G="deep"),
        ValueError,
        "Unknown g policy 'deep'",
        "must be 'copy' (the default) or 'share'",
    ),
    Case(
        "flask-config-teardown",
        'app.config["CTXSNAP_TEARDOWN"] = "yes"; CtxSnap(app)',
        lambda: _flask_extension(CTXSNAP_TEARDOWN="yes"),
        TypeError,
        "got 'yes' (str)",
        "must be True or False",
    ),
    Case(
        "flask-config-share-with-teardown",
        'CTXSNAP_G = "share" with CTXSNAP_TEARDOWN = True',
        lambda: _flask_extension(CTXSNAP_G="share", CTXSNAP_TEARDOWN=True),
        ValueError,
        "cannot be combined with teardown mode",
        "Use g='copy' with teardown",
    ),
    Case(
        "flask-config-changed-after-init",
        'app.config["CTXSNAP_G"] = "deep" after CtxSnap(app), then capture()',
        _flask_config_changed_after_init,
        ctxsnap.ProviderError,
        "'flask.app' failed during capture",
        "must be 'copy' (the default) or 'share'",
    ),
    Case(
        "flask-capture-g",
        'ctxsnap.adapters.flask.capture(g="deep")',
        lambda: ctxsnap_flask.capture(g="deep"),  # type: ignore[arg-type]
        ValueError,
        "Unknown g policy 'deep'",
        "must be 'copy' (the default) or 'share'",
    ),
    Case(
        "flask-capture-teardown",
        "ctxsnap.adapters.flask.capture(teardown=1)",
        lambda: ctxsnap_flask.capture(teardown=1),  # type: ignore[arg-type]
        TypeError,
        "got 1 (int)",
        "must be True or False",
    ),
    Case(
        "flask-decorator-outside-request",
        "copy_current_request_context(fn) outside a request",
        _flask_decorator_outside_a_request,
        RuntimeError,
        "was called outside a request context",
        "use ctxsnap.wrap(fn)",
    ),
    Case(
        "flask-decorator-non-callable",
        "copy_current_request_context(42) in a request",
        _flask_decorator_non_callable,
        TypeError,
        "expects a callable, got int",
        "Pass the function itself",
    ),
    Case(
        "flask-misspelt-provider",
        'capture(include=["flask.requets"])',
        lambda: ctxsnap.capture(include=["flask.requets"]),
        ValueError,
        "unknown provider 'flask.requets'",
        "'flask.request'",
    ),
]


def _anyio_run(fn: Callable[..., Any], *args: Any, backend: str = "asyncio", **kwargs: Any) -> object:
    async def main() -> object:
        return await ctxsnap_anyio.run_sync(fn, *args, **kwargs)

    return anyio.run(main, backend=backend)


ANYIO_CASES = [
    Case(
        "anyio-run-sync-no-loop",
        "ctxsnap.adapters.anyio.run_sync(fn) driven without a loop",
        lambda: _outside_loop(ctxsnap_anyio.run_sync, _fn),
        RuntimeError,
        "needs a running event loop (asyncio or trio)",
        "Await it inside 'async def'",
    ),
    Case(
        "anyio-run-sync-non-callable-asyncio",
        "await run_sync(42) on asyncio",
        lambda: _anyio_run(42),  # type: ignore[arg-type]
        TypeError,
        "expects a callable, got int",
        "Pass the function itself",
    ),
    Case(
        "anyio-run-sync-non-callable-trio",
        "await run_sync(42) on trio",
        lambda: _anyio_run(42, backend="trio"),  # type: ignore[arg-type]
        TypeError,
        "expects a callable, got int",
        "Pass the function itself",
    ),
    Case(
        "anyio-run-sync-async-function",
        "await run_sync(async_fn)",
        lambda: _anyio_run(_async_fn),
        TypeError,
        "got the async",
        "Await async code directly",
    ),
    Case(
        "anyio-run-sync-limiter",
        "await run_sync(fn, limiter=3)",
        lambda: _anyio_run(_fn, limiter=3),
        TypeError,
        "limiter",
        "anyio.CapacityLimiter",
    ),
    Case(
        "anyio-run-sync-selection-for-wrapped",
        "await run_sync(ctxsnap.wrap(fn), exclude=[var])",
        lambda: _anyio_run(ctxsnap.wrap(_fn), exclude=[some_var]),
        TypeError,
        "run_sync() got include=/exclude= for a callable",
        "pass the plain function",
    ),
]


def _quart_extension(**config: object) -> None:
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    app = quart.Quart("bad_input")
    app.config.update(config)
    ctxsnap_quart.CtxSnap(app)


def _quart_to_thread(fn: object, *, under: str = "asyncio") -> object:
    from ctxsnap.adapters import quart as ctxsnap_quart

    if under == "none":
        return _outside_loop(ctxsnap_quart.to_thread, fn)
    if under == "trio":
        import trio

        return trio.run(ctxsnap_quart.to_thread, fn)  # type: ignore[arg-type]
    return _in_loop(ctxsnap_quart.to_thread, fn)


def _quart_capture(**policy: object) -> object:
    from ctxsnap.adapters import quart as ctxsnap_quart

    return ctxsnap_quart.capture(**policy)  # type: ignore[arg-type]


def _flask_extension_on_a_quart_app() -> None:
    import quart

    ctxsnap_flask.CtxSnap(quart.Quart("bad_input"))  # type: ignore[arg-type]


def _quart_extension_on_a_flask_app() -> None:
    from ctxsnap.adapters import quart as ctxsnap_quart

    ctxsnap_quart.CtxSnap(_flask_app())  # type: ignore[arg-type]


QUART_CASES = [
    Case(
        "quart-to-thread-no-loop",
        "ctxsnap.adapters.quart.to_thread(fn) driven without a loop",
        lambda: _quart_to_thread(_fn, under="none"),
        RuntimeError,
        "needs a running asyncio event loop",
        "Await it inside an async view or handler",
    ),
    Case(
        "quart-to-thread-under-trio",
        "await ctxsnap.adapters.quart.to_thread(fn) under trio",
        lambda: _quart_to_thread(_fn, under="trio"),
        RuntimeError,
        "needs a running asyncio event loop",
        "use ctxsnap.adapters.anyio.run_sync",
    ),
    Case(
        "quart-to-thread-non-callable",
        "await ctxsnap.adapters.quart.to_thread(42)",
        lambda: _quart_to_thread(42),
        TypeError,
        "expects a callable, got int",
        "Pass the function itself",
    ),
    Case(
        "quart-to-thread-async-function",
        "await ctxsnap.adapters.quart.to_thread(async_fn)",
        lambda: _quart_to_thread(_async_fn),
        TypeError,
        "got the async",
        "Await async code directly",
    ),
    Case(
        "quart-extension-on-flask-app",
        "ctxsnap.adapters.quart.CtxSnap(flask_app)",
        _quart_extension_on_a_flask_app,
        TypeError,
        "takes a quart.Quart application, got Flask",
        "use ctxsnap.adapters.flask.CtxSnap",
    ),
    Case(
        "flask-extension-on-quart-app",
        "ctxsnap.adapters.flask.CtxSnap(quart_app)",
        _flask_extension_on_a_quart_app,
        TypeError,
        "takes a flask.Flask application, got Quart",
        "use ctxsnap.adapters.quart.CtxSnap",
    ),
    Case(
        "quart-config-g",
        'app.config["CTXSNAP_G"] = "deep"; CtxSnap(app)',
        lambda: _quart_extension(CTXSNAP_G="deep"),
        ValueError,
        "Unknown g policy 'deep'",
        "must be 'copy'",
    ),
    Case(
        "quart-config-teardown",
        'app.config["CTXSNAP_TEARDOWN"] = "yes"; CtxSnap(app)',
        lambda: _quart_extension(CTXSNAP_TEARDOWN="yes"),
        TypeError,
        "got 'yes' (str)",
        "must be True or False",
    ),
    Case(
        "quart-capture-share-with-teardown",
        'ctxsnap.adapters.quart.capture(g="share", teardown=True)',
        lambda: _quart_capture(g="share", teardown=True),
        ValueError,
        "cannot be combined with teardown mode",
        "Use g='copy' with teardown",
    ),
]

ALL_CASES = CORE_CASES + FLASK_CASES + ANYIO_CASES + QUART_CASES


@pytest.mark.parametrize("case", CORE_CASES, ids=lambda c: c.id)
def test_core_error_names_the_problem_and_the_fix(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", FLASK_CASES, ids=lambda c: c.id)
def test_flask_error_names_the_problem_and_the_fix(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", ANYIO_CASES, ids=lambda c: c.id)
def test_anyio_error_names_the_problem_and_the_fix(case: Case) -> None:
    check(case)


@pytest.mark.quart
@pytest.mark.parametrize("case", QUART_CASES, ids=lambda c: c.id)
def test_quart_error_names_the_problem_and_the_fix(case: Case) -> None:
    check(case)


def check(case: Case) -> None:
    with pytest.raises(case.raises) as info:
        case.call()
    message = str(info.value)
    assert case.problem in message, f"the message does not say what was wrong: {message!r}"
    assert case.fix in message, f"the message does not say what to do: {message!r}"
    # A refused registration leaves the registry as it was.
    assert not any(p.name.startswith("test.bad-input") for p in ctxsnap.providers())


def table_row(case: Case) -> str:
    """The row of the docs' error table for ``case``."""
    return f'| `{case.id}` | `{case.shows}` | `{case.raises.__name__}` | "{case.problem}" ... "{case.fix}" |'


def test_docs_table_lists_every_case() -> None:
    rows = [line for line in DOCS.read_text().splitlines() if re.match(r"\| `[a-z0-9-]+` \|", line)]
    expected = [table_row(case) for case in ALL_CASES]
    assert rows == expected, (
        "the error table in docs/reliability.md is out of step with the cases; regenerate its rows with "
        "cd tests && ../.venvs/flask-3.1-quart-0.22/bin/python -c "
        "'from reliability.test_bad_input import print_table; print_table()'"
    )


def print_table() -> None:
    print("| case | call | raises | the message says |")
    print("| --- | --- | --- | --- |")
    for case in ALL_CASES:
        print(table_row(case))
