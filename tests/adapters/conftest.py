"""A provider that keeps state in the worker thread itself, shared by the async helpers' cancellation tests.

asyncio and anyio run the work in a copy of a context, so no ContextVar the work set can reach the next task
whatever ctxsnap does; state outside any context (as a tracer's per-thread span stack) is what only the
snapshot's undo, run in the worker, takes away. A test that checks it after a cancelled call can fail.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import ctxsnap


class ThreadMark(ctxsnap.Provider):
    """Marks the thread a run applies in (``marked`` is keyed by thread id); its undo removes the mark again."""

    name = "test-adapters.thread-mark"
    marked: dict[int, str] = {}

    def capture(self) -> str:
        return "marked"

    def apply(self, state: str) -> None:
        self.marked[threading.get_ident()] = state

    def undo(self, state: str, token: Any, exc: BaseException | None) -> None:
        del self.marked[threading.get_ident()]


@pytest.fixture
def thread_mark() -> Iterator[dict[int, str]]:
    """Registers :class:`ThreadMark` for one test and yields its marks: a thread id is in it while a run lasts."""
    ThreadMark.marked.clear()
    ctxsnap.register_provider(ThreadMark())
    try:
        yield ThreadMark.marked
    finally:
        ctxsnap.unregister_provider(ThreadMark.name)
