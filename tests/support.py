"""The one home of helpers every part of the suite shares: how long a test waits, a lifecycle recorder, and the
hook that runs each test in its own copy of the context, and running a coroutine the same way.

What one framework's tests share, in ``tests/providers/`` and ``tests/adapters/`` alike, lives beside this module
(``tests/flask_support.py``, ``tests/quart_support.py``); what one part of the suite needs alone stays beside it
(``tests/reliability/_support.py``, ...). What more than one part needs lives here, once, so that a change of
policy (a longer wait on a slow machine, one more field in a lifecycle event) is made in one place.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple, TypeVar

import pytest

__all__ = ["PROCESS_TIMEOUT", "TIMEOUT", "Lifecycle", "LifecycleEvent", "run_each_test_in_a_copy_of_the_context"]

#: How long a test waits for a thread, a task or a server before it fails. Generous: the machine is small and
#: shared, a slow answer is fine, a hung test is not (and no test asserts on how fast anything is).
TIMEOUT = 60.0
#: The wait for work that starts a fresh interpreter (a spawned process pool, a Celery worker): each start
#: imports the frameworks again, which takes several seconds on a loaded two-core machine.
PROCESS_TIMEOUT = 2 * TIMEOUT


class LifecycleEvent(NamedTuple):
    """One lifecycle callback that ran: its name, the thread that ran it, the exception it was handed."""

    name: str
    thread: int
    exc: BaseException | None


class Lifecycle:
    """Thread-safe record of the lifecycle callbacks a Flask or Quart app ran (teardown handlers, signals).

    A test's app registers callbacks that call :meth:`record`; the test then asks which ran, in which thread
    and with which exception. Quart apps should register ``async def`` callbacks: Quart runs a sync one in its
    executor, so the recorded thread would be some pool thread rather than the one the step happened in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[LifecycleEvent] = []

    def record(self, name: str, exc: BaseException | None = None) -> None:
        with self._lock:
            self.events.append(LifecycleEvent(name, threading.get_ident(), exc))

    def clear(self) -> None:
        with self._lock:
            self.events.clear()

    def steps(self) -> list[tuple[str, int]]:
        """Each event as (name, thread), in the order they ran."""
        with self._lock:
            return [(event.name, event.thread) for event in self.events]

    def threads(self, name: str) -> list[int]:
        """The threads that ran the callback ``name``, once per run, in order."""
        with self._lock:
            return [event.thread for event in self.events if event.name == name]

    def in_thread(self, ident: int) -> list[tuple[str, type[BaseException] | None]]:
        """What ran in one thread: (name, type of the exception handed to it, or None), in order."""
        with self._lock:
            return [
                (event.name, type(event.exc) if event.exc is not None else None)
                for event in self.events
                if event.thread == ident
            ]


@pytest.hookimpl(tryfirst=True)
def run_each_test_in_a_copy_of_the_context(pyfuncitem: pytest.Function) -> bool:
    """A ``pytest_pyfunc_call`` hook: run each (sync) test in its own copy of the context, as a server runs each
    request. A conftest takes it in with ``from tests.support import ... as pytest_pyfunc_call``.

    Tests set ContextVars freely to play "the parent request"; without this, a value set by one test would still
    be there when the next one starts, and a test about leaks could pass or fail because of its neighbour.
    """
    # The test's own parameters, read from its public signature (pytest's private _fixtureinfo is not an API);
    # funcargs also holds autouse fixtures the test does not take.
    parameters = inspect.signature(pyfuncitem.obj).parameters
    arguments = {name: value for name, value in pyfuncitem.funcargs.items() if name in parameters}
    contextvars.copy_context().run(pyfuncitem.obj, **arguments)
    return True


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
