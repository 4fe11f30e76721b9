"""ctxsnap: capture the current context once, apply it wherever work runs.

A :class:`Snapshot` holds every ContextVar plus whatever the registered providers carry (Flask's and Quart's
app, request and websocket contexts, with a private copy of ``g``). Adapters apply it in threads, executors and
event-loop worker threads with one semantics for sync and async code.

    with ctxsnap.capture() as snap:
        executor.submit(snap.wrap(fn))
"""

from __future__ import annotations

import typing as _typing

from . import _registry
from ._capture import capture, wrap
from ._carrier import Carrier
from ._codec import UnportableValueError
from ._errors import ProviderError, SnapshotClosedError, SnapshotError
from ._payload import PayloadError
from ._provider import Provider, register_provider, unregister_provider
from ._snapshot import Snapshot
from .adapters.futures import ContextExecutor, ProcessPoolExecutor, ThreadPoolExecutor
from .adapters.instrument import detached, instrument, instrumentation, instrumented, uninstrument
from .adapters.threading import Thread

# ``ctxsnap.providers`` is both the public function that lists the active providers and the package of the
# built-in providers (``ctxsnap.providers.flask``): the package module is callable and does what the function
# does (see ctxsnap/providers/__init__.py). It is imported here so that the name is that one object from the
# start, rather than the function until some submodule import replaces it. Type checkers see the function: they
# cannot call a module.
if _typing.TYPE_CHECKING:
    from ._provider import providers
else:
    from . import providers

__all__ = [
    "Carrier",
    "ContextExecutor",
    "PayloadError",
    "ProcessPoolExecutor",
    "Provider",
    "ProviderError",
    "Snapshot",
    "SnapshotClosedError",
    "SnapshotError",
    "Thread",
    "ThreadPoolExecutor",
    "UnportableValueError",
    "capture",
    "detached",
    "instrument",
    "instrumentation",
    "instrumented",
    "providers",
    "register_provider",
    "uninstrument",
    "unregister_provider",
    "wrap",
]

# Last, so that a plug-in importing ctxsnap finds every name above. This is the one moment that reads package
# metadata; captures never do (docs/core.md, "Where providers come from").
_registry.registry.discover_plugins()
