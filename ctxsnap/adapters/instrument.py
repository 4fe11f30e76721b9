"""``ctxsnap.instrument()``: opt-in, process-wide propagation through the standard thread hand-offs.

Code a user does not own calls ``threading.Thread``, ``ThreadPoolExecutor.submit``, ``asyncio.to_thread``,
``loop.run_in_executor`` and ``anyio.to_thread.run_sync`` directly, so routing work through ctxsnap's own entry
points is not always possible. ``instrument()`` patches those hand-offs so that each captures at the call and
runs the work inside the snapshot, with the same semantics table as ``ctxsnap.Thread``, ``ctxsnap.ThreadPool-
Executor`` and the asyncio/anyio helpers: it calls the same run path (:func:`~ctxsnap._snapshot.runner`,
``start_in_snapshot``, ``ctxsnap.adapters.anyio.in_snapshot``).

How the patches are kept honest (docs/instrument.md has the user-facing rules):

* Every wrapper reads one module-level settings object at each call. ``uninstrument()`` restores each attribute
  that still holds ctxsnap's wrapper; a wrapper that another instrumentation (OpenTelemetry, Sentry) wrapped on
  top of in the meantime cannot be taken out of its chain, so it stays there and does nothing. OpenTelemetry
  also copies ``Thread.start`` into ``Timer``'s class when it installs, so a wrapper can outlive its attribute.
* ``instrument()`` looks for its own wrapper along each attribute's ``__wrapped__`` chain before wrapping, so a
  second call, or a call after another tool wrapped on top, never stacks a second ctxsnap layer.
* Threads that pools start for themselves (``concurrent.futures`` workers, anyio's and trio's worker threads)
  start clean: capturing there would pin the request that happened to start the worker for the worker's life.
* Whatever already chose its context passes through untouched: a callable from ``Snapshot.wrap``, a snapshot's
  own ``run``, and a ``Context.run`` (Quart's ``run_sync`` hands ``copy_context().run`` to
  ``loop.run_in_executor``: its sync handlers share the request's ``g`` on purpose, and keep doing so).
* Input the standard library would accept and ctxsnap would refuse (an async callable, a non-callable) also
  passes through: instrumentation never adds an error to code it does not own.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.thread
import contextvars
import functools
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, Final

from .._capture import PlannedCapture, is_wrapped, runner
from .._checks import check_callable
from .._planning import Selection
from .._snapshot import Snapshot
from .threading import Thread, is_starting_in_snapshot, start_in_snapshot

if TYPE_CHECKING:
    import asyncio

__all__ = ["HANDOFFS", "detached", "instrument", "instrumentation", "instrumented", "uninstrument"]

#: The kinds of hand-off ``instrument()`` switches on and off, by keyword.
HANDOFFS: Final = ("threads", "executors", "asyncio", "anyio")

#: The app config key the Flask and Quart extensions read.
CONFIG_INSTRUMENT: Final = "CTXSNAP_INSTRUMENT"

#: Set by ``detached()``. A ContextVar rather than a thread-local: an async caller awaits inside the block, and
#: other tasks on the same loop thread must not see the flag meanwhile.
_DETACHED: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar("ctxsnap.detached", default=False)


@dataclass(frozen=True)
class _Settings:
    threads: bool
    executors: bool
    asyncio: bool
    anyio: bool
    include: Selection
    exclude: Selection
    capture: PlannedCapture

    def arguments(self) -> dict[str, Any]:
        return {kind: getattr(self, kind) for kind in (*HANDOFFS, "include", "exclude")}


#: What every wrapper reads at each call; None while nothing is instrumented. Replaced whole, never mutated, so
#: a wrapper reading it from another thread sees one consistent set of switches.
_settings: _Settings | None = None
_lock: Final = threading.RLock()


# -- what passes through ------------------------------------------------------------------------------------------

def _carries_context(fn: object) -> bool:
    """Whether ``fn`` already runs in a context someone chose: a ctxsnap wrapper, a snapshot's or a Context's run."""
    if is_wrapped(fn):
        return True
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, (Snapshot, contextvars.Context)):
        return True
    if isinstance(fn, functools.partial):
        return _carries_context(fn.func)
    return False


def _runs_in_snapshot(fn: object) -> bool:
    """Whether ctxsnap would run ``fn`` at all: a sync callable that carries no context of its own yet."""
    if _carries_context(fn):
        return False
    try:
        check_callable("instrument", fn)
    except TypeError:
        return False
    return True


def _is_pool_worker(thread: threading.Thread) -> bool:
    """Whether a pool starts ``thread`` for itself: it must start clean, whatever context the pool's caller has.

    Feature-detected, module by module, from what is loaded; each is tested in every cell of the matrix.
    """
    target = getattr(thread, "_target", None)
    if target is _FUTURES_WORKER:
        return True
    base_events = sys.modules.get("asyncio.base_events")
    loop_class = getattr(base_events, "BaseEventLoop", None)
    if getattr(target, "__func__", None) is getattr(loop_class, "_do_shutdown", _ABSENT):
        # The thread asyncio.run() starts to shut the default executor down: part of the pool. A provider
        # failing there would leave asyncio.run() waiting for that shutdown forever.
        return True
    anyio_backend = sys.modules.get("anyio._backends._asyncio")
    anyio_worker = getattr(anyio_backend, "WorkerThread", None)
    if isinstance(anyio_worker, type) and isinstance(thread, anyio_worker):
        return True
    trio_cache = sys.modules.get("trio._core._thread_cache")
    trio_worker = getattr(trio_cache, "WorkerThread", None)
    return isinstance(trio_worker, type) and isinstance(getattr(target, "__self__", None), trio_worker)


#: The function every ``concurrent.futures`` worker thread runs (the asyncio default executor's too).
_FUTURES_WORKER: Final = getattr(concurrent.futures.thread, "_worker", None)


# -- the wrappers -------------------------------------------------------------------------------------------------

def _wrap_thread_start(call: Callable[..., Any]) -> Callable[..., Any]:
    def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
        settings = _settings
        if (
            settings is None
            or not settings.threads
            or args
            or kwargs
            or self.ident is not None
            or isinstance(self, Thread)
            or is_starting_in_snapshot(self)
            or _DETACHED.get()
            or _is_pool_worker(self)
        ):
            return call(self, *args, **kwargs)
        start_in_snapshot(self, settings.capture(), functools.partial(call, self))
        return None

    return start


def _wrap_submit(call: Callable[..., Any]) -> Callable[..., Any]:
    def submit(self: concurrent.futures.Executor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        settings = _settings
        if settings is None or not settings.executors or _DETACHED.get() or not _runs_in_snapshot(fn):
            return call(self, fn, *args, **kwargs)
        # As ctxsnap.ThreadPoolExecutor.submit: the worker calls the snapshot's run with the task and its arguments.
        return call(self, runner(settings.capture()), fn, args, kwargs)

    return submit


def _wrap_map(call: Callable[..., Any]) -> Callable[..., Any]:
    def map(self: concurrent.futures.Executor, fn: Any, *iterables: Any, **kwargs: Any) -> Any:
        settings = _settings
        if settings is None or not settings.executors or _DETACHED.get() or not _runs_in_snapshot(fn):
            return call(self, fn, *iterables, **kwargs)
        # As ctxsnap.ThreadPoolExecutor.map: one capture for the call, a fresh copy per item; the per-item
        # submit() sees a wrapped callable and passes it through.
        return call(self, settings.capture().wrap(fn), *iterables, **kwargs)

    return map


def _wrap_run_in_executor(call: Callable[..., Any]) -> Callable[..., Any]:
    def run_in_executor(self: asyncio.AbstractEventLoop, executor: Any, func: Any, *args: Any) -> Any:
        settings = _settings
        if (
            settings is None
            or not settings.asyncio
            or _DETACHED.get()
            or not _runs_in_snapshot(func)
            or _in_another_process(executor)
        ):
            return call(self, executor, func, *args)
        # As ctxsnap.adapters.asyncio.run_in_executor: captured at this call, in the calling task.
        return call(self, executor, runner(settings.capture()), func, args, _NO_KWARGS)

    return run_in_executor


def _in_another_process(executor: object) -> bool:
    # A snapshot holds live objects of this process; a process pool keeps the standard library's behaviour.
    process = sys.modules.get("concurrent.futures.process")
    return process is not None and isinstance(executor, process.ProcessPoolExecutor)


_NO_KWARGS: Final[dict[str, Any]] = {}


def _wrap_to_thread(call: Callable[..., Any]) -> Callable[..., Any]:
    import asyncio

    async def to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        settings = _settings
        if settings is None or not settings.asyncio or _DETACHED.get() or not _runs_in_snapshot(func):
            return await call(func, *args, **kwargs)
        # As ctxsnap.adapters.asyncio.to_thread: the standard one would hand the worker one plain copy of the
        # caller's context, in which Flask's and Quart's app context (and so g) is the parent's own object.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, runner(settings.capture()), func, args, kwargs)

    return to_thread


def _wrap_anyio_run_sync(call: Callable[..., Any]) -> Callable[..., Any]:
    from . import anyio as ctxsnap_anyio

    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        settings = _settings
        if settings is None or not settings.anyio or _DETACHED.get() or not _runs_in_snapshot(func):
            return await call(func, *args, **kwargs)
        handed, handed_args = ctxsnap_anyio.in_snapshot(settings.capture(), func, args)
        # limiter, abandon_on_cancel (and anyio's deprecated cancellable) reach anyio exactly as given.
        return await call(handed, *handed_args, **kwargs)

    return run_sync


# -- the patch table ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    kind: str
    owner: type | ModuleType
    name: str
    label: str
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]]


def _targets(kinds: frozenset[str]) -> list[_Target]:
    targets: list[_Target] = []
    if "threads" in kinds:
        targets.append(_Target("threads", threading.Thread, "start", "threading.Thread.start", _wrap_thread_start))
        if "start" in vars(threading.Timer):
            # Timer inherits start(); OpenTelemetry's ThreadingInstrumentor copies the Thread.start it finds into
            # Timer's own class at its install time (and leaves it there after uninstrument), which would bypass
            # a Thread.start patched later.
            targets.append(_Target("threads", threading.Timer, "start", "threading.Timer.start",
                                   _wrap_thread_start))
    if "executors" in kinds:
        pool = concurrent.futures.ThreadPoolExecutor
        targets.append(_Target("executors", pool, "submit", "concurrent.futures.ThreadPoolExecutor.submit",
                               _wrap_submit))
        targets.append(_Target("executors", pool, "map", "concurrent.futures.ThreadPoolExecutor.map", _wrap_map))
    if "asyncio" in kinds:
        # Imported only here: "import ctxsnap" does not pay for asyncio.
        import asyncio
        import asyncio.base_events
        import asyncio.threads

        targets.append(_Target("asyncio", asyncio.base_events.BaseEventLoop, "run_in_executor",
                               "asyncio.BaseEventLoop.run_in_executor", _wrap_run_in_executor))
        # Both names: ``asyncio.to_thread`` is re-exported from ``asyncio.threads``.
        targets.append(_Target("asyncio", asyncio.threads, "to_thread", "asyncio.threads.to_thread",
                               _wrap_to_thread))
        targets.append(_Target("asyncio", asyncio, "to_thread", "asyncio.to_thread", _wrap_to_thread))
    if "anyio" in kinds and importlib.util.find_spec("anyio") is not None:
        # Imported here when installed, so that a later "import anyio" anywhere gets the patched module.
        import anyio.to_thread

        targets.append(_Target("anyio", anyio.to_thread, "run_sync", "anyio.to_thread.run_sync",
                               _wrap_anyio_run_sync))
    return targets


_ABSENT: Final = object()


@dataclass
class _Patch:
    """One attribute ctxsnap replaced: what was there before, and the wrapper it put there."""

    target: _Target
    original: Any  # _ABSENT when the class only inherited the attribute (ThreadPoolExecutor.map)
    wrapper: Any

    def on_top(self) -> bool:
        return vars(self.target.owner).get(self.target.name, _ABSENT) is self.wrapper

    def restore(self) -> None:
        owner, name = self.target.owner, self.target.name
        if self.original is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, self.original)


#: Every wrapper ctxsnap put in place and has not taken out yet, by target label. One that another tool wrapped
#: on top of stays here after uninstrument() (inert), so that a later call can take it out once it is on top.
_patches: dict[str, _Patch] = {}


def _ours_in_chain(value: object, target: _Target) -> bool:
    # Recognised by code object, never by an attribute: other tools' functools.wraps copies a wrapper's __dict__
    # onto their own wrapper, and a wrapt proxy forwards attribute reads to what it wraps.
    code = _wrapper_code(target.wrap)
    for _ in range(64):  # a cycle of __wrapped__ must not hang instrument()
        if value is None:
            return False
        if getattr(value, "__code__", None) is code:
            return True
        value = getattr(value, "__wrapped__", None)
    return False


@functools.cache
def _wrapper_code(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Any:
    return getattr(wrap(print), "__code__", None)


def _current(target: _Target) -> Any:
    return vars(target.owner).get(target.name, _ABSENT)


def _install(target: _Target) -> _Patch | None:
    current = _current(target)
    if current is not _ABSENT and _ours_in_chain(current, target):
        return None  # live already, possibly under another tool's wrapper: never a second layer
    inherited = getattr(target.owner, target.name)
    original = inherited if current is _ABSENT else current
    if isinstance(target.owner, type) and type(original) is not FunctionType:
        # A wrapt FunctionWrapper (OpenTelemetry's) must be bound to the instance, as attribute access would; it
        # passes isinstance(..., FunctionType), as a proxy reports the class of what it wraps.
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return original.__get__(self, type(self))(*args, **kwargs)
    else:
        call = original
    wrapper = target.wrap(call)
    functools.update_wrapper(wrapper, original)
    setattr(target.owner, target.name, wrapper)
    return _Patch(target, current, wrapper)


def _release(kinds: frozenset[str]) -> None:
    """Take out every wrapper of these kinds that is still on top; leave the others inert."""
    for label, patch in list(_patches.items()):
        if patch.target.kind not in kinds:
            continue
        if patch.on_top():
            patch.restore()
            del _patches[label]
        elif not _ours_in_chain(_current(patch.target), patch.target):
            del _patches[label]  # replaced wholesale by someone: nothing left to restore or to reactivate


# -- the public face ----------------------------------------------------------------------------------------------

def instrument(
    *,
    threads: bool = True,
    executors: bool = True,
    asyncio: bool = True,
    anyio: bool = True,
    include: Selection = None,
    exclude: Selection = None,
) -> None:
    """Make the standard thread hand-offs capture at each call and run the work inside the snapshot.

    :param threads: ``threading.Thread.start`` (``Timer`` and every subclass included).
    :param executors: ``concurrent.futures.ThreadPoolExecutor.submit`` and ``map``, for every subclass.
    :param asyncio: ``asyncio.to_thread`` and ``loop.run_in_executor`` (the default executor included).
    :param anyio: ``anyio.to_thread.run_sync`` on asyncio and trio, when anyio is installed.
    :param include: as for :func:`ctxsnap.capture`, applied to every capture the hand-offs make.
    :param exclude: as for :func:`ctxsnap.capture`.
    :raises TypeError: a switch is not a bool, or a selection has the wrong type.
    :raises ValueError: every switch is off, or the selection names an unknown provider.

    Idempotent and thread-safe. Calling it again replaces the settings: hand-offs switched off are restored.
    Undo with :func:`uninstrument`; :func:`instrumented` does both around a block.
    """
    switches = {"threads": threads, "executors": executors, "asyncio": asyncio, "anyio": anyio}
    for kind, value in switches.items():
        if not isinstance(value, bool):
            raise TypeError(
                f"instrument({kind}=...) takes True or False, got {type(value).__name__} {value!r:.40}. "
                f"Pass {kind}=False to leave that hand-off alone."
            )
    if not any(switches.values()):
        raise ValueError(
            "instrument() was asked to patch no hand-off. Leave one switched on, or call "
            "ctxsnap.uninstrument()."
        )
    # The selection is checked (and planned) before anything is patched: a bad one leaves nothing half-applied.
    capture = PlannedCapture(include, exclude)
    settings = _Settings(**switches, include=include, exclude=exclude, capture=capture)
    global _settings
    with _lock:
        wanted = frozenset(kind for kind, on in switches.items() if on)
        _release(frozenset(HANDOFFS) - wanted)
        installed: list[_Patch] = []
        try:
            for target in _targets(wanted):
                patch = _install(target)
                if patch is not None:
                    installed.append(patch)
        except BaseException:
            for patch in reversed(installed):
                patch.restore()
            raise
        for patch in installed:
            _patches[patch.target.label] = patch
        _settings = settings


def uninstrument() -> None:
    """Undo :func:`instrument`: every patched attribute is the original object again.

    A wrapper another instrumentation wrapped on top of in the meantime stays in its chain and does nothing from
    now on; a later :func:`instrument` or :func:`uninstrument` takes it out once it is on top again. Calling this
    when nothing is instrumented does nothing.
    """
    global _settings
    with _lock:
        _settings = None
        _release(frozenset(HANDOFFS))


def instrumentation() -> tuple[str, ...]:
    """The hand-offs instrumented right now, by dotted name; empty when nothing is.

    For example ``("threading.Thread.start", "concurrent.futures.ThreadPoolExecutor.submit", ...)``. A name is
    listed when its switch is on and ctxsnap's wrapper is reachable from the attribute (on top, or under another
    tool's wrapper).
    """
    with _lock:
        settings = _settings
        if settings is None:
            return ()
        wanted = frozenset(kind for kind in HANDOFFS if getattr(settings, kind))
        live = []
        for target in _targets_loaded(wanted):
            current = _current(target)
            if current is not _ABSENT and _ours_in_chain(current, target):
                live.append(target.label)
        return tuple(live)


def _targets_loaded(kinds: frozenset[str]) -> list[_Target]:
    # The query must not import anyio; instrument() already did if it is installed.
    if "anyio" in kinds and "anyio.to_thread" not in sys.modules:
        kinds = kinds - {"anyio"}
    return _targets(kinds)


@contextmanager
def instrumented(
    *,
    threads: bool = True,
    executors: bool = True,
    asyncio: bool = True,
    anyio: bool = True,
    include: Selection = None,
    exclude: Selection = None,
) -> Iterator[None]:
    """``instrument(...)`` for the block, then back to exactly the settings before it (for tests)."""
    with _lock:
        previous = _settings
        instrument(threads=threads, executors=executors, asyncio=asyncio, anyio=anyio, include=include,
                   exclude=exclude)
    try:
        yield
    finally:
        with _lock:
            if previous is None:
                uninstrument()
            else:
                instrument(**previous.arguments())


@contextmanager
def detached() -> Iterator[None]:
    """Inside the block, instrumented hand-offs behave exactly like the standard library's.

    For a long-lived thread that library code starts during a request (a logging ``QueueListener``, a connection
    pool's housekeeping thread): started inside ``detached()``, it starts clean and keeps no request alive.
    Explicit ctxsnap calls (``ctxsnap.Thread``, ``capture()``) still capture inside the block.
    """
    token = _DETACHED.set(True)
    try:
        yield
    finally:
        _DETACHED.reset(token)


def instrument_for_app(value: object, where: str) -> None:
    """What the Flask and Quart extensions do with ``app.config["CTXSNAP_INSTRUMENT"]``.

    ``True`` instruments every hand-off unless something is instrumented already (then the process-wide settings
    someone chose stay as they are); ``False`` leaves instrumentation alone, it never uninstruments.
    """
    if not isinstance(value, bool):
        raise TypeError(
            f"{where} must be True or False, got {type(value).__name__} {value!r:.40}. Set it to True to "
            "instrument the thread hand-offs, or call ctxsnap.instrument(...) for finer settings."
        )
    if value:
        with _lock:
            if _settings is None:
                instrument()
