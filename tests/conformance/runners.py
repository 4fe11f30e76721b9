"""The adapters under test, the framework contexts they run from, and the driver that plays a scenario.

A conformance test is written once, as a *scenario*: a generator that plays the parent (the view, the handler)
and yields what it waits for::

    def scenario(p):
        VAR.set("x")
        handle = yield p.start(read_var)        # hand work to the adapter; the capture has happened on return
        assert (yield p.result(handle)) == "x"  # wait for the child's result (its exception is raised here)

A *runner* knows one adapter: how to hand a sync callable to it from the current context, and how to run a
plain, unwrapped probe on the same worker afterwards. A *host* provides the framework (Flask or Quart), builds
the app and holds the parent inside a request, websocket or app context, or none. The driver plays the scenario
in the runner's world: directly for the sync adapters, inside ``asyncio.run`` or ``trio.run`` for the async
ones, so the parent of an async adapter really is a coroutine on an event loop.

Adding an adapter to the matrix is one entry in ``catalog.ENTRIES`` and one runner class here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import io
import sys
import threading
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import flask

import ctxsnap
from ctxsnap.adapters import anyio as ctxsnap_anyio
from ctxsnap.adapters import asyncio as ctxsnap_asyncio
from tests.support import TIMEOUT, Lifecycle

from .catalog import ENTRIES, Entry

UPLOAD = b"the parent's uploaded file"


# -- what a scenario yields -----------------------------------------------------------------------------------


@dataclass
class Start:
    fn: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass
class StartMany:
    fn: Callable[[int], Any]
    count: int


@dataclass
class Result:
    handle: Any


@dataclass
class WaitFor:
    event: threading.Event


@dataclass
class Probe:
    fn: Callable[[], Any]


#: Yielded once: the parent's request (or app context) ends here and the scenario goes on outside it.
END_OF_REQUEST = object()


def _g_names(g: Any, has_app_context: Callable[[], bool]) -> list[str] | None:
    return sorted(vars(g._get_current_object())) if has_app_context() else None


def probe_state() -> tuple[int, dict[contextvars.ContextVar[Any], Any], dict[str, Any]]:
    """What the calling worker holds: its thread, every ContextVar it sees, which framework contexts, their ``g``.

    The attribute names of the ``g`` it can see count too: anyio runs the probe in a copy of its caller's
    context, where the parent's ``g`` is visible, and a run that wrote into that ``g`` instead of its own
    leaves the write for every next task on the worker, with every ContextVar unchanged.
    """
    frameworks: dict[str, Any] = {
        "flask.app": flask.has_app_context(),
        "flask.request": flask.has_request_context(),
        "flask.g": _g_names(flask.g, flask.has_app_context),
    }
    if "quart" in sys.modules:
        import quart

        frameworks["quart.app"] = quart.has_app_context()
        frameworks["quart.request"] = quart.has_request_context()
        frameworks["quart.websocket"] = quart.has_websocket_context()
        frameworks["quart.g"] = _g_names(quart.g, quart.has_app_context)
    return threading.get_ident(), dict(contextvars.copy_context()), frameworks


# -- the framework side -----------------------------------------------------------------------------------------


@dataclass
class Framework:
    """The framework's public names, so one scenario reads ``p.fw.g`` under Flask and under Quart."""

    name: str
    g: Any
    request: Any
    session: Any
    current_app: Any
    url_for: Callable[..., str]
    has_app_context: Callable[[], bool]
    has_request_context: Callable[[], bool]
    websocket: Any = None
    has_websocket_context: Callable[[], bool] = lambda: False
    #: Whether the parent's request holds an uploaded file the scenario can check is still open afterwards.
    uploads: bool = False


def _flask_app(lifecycle: Lifecycle, policy: dict[str, Any] | None) -> flask.Flask:
    app = flask.Flask("conformance")
    app.config["SECRET_KEY"] = "conformance tests only"
    app.testing = True

    @app.route("/items/<int:item_id>", methods=["GET", "POST"])
    def item(item_id: int) -> str:
        return str(item_id)

    @app.teardown_request
    def record_teardown_request(exc: BaseException | None) -> None:
        lifecycle.record("teardown_request")

    @app.teardown_appcontext
    def record_teardown_appcontext(exc: BaseException | None) -> None:
        lifecycle.record("teardown_appcontext")

    if policy is not None:
        from ctxsnap.adapters import flask as ctxsnap_flask

        app.config.update(policy)
        ctxsnap_flask.CtxSnap(app)
    return app


def _quart_app(lifecycle: Lifecycle, policy: dict[str, Any] | None) -> Any:
    import quart

    app = quart.Quart("conformance")
    app.config["SECRET_KEY"] = "conformance tests only"
    app.testing = True

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return str(item_id)

    # Async callbacks: Quart would run sync ones in its executor, and the test needs to see the thread that
    # actually ran the callback's own code (the loop's, for the parent's teardown).
    @app.teardown_request
    async def record_teardown_request(exc: BaseException | None) -> None:
        lifecycle.record("teardown_request")

    @app.teardown_websocket
    async def record_teardown_websocket(exc: BaseException | None) -> None:
        lifecycle.record("teardown_websocket")

    @app.teardown_appcontext
    async def record_teardown_appcontext(exc: BaseException | None) -> None:
        lifecycle.record("teardown_appcontext")

    if policy is not None:
        from ctxsnap.adapters import quart as ctxsnap_quart

        app.config.update(policy)
        ctxsnap_quart.CtxSnap(app)
    return app


def flask_framework() -> Framework:
    return Framework(
        name="flask",
        g=flask.g,
        request=flask.request,
        session=flask.session,
        current_app=flask.current_app,
        url_for=flask.url_for,
        has_app_context=flask.has_app_context,
        has_request_context=flask.has_request_context,
        uploads=True,
    )


def quart_framework() -> Framework:
    import quart

    return Framework(
        name="quart",
        g=quart.g,
        request=quart.request,
        session=quart.session,
        current_app=quart.current_app,
        url_for=quart.url_for,
        has_app_context=quart.has_app_context,
        has_request_context=quart.has_request_context,
        websocket=quart.websocket,
        has_websocket_context=quart.has_websocket_context,
    )


# -- handles the sync adapters give back --------------------------------------------------------------------------


class FutureHandle:
    def __init__(self, future: concurrent.futures.Future[Any], exposed: tuple[Any, ...] = ()) -> None:
        self.future = future
        self.exposed = (future, *exposed)

    def result(self) -> Any:
        return self.future.result(timeout=TIMEOUT)


class ManyHandle:
    def __init__(self, results: Callable[[], list[Any]], exposed: tuple[Any, ...] = ()) -> None:
        self._results = results
        self.exposed = exposed

    def result(self) -> list[Any]:
        return self._results()


class ThreadHandle:
    def __init__(self, thread: threading.Thread, box: _Box) -> None:
        self.thread = thread
        self.box = box
        self.exposed = (thread,)

    def result(self) -> Any:
        self.thread.join(TIMEOUT)
        if self.thread.is_alive():
            raise AssertionError(f"{self.thread.name} did not finish within {TIMEOUT} s")
        if self.box.error is not None:
            raise self.box.error
        return self.box.value


class _Box:
    """A ``ctxsnap.Thread`` target: keeps the return value; an exception goes on to ``threading.excepthook``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None

    def __call__(self, *args: Any) -> None:
        self.value = self.fn(*args)


# -- runners ----------------------------------------------------------------------------------------------------


class Runner:
    """One adapter: sync runners define ``start``/``start_many``/``probe``, async ones ``call``/``call_probe``."""

    kind = "sync"  # or "asyncio" / "trio": the world the parent lives in
    #: Whether a later task can land on the same worker (a pool): the worker-hygiene rows apply.
    has_worker = True
    #: Whether it works outside a request context (Flask's drop-in, like Flask's own, does not).
    needs_request = False
    #: Whether it follows the app's CTXSNAP_G/CTXSNAP_TEARDOWN policy (the drop-in copies g, never tears down).
    follows_policy = True

    def __init__(self, entry: Entry) -> None:
        self.entry = entry

    def open(self, workers: int) -> None:
        self.workers = workers

    def close(self) -> None:
        pass

    # sync runners
    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    def start_many(self, fn: Callable[[int], Any], count: int) -> Any:
        handles = [self.start(fn, (i,)) for i in range(count)]
        return ManyHandle(lambda: [h.result() for h in handles])

    def probe(self, fn: Callable[[], Any]) -> Any:
        raise NotImplementedError

    # async runners
    async def setup(self) -> None:
        pass

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        raise NotImplementedError

    def call_probe(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        raise NotImplementedError


class PoolRunner(Runner):
    def open(self, workers: int) -> None:
        super().open(workers)
        prefix = f"conformance-{self.entry.id}"
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=prefix)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def probe(self, fn: Callable[[], Any]) -> Any:
        return FutureHandle(self.pool.submit(fn))


class SnapshotRunRunner(PoolRunner):
    """``snap = ctxsnap.capture()`` in the parent, ``snap.run(fn)`` in a pool thread."""

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        snapshot = ctxsnap.capture()
        return FutureHandle(self.pool.submit(snapshot.run, fn, *args), (snapshot,))

    def start_many(self, fn: Callable[[int], Any], count: int) -> Any:
        snapshot = ctxsnap.capture()
        futures = [self.pool.submit(snapshot.run, fn, i) for i in range(count)]
        return ManyHandle(lambda: [f.result(timeout=TIMEOUT) for f in futures], (snapshot,))


class ThreadRunner(Runner):
    """``ctxsnap.Thread(target=fn).start()``: a new thread per run, so there is no next task on it."""

    has_worker = False

    def open(self, workers: int) -> None:
        super().open(workers)
        self._boxes: dict[threading.Thread, _Box] = {}
        self._previous_hook = threading.excepthook
        threading.excepthook = self._excepthook

    def close(self) -> None:
        threading.excepthook = self._previous_hook

    def _excepthook(self, args: Any) -> None:
        box = self._boxes.get(args.thread)
        if box is None:
            self._previous_hook(args)
        else:
            box.error = args.exc_value

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        box = _Box(fn)
        thread = ctxsnap.Thread(target=box, args=args, daemon=True)
        self._boxes[thread] = box
        thread.start()
        return ThreadHandle(thread, box)


class ContextExecutorRunner(PoolRunner):
    """``ctxsnap.ContextExecutor(ThreadPoolExecutor(...))``; many runs of one capture through ``map``."""

    def open(self, workers: int) -> None:
        super().open(workers)
        self.executor = ctxsnap.ContextExecutor(self.pool)

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return FutureHandle(self.executor.submit(fn, *args))

    def start_many(self, fn: Callable[[int], Any], count: int) -> Any:
        results = self.executor.map(fn, range(count), timeout=TIMEOUT)
        return ManyHandle(lambda: list(results))


class ThreadPoolRunner(Runner):
    """``ctxsnap.ThreadPoolExecutor``; the probe goes through the plain base class's ``submit``."""

    def open(self, workers: int) -> None:
        super().open(workers)
        self.pool = ctxsnap.ThreadPoolExecutor(workers, thread_name_prefix="conformance-thread-pool")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return FutureHandle(self.pool.submit(fn, *args))

    def start_many(self, fn: Callable[[int], Any], count: int) -> Any:
        results = self.pool.map(fn, range(count), timeout=TIMEOUT)
        return ManyHandle(lambda: list(results))

    def probe(self, fn: Callable[[], Any]) -> Any:
        return FutureHandle(concurrent.futures.ThreadPoolExecutor.submit(self.pool, fn))


class FlaskDropInRunner(PoolRunner):
    """``ctxsnap_flask.copy_current_request_context(fn)`` handed to a plain pool, as Flask's docs use it."""

    needs_request = True
    follows_policy = False

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        from ctxsnap.adapters import flask as ctxsnap_flask

        wrapped = ctxsnap_flask.copy_current_request_context(fn)
        return FutureHandle(self.pool.submit(wrapped, *args), (wrapped,))

    def start_many(self, fn: Callable[[int], Any], count: int) -> Any:
        from ctxsnap.adapters import flask as ctxsnap_flask

        # One decorated wrapper run by several workers at once: what fails with Flask's (pallets/flask#5252).
        wrapped = ctxsnap_flask.copy_current_request_context(fn)
        futures = [self.pool.submit(wrapped, i) for i in range(count)]
        return ManyHandle(lambda: [f.result(timeout=TIMEOUT) for f in futures], (wrapped,))


class AsyncioToThreadRunner(Runner):
    """``await ctxsnap.adapters.asyncio.to_thread(fn)``, on a default executor of known size."""

    kind = "asyncio"

    async def setup(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="conformance-default")
        asyncio.get_running_loop().set_default_executor(self.pool)

    def close(self) -> None:
        if hasattr(self, "pool"):
            self.pool.shutdown(wait=True)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        return ctxsnap_asyncio.to_thread(fn, *args)

    def call_probe(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(None, fn)


class QuartToThreadRunner(AsyncioToThreadRunner):
    """``await ctxsnap.adapters.quart.to_thread(fn)``."""

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        from ctxsnap.adapters import quart as ctxsnap_quart

        return ctxsnap_quart.to_thread(fn, *args)


class AsyncioRunInExecutorRunner(Runner):
    """``await ctxsnap.adapters.asyncio.run_in_executor(pool, fn)``."""

    kind = "asyncio"

    def open(self, workers: int) -> None:
        super().open(workers)
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="conformance-executor")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        return ctxsnap_asyncio.run_in_executor(self.pool, fn, *args)

    def call_probe(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(self.pool, fn)


class AnyioRunner(Runner):
    """``await ctxsnap.adapters.anyio.run_sync(fn, limiter=...)`` on asyncio or trio.

    anyio runs every call, the probe included, in a copy of the caller's context, so the probe cannot see the
    worker thread's own ContextVars; what it shows is what any next task on that worker would see, the caller's
    ``g`` included. The hygiene rows also check state a provider keeps in the thread itself, which no context
    copy hides (``test_semantics._Marker``).
    """

    def __init__(self, entry: Entry, backend: str) -> None:
        super().__init__(entry)
        self.kind = backend

    async def setup(self) -> None:
        import anyio

        self.limiter = anyio.CapacityLimiter(self.workers)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        return ctxsnap_anyio.run_sync(fn, *args, limiter=self.limiter)

    def call_probe(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        import anyio.to_thread

        return anyio.to_thread.run_sync(fn, limiter=self.limiter)


# -- the standard hand-offs while ctxsnap.instrument() is on ------------------------------------------------------


class Instrumented(Runner):
    """``ctxsnap.instrument()`` for the play; every probe runs inside ``ctxsnap.detached()``, that is plain."""

    def open(self, workers: int) -> None:
        super().open(workers)
        ctxsnap.instrument()

    def close(self) -> None:
        try:
            super().close()
        finally:
            ctxsnap.uninstrument()


class InstrumentedThreadRunner(Instrumented, ThreadRunner):
    """``threading.Thread(target=fn).start()``."""

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        box = _Box(fn)
        thread = threading.Thread(target=box, args=args, daemon=True)
        self._boxes[thread] = box
        thread.start()
        return ThreadHandle(thread, box)


class InstrumentedSubmitRunner(Instrumented, PoolRunner):
    """``concurrent.futures.ThreadPoolExecutor(...).submit(fn)``."""

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return FutureHandle(self.pool.submit(fn, *args))

    def probe(self, fn: Callable[[], Any]) -> Any:
        with ctxsnap.detached():
            return FutureHandle(self.pool.submit(fn))


def _call(fn: Callable[[], Any]) -> Any:
    return fn()


class InstrumentedMapRunner(InstrumentedSubmitRunner):
    """``concurrent.futures.ThreadPoolExecutor(...).map(fn, ...)``; many runs of one capture in ``start_many``."""

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        # map() calls fn(*items) for each tuple of items; a call without arguments maps _call over [fn].
        results = (
            self.pool.map(fn, *([arg] for arg in args), timeout=TIMEOUT)
            if args
            else self.pool.map(_call, [fn], timeout=TIMEOUT)
        )
        return ManyHandle(lambda: list(results)[0], (results,))

    def start_many(self, fn: Callable[[int], Any], count: int) -> Any:
        results = self.pool.map(fn, range(count), timeout=TIMEOUT)
        return ManyHandle(lambda: list(results), (results,))


async def _plain_default_executor(fn: Callable[[], Any]) -> Any:
    with ctxsnap.detached():
        return await asyncio.get_running_loop().run_in_executor(None, fn)


class InstrumentedToThreadRunner(Instrumented, AsyncioToThreadRunner):
    """``await asyncio.to_thread(fn)``."""

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        return asyncio.to_thread(fn, *args)

    def call_probe(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        return _plain_default_executor(fn)


class InstrumentedDefaultExecutorRunner(InstrumentedToThreadRunner):
    """``await loop.run_in_executor(None, fn)``: the loop's default executor."""

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(None, fn, *args)


class InstrumentedRunInExecutorRunner(Instrumented, AsyncioRunInExecutorRunner):
    """``await loop.run_in_executor(pool, fn)``."""

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def call_probe(self, fn: Callable[[], Any]) -> Any:
        with ctxsnap.detached():
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn)


class InstrumentedAnyioRunner(Instrumented, AnyioRunner):
    """``await anyio.to_thread.run_sync(fn, limiter=...)`` on asyncio or trio."""

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        import anyio.to_thread

        return anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    async def call_probe(self, fn: Callable[[], Any]) -> Any:
        import anyio.to_thread

        with ctxsnap.detached():
            return await anyio.to_thread.run_sync(fn, limiter=self.limiter)


class FromACoroutine(Runner):
    """A sync hand-off made from a coroutine, as a Quart view calls ``pool.submit`` or ``Thread.start``.

    The start happens in the coroutine (the capture with it); the wait for the result goes to the loop's default
    executor, plainly, so that the loop keeps running meanwhile.
    """

    kind = "asyncio"

    def __init__(self, entry: Entry, sync: Runner) -> None:
        super().__init__(entry)
        self.sync = sync
        self.has_worker = sync.has_worker

    def open(self, workers: int) -> None:
        super().open(workers)
        self.sync.open(workers)

    def close(self) -> None:
        self.sync.close()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        return _plain_default_executor(self.sync.start(fn, args).result)

    def call_probe(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        return _plain_default_executor(self.sync.probe(fn).result)


def _runner_classes() -> dict[str, Callable[[Entry], Runner]]:
    return {
        "snapshot.run@flask": SnapshotRunRunner,
        "thread@flask": ThreadRunner,
        "context-executor@flask": ContextExecutorRunner,
        "thread-pool@flask": ThreadPoolRunner,
        "flask-drop-in@flask": FlaskDropInRunner,
        "asyncio.to_thread@flask": AsyncioToThreadRunner,
        "asyncio.run_in_executor@flask": AsyncioRunInExecutorRunner,
        "anyio.run_sync-asyncio@flask": lambda entry: AnyioRunner(entry, "asyncio"),
        "anyio.run_sync-trio@flask": lambda entry: AnyioRunner(entry, "trio"),
        "quart.to_thread@quart": QuartToThreadRunner,
        "asyncio.to_thread@quart": AsyncioToThreadRunner,
        "asyncio.run_in_executor@quart": AsyncioRunInExecutorRunner,
        "anyio.run_sync-asyncio@quart": lambda entry: AnyioRunner(entry, "asyncio"),
        "instrumented.thread@flask": InstrumentedThreadRunner,
        "instrumented.submit@flask": InstrumentedSubmitRunner,
        "instrumented.map@flask": InstrumentedMapRunner,
        "instrumented.asyncio.to_thread@flask": InstrumentedToThreadRunner,
        "instrumented.run_in_executor@flask": InstrumentedRunInExecutorRunner,
        "instrumented.run_in_executor-default@flask": InstrumentedDefaultExecutorRunner,
        "instrumented.anyio.run_sync-asyncio@flask": lambda entry: InstrumentedAnyioRunner(entry, "asyncio"),
        "instrumented.anyio.run_sync-trio@flask": lambda entry: InstrumentedAnyioRunner(entry, "trio"),
        "instrumented.thread@quart": lambda entry: FromACoroutine(entry, InstrumentedThreadRunner(entry)),
        "instrumented.submit@quart": lambda entry: FromACoroutine(entry, InstrumentedSubmitRunner(entry)),
        "instrumented.map@quart": lambda entry: FromACoroutine(entry, InstrumentedMapRunner(entry)),
        "instrumented.asyncio.to_thread@quart": InstrumentedToThreadRunner,
        "instrumented.run_in_executor@quart": InstrumentedRunInExecutorRunner,
        "instrumented.run_in_executor-default@quart": InstrumentedDefaultExecutorRunner,
        "instrumented.anyio.run_sync-asyncio@quart": lambda entry: InstrumentedAnyioRunner(entry, "asyncio"),
    }


RUNNERS: dict[str, Runner] = {entry.id: _runner_classes()[entry.id](entry) for entry in ENTRIES}


# -- the parent, as a scenario sees it ----------------------------------------------------------------------------


@dataclass
class Parent:
    """What a scenario gets: the framework's names, the app, its lifecycle record, and the operations to yield."""

    runner: Runner
    fw: Framework
    app: Any
    lifecycle: Lifecycle
    where: str
    notes: dict[str, Any] = field(default_factory=dict)

    end_of_request = END_OF_REQUEST

    def start(self, fn: Callable[..., Any], *args: Any) -> Start:
        return Start(fn, args)

    def start_many(self, fn: Callable[[int], Any], count: int) -> StartMany:
        return StartMany(fn, count)

    def result(self, handle: Any) -> Result:
        return Result(handle)

    def wait_for(self, event: threading.Event) -> WaitFor:
        return WaitFor(event)

    def probe(self, fn: Callable[[], Any] | None = None) -> Probe:
        """Run ``fn`` (default: :func:`probe_state`) unwrapped on the worker the adapter uses."""
        return Probe(probe_state if fn is None else fn)

    def exposed(self, handle: Any) -> tuple[Any, ...]:
        """The objects the adapter handed to the parent for this run (futures, threads, tasks, wrappers)."""
        return tuple(getattr(handle, "exposed", (handle,)))


Scenario = Callable[[Parent], Generator[Any, Any, None]]


class _Play:
    """Steps a scenario generator: send each operation's result back, or throw its exception in."""

    def __init__(self, generator: Generator[Any, Any, None]) -> None:
        self.generator = generator
        self._value: Any = None
        self._error: BaseException | None = None
        self.finished = False

    def next(self) -> Any:
        try:
            if self._error is not None:
                error, self._error = self._error, None
                return self.generator.throw(error)
            return self.generator.send(self._value)
        except StopIteration:
            self.finished = True
            return None

    def answer(self, value: Any) -> None:
        self._value = value

    def fail(self, error: BaseException) -> None:
        self._error = error


def _play_sync(play: _Play, runner: Runner) -> None:
    """Play until the scenario ends or yields END_OF_REQUEST."""
    while True:
        op = play.next()
        if play.finished or op is END_OF_REQUEST:
            return
        try:
            if isinstance(op, Start):
                play.answer(runner.start(op.fn, op.args))
            elif isinstance(op, StartMany):
                play.answer(runner.start_many(op.fn, op.count))
            elif isinstance(op, Result):
                play.answer(op.handle.result())
            elif isinstance(op, WaitFor):
                if not op.event.wait(TIMEOUT):
                    raise AssertionError(f"the event a child should have set was not set within {TIMEOUT} s")
                play.answer(None)
            elif isinstance(op, Probe):
                play.answer(runner.probe(op.fn).result())
            else:
                raise TypeError(f"a scenario yielded {op!r}; yield p.start(...), p.result(...), p.wait_for(...)")
        except Exception as exc:
            play.fail(exc)


class _AsyncHandle:
    """A child started on trio (or asyncio): its outcome once done, and what the adapter handed back."""

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.exposed: tuple[Any, ...] = (awaitable,)
        self.awaitable = awaitable
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def finished(self) -> bool:
        """Whether the child has run to its end: a condition for ``_until``."""
        return self.done

    async def run(self) -> None:
        try:
            self.value = await self.awaitable
        except Exception as exc:
            self.error = exc
        finally:
            self.done = True

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


async def _play_async(play: _Play, runner: Runner, spawn: Callable[[_AsyncHandle], Awaitable[None]]) -> None:
    sleep = _sleeper(runner.kind)
    while True:
        op = play.next()
        if play.finished or op is END_OF_REQUEST:
            return
        try:
            if isinstance(op, Start):
                handle = _AsyncHandle(runner.call(op.fn, op.args))
                await spawn(handle)
                play.answer(handle)
            elif isinstance(op, StartMany):
                handles = [_AsyncHandle(runner.call(op.fn, (i,))) for i in range(op.count)]
                for handle in handles:
                    await spawn(handle)
                play.answer(handles)
            elif isinstance(op, Result):
                targets: list[_AsyncHandle] = op.handle if isinstance(op.handle, list) else [op.handle]
                for target in targets:
                    await _until(target.finished, sleep, "a child to finish")
                outcomes = [target.outcome() for target in targets]
                play.answer(outcomes if isinstance(op.handle, list) else outcomes[0])
            elif isinstance(op, WaitFor):
                await _until(op.event.is_set, sleep, "an event a child should set")
                play.answer(None)
            elif isinstance(op, Probe):
                play.answer(await runner.call_probe(op.fn))
            else:
                raise TypeError(f"a scenario yielded {op!r}; yield p.start(...), p.result(...), p.wait_for(...)")
        except Exception as exc:
            play.fail(exc)


def _sleeper(kind: str) -> Callable[[float], Awaitable[None]]:
    if kind == "trio":
        import trio

        return trio.sleep
    return asyncio.sleep


async def _until(condition: Callable[[], bool], sleep: Callable[[float], Awaitable[None]], what: str) -> None:
    # Polling with a deadline: the condition is set from a worker thread, which cannot wake an event loop
    # portably across asyncio and trio; a short poll costs nothing here and never hangs.
    loops = int(TIMEOUT / 0.002)
    for _ in range(loops):
        if condition():
            return
        await sleep(0.002)
    raise AssertionError(f"timed out after {TIMEOUT} s waiting for {what}")


# -- hosts: holding the parent inside a framework's context -------------------------------------------------------


def _flask_context(app: flask.Flask, where: str) -> AbstractContextManager[Any]:
    if where == "request":
        return app.test_request_context(
            "/items/7?q=conformance",
            method="POST",
            headers={"X-Request-Id": "parent-request"},
            data={"upload": (io.BytesIO(UPLOAD), "upload.txt")},
        )
    if where == "app":
        return app.app_context()
    if where == "none":
        return nullcontext()
    raise ValueError(f"a Flask parent can be in a 'request', an 'app' context or 'none', not {where!r}")


def _quart_context(app: Any, where: str) -> AbstractAsyncContextManager[Any]:
    if where == "request":
        return app.test_request_context(  # type: ignore[no-any-return]
            "/items/7?q=conformance", method="GET", headers={"X-Request-Id": "parent-request"}
        )
    if where == "app":
        return app.app_context()  # type: ignore[no-any-return]
    if where == "none":
        return _null_async()
    raise ValueError(f"a Quart parent can be in a 'request', 'websocket', 'app' context or 'none', not {where!r}")


class _null_async:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def play(
    entry_id: str,
    scenario: Scenario,
    *,
    where: str = "request",
    workers: int = 4,
    policy: dict[str, Any] | None = None,
) -> Parent:
    """Play ``scenario`` with the runner ``entry_id`` from a parent in ``where``; return the parent for checks.

    The whole play runs in a fresh copy of the test's context, the way a server runs each request, so a value
    one test sets never decides whether the next one passes.
    """
    runner = RUNNERS[entry_id]
    lifecycle = Lifecycle()
    if runner.entry.host == "flask":
        app: Any = _flask_app(lifecycle, policy)
        fw = flask_framework()
    else:
        app = _quart_app(lifecycle, policy)
        fw = quart_framework()
    parent = Parent(runner, fw, app, lifecycle, where)
    runner.open(workers)
    try:
        contextvars.copy_context().run(_play_in_world, parent, scenario)
    finally:
        runner.close()
    return parent


def _play_in_world(parent: Parent, scenario: Scenario) -> None:
    runner = parent.runner
    play_ = _Play(scenario(parent))
    if runner.kind == "sync":
        with _flask_context(parent.app, parent.where):
            _play_sync(play_, runner)
        if not play_.finished:
            _play_sync(play_, runner)
    elif runner.kind == "asyncio":
        asyncio.run(_asyncio_main(parent, play_))
    elif runner.kind == "trio":
        import trio

        trio.run(_trio_main, parent, play_)
    else:
        raise ValueError(f"unknown runner kind {runner.kind!r}")
    if not play_.finished:
        raise AssertionError("the scenario did not finish (it yielded END_OF_REQUEST twice?)")


async def _asyncio_main(parent: Parent, play_: _Play) -> None:
    runner = parent.runner
    await runner.setup()
    tasks: list[asyncio.Task[None]] = []

    async def spawn(handle: _AsyncHandle) -> None:
        tasks.append(asyncio.ensure_future(handle.run()))
        # asyncio runs ready tasks in FIFO order: after one pass the new task has taken its first step, in which
        # every ctxsnap helper captures. The scenario goes on only once the capture has happened.
        await asyncio.sleep(0)

    try:
        if parent.fw.name == "quart" and parent.where == "websocket":
            await _quart_websocket(parent, play_, spawn)
        elif parent.fw.name == "quart":
            async with _quart_context(parent.app, parent.where):
                await _play_async(play_, runner, spawn)
        else:
            with _flask_context(parent.app, parent.where):
                await _play_async(play_, runner, spawn)
        if not play_.finished:
            await _play_async(play_, runner, spawn)
    finally:
        # A failed scenario may leave a child blocked on an event; never leave a task pending behind the loop.
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _trio_main(parent: Parent, play_: _Play) -> None:
    import trio
    import trio.testing

    runner = parent.runner
    await runner.setup()
    async with trio.open_nursery() as nursery:

        async def spawn(handle: _AsyncHandle) -> None:
            nursery.start_soon(handle.run)
            # trio schedules in no fixed order: wait until every task is blocked, that is, until the new one
            # has captured and is waiting for its thread.
            await trio.testing.wait_all_tasks_blocked()

        try:
            with _flask_context(parent.app, parent.where):
                await _play_async(play_, runner, spawn)
            if not play_.finished:
                await _play_async(play_, runner, spawn)
        finally:
            nursery.cancel_scope.cancel()


async def _quart_websocket(parent: Parent, play_: _Play, spawn: Callable[[_AsyncHandle], Awaitable[None]]) -> None:
    """Play inside a real websocket handler, reached through Quart's test client."""
    import quart

    app: quart.Quart = parent.app
    failure: list[BaseException] = []

    @app.websocket("/scenario")
    async def scenario_socket() -> None:
        await quart.websocket.accept()
        await quart.websocket.receive()
        try:
            await _play_async(play_, parent.runner, spawn)
        except BaseException as exc:  # reported to the test below, not swallowed by the server side
            failure.append(exc)
        await quart.websocket.send("done")

    async with app.test_client().websocket("/scenario", headers={"X-Request-Id": "parent-socket"}) as socket:
        await socket.send("go")
        assert await socket.receive() == "done"
    if failure:
        raise failure[0]


@contextmanager
def registered(*providers: ctxsnap.Provider) -> Iterator[None]:
    """Register providers for the duration of a test, and always take them out again."""
    for provider in providers:
        ctxsnap.register_provider(provider)
    try:
        yield
    finally:
        for provider in providers:
            ctxsnap.unregister_provider(provider.name)
