"""Helpers of the Quart adapter's tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tests.support import TIMEOUT

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a fresh copy of the context, so one test's ContextVars never reach the next."""
    return contextvars.copy_context().run(asyncio.run, coroutine)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait on the loop, without blocking it, for a condition a worker thread makes true."""
    for _ in range(int(TIMEOUT / 0.002)):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")
