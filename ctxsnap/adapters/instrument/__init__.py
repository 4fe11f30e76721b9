"""``ctxsnap.instrument()``: opt-in, process-wide propagation through the standard thread hand-offs.

Code a user does not own calls ``threading.Thread``, ``ThreadPoolExecutor.submit``, ``asyncio.to_thread``,
``loop.run_in_executor`` and ``anyio.to_thread.run_sync`` directly, so routing work through ctxsnap's own entry
points is not always possible. ``instrument()`` patches those hand-offs so that each captures at the call and
runs the work inside the snapshot, with the same semantics table as ``ctxsnap.Thread``, ``ctxsnap.ThreadPool-
Executor`` and the asyncio/anyio helpers: it calls the same run path (:func:`~ctxsnap._capture.runner`,
``start_in_snapshot``, ``ctxsnap.adapters.anyio.in_snapshot``).

This module is the switchboard: the public functions, which change the settings and the patched attributes
together under one lock. The rest of the package, by job: ``_state`` (the settings every wrapper reads),
``_stdlib`` and ``_anyio`` (the wrappers), ``_passthrough`` (what they leave alone), ``_targets`` (which
attributes each kind patches) and ``_patching`` (wrapping and unwrapping next to OpenTelemetry and Sentry).

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

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from ..._capture import PlannedCapture
from ..._planning import Selection
from . import _state
from ._patching import Patch, install, is_live, patches, release
from ._state import HANDOFFS
from ._targets import loaded_targets, targets

__all__ = ["HANDOFFS", "detached", "instrument", "instrumentation", "instrumented", "uninstrument"]

#: The app config key the Flask and Quart extensions read.
CONFIG_INSTRUMENT: Final = "CTXSNAP_INSTRUMENT"


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
    _check_switches(switches)
    # The selection is checked (and planned) before anything is patched: a bad one leaves nothing half-applied.
    capture = PlannedCapture(include, exclude)
    settings = _state.Settings(**switches, include=include, exclude=exclude, capture=capture)
    with _state.lock:
        wanted = settings.kinds()
        release(frozenset(HANDOFFS) - wanted)
        for patch in _install_all(wanted):
            patches[patch.target.label] = patch
        _state.current = settings


def _check_switches(switches: Mapping[str, object]) -> None:
    for kind, value in switches.items():
        if not isinstance(value, bool):
            raise TypeError(
                f"instrument({kind}=...) takes True or False, not {type(value).__name__} {value!r:.40}. "
                f"Pass {kind}=False to leave that hand-off alone."
            )
    if not any(switches.values()):
        raise ValueError(
            "instrument() was asked to patch no hand-off. Leave one switched on, or call ctxsnap.uninstrument()."
        )


def _install_all(kinds: frozenset[str]) -> list[Patch]:
    """Wrap every target of ``kinds``, or, if one fails, none: what was wrapped is restored before raising."""
    installed: list[Patch] = []
    try:
        for target in targets(kinds):
            patch = install(target)
            if patch is not None:
                installed.append(patch)
    except BaseException:
        for patch in reversed(installed):
            patch.restore()
        raise
    return installed


def uninstrument() -> None:
    """Undo :func:`instrument`: every patched attribute is the original object again.

    A wrapper another instrumentation wrapped on top of in the meantime stays in its chain and does nothing from
    now on; a later :func:`instrument` or :func:`uninstrument` takes it out once it is on top again. Calling this
    when nothing is instrumented does nothing.
    """
    with _state.lock:
        _state.current = None
        release(frozenset(HANDOFFS))


def instrumentation() -> tuple[str, ...]:
    """The hand-offs instrumented right now, by dotted name; empty when nothing is.

    For example ``("threading.Thread.start", "concurrent.futures.ThreadPoolExecutor.submit", ...)``. A name is
    listed when its switch is on and ctxsnap's wrapper is reachable from the attribute (on top, or under another
    tool's wrapper).
    """
    with _state.lock:
        settings = _state.current
        if settings is None:
            return ()
        return tuple(target.label for target in loaded_targets(settings.kinds()) if is_live(target))


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
    with _state.lock:
        previous = _state.current
        instrument(
            threads=threads, executors=executors, asyncio=asyncio, anyio=anyio, include=include, exclude=exclude
        )
    try:
        yield
    finally:
        with _state.lock:
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
    token = _state.DETACHED.set(True)
    try:
        yield
    finally:
        _state.DETACHED.reset(token)


def instrument_for_app(value: object, where: str) -> None:
    """What the Flask and Quart extensions do with ``app.config["CTXSNAP_INSTRUMENT"]``.

    ``True`` instruments every hand-off unless something is instrumented already (then the process-wide settings
    someone chose stay as they are); ``False`` leaves instrumentation alone, it never uninstruments.
    """
    if not isinstance(value, bool):
        raise TypeError(
            f"{where} must be True or False, not {type(value).__name__} {value!r:.40}. "
            "Set it to True, or call ctxsnap.instrument(...) for finer settings."
        )
    if value:
        with _state.lock:
            if _state.current is None:
                instrument()
