"""The patch table: for each hand-off kind, the attributes ``instrument()`` wraps and the wrapper for each.

Built at each call rather than once at import, so that ``import ctxsnap`` pays for neither asyncio nor anyio,
and so that a kind whose library is absent simply has no targets.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import sys
import threading

from . import _stdlib
from ._patching import Target


def targets(kinds: frozenset[str]) -> list[Target]:
    """Every attribute the hand-off ``kinds`` patch, importing asyncio and anyio (when installed) as needed."""
    found: list[Target] = []
    if "threads" in kinds:
        found.extend(_thread_targets())
    if "executors" in kinds:
        found.extend(_executor_targets())
    if "asyncio" in kinds:
        found.extend(_asyncio_targets())
    if "anyio" in kinds and importlib.util.find_spec("anyio") is not None:
        found.extend(_anyio_targets())
    return found


def loaded_targets(kinds: frozenset[str]) -> list[Target]:
    """As :func:`targets`, without importing anyio: a query must not, and ``instrument()`` already did."""
    if "anyio" in kinds and "anyio.to_thread" not in sys.modules:
        kinds = kinds - {"anyio"}
    return targets(kinds)


def _thread_targets() -> list[Target]:
    found = [Target("threads", threading.Thread, "start", "threading.Thread.start", _stdlib.wrap_thread_start)]
    if "start" in vars(threading.Timer):
        # Timer inherits start(); OpenTelemetry's ThreadingInstrumentor copies the Thread.start it finds into
        # Timer's own class at its install time (and leaves it there after uninstrument), which would bypass a
        # Thread.start patched later.
        label = "threading.Timer.start"
        found.append(Target("threads", threading.Timer, "start", label, _stdlib.wrap_thread_start))
    return found


def _executor_targets() -> list[Target]:
    pool = concurrent.futures.ThreadPoolExecutor
    return [
        Target("executors", pool, "submit", "concurrent.futures.ThreadPoolExecutor.submit", _stdlib.wrap_submit),
        Target("executors", pool, "map", "concurrent.futures.ThreadPoolExecutor.map", _stdlib.wrap_map),
    ]


def _asyncio_targets() -> list[Target]:
    # Imported only here: "import ctxsnap" does not pay for asyncio.
    import asyncio
    import asyncio.base_events
    import asyncio.threads

    return [
        Target(
            "asyncio",
            asyncio.base_events.BaseEventLoop,
            "run_in_executor",
            "asyncio.BaseEventLoop.run_in_executor",
            _stdlib.wrap_run_in_executor,
        ),
        # Both names: ``asyncio.to_thread`` is re-exported from ``asyncio.threads``.
        Target("asyncio", asyncio.threads, "to_thread", "asyncio.threads.to_thread", _stdlib.wrap_to_thread),
        Target("asyncio", asyncio, "to_thread", "asyncio.to_thread", _stdlib.wrap_to_thread),
    ]


def _anyio_targets() -> list[Target]:
    # Imported here when installed, so that a later "import anyio" anywhere gets the patched module.
    import anyio.to_thread

    from ._anyio import wrap_run_sync

    return [Target("anyio", anyio.to_thread, "run_sync", "anyio.to_thread.run_sync", wrap_run_sync)]
