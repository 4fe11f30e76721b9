"""Helpers of the Quart adapter's tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Generous: the machine is small and shared; a slow answer is fine, a hung test is not.
TIMEOUT = 30.0


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a fresh copy of the context, so one test's ContextVars never reach the next."""
    return contextvars.copy_context().run(asyncio.run, coroutine)


class Lifecycle:
    """Which lifecycle callbacks ran, in which thread, with which exception."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[str, int, BaseException | None]] = []

    def record(self, event: str, exc: BaseException | None = None) -> None:
        with self._lock:
            self.events.append((event, threading.get_ident(), exc))

    def threads(self, event: str) -> list[int]:
        with self._lock:
            return [thread for name, thread, _ in self.events if name == event]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait on the loop, without blocking it, for a condition a worker thread makes true."""
    for _ in range(int(TIMEOUT / 0.002)):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")
