"""The one piece of state every instrumentation wrapper reads: the settings, the lock, the ``detached()`` flag.

It lives apart from the wrappers and from the public switchboard so that both can reach it without importing
each other: the wrappers read :data:`current` at each call, the switchboard replaces it under :data:`lock`.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass
from typing import Any, Final

from ..._capture import PlannedCapture
from ..._planning import Selection

#: The kinds of hand-off ``instrument()`` switches on and off, by keyword.
HANDOFFS: Final = ("threads", "executors", "asyncio", "anyio")

#: Set by ``detached()``. A ContextVar rather than a thread-local: an async caller awaits inside the block, and
#: other tasks on the same loop thread must not see the flag meanwhile.
DETACHED: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar("ctxsnap.detached", default=False)


@dataclass(frozen=True)
class Settings:
    """What ``instrument()`` was called with, and the capture planned from its selection."""

    threads: bool
    executors: bool
    asyncio: bool
    anyio: bool
    include: Selection
    exclude: Selection
    capture: PlannedCapture

    def arguments(self) -> dict[str, Any]:
        return {kind: getattr(self, kind) for kind in (*HANDOFFS, "include", "exclude")}

    def kinds(self) -> frozenset[str]:
        return frozenset(kind for kind in HANDOFFS if getattr(self, kind))


#: What every wrapper reads at each call; None while nothing is instrumented. Replaced whole, never mutated, so
#: a wrapper reading it from another thread sees one consistent set of switches.
current: Settings | None = None

#: Held while the settings and the patched attributes change together. Re-entrant: ``instrumented()`` calls
#: ``instrument()`` while holding it.
lock: Final = threading.RLock()


def active(kind: str) -> Settings | None:
    """The settings when hand-offs of ``kind`` are to be captured here and now, else None."""
    settings = current
    if settings is None or not getattr(settings, kind) or DETACHED.get():
        return None
    return settings


#: Stands for "no such attribute" where None could be a real value.
ABSENT: Final = object()
