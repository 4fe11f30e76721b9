"""Fixtures of the reliability suite; the tools themselves live in ``_support``."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Iterator

import pytest

from ._support import WorkerProbe


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool:
    """Run each test in its own copy of the context, the way a server runs each request.

    The tests set ContextVars freely to play "the parent request"; without this, a value set by one test would
    still be there when the next one starts, and a test about leaks could pass or fail because of its neighbour.
    """
    # The test's own parameters, read from its public signature (pytest's private _fixtureinfo is not an API);
    # funcargs also holds autouse fixtures the test does not take.
    parameters = inspect.signature(pyfuncitem.obj).parameters
    arguments = {name: value for name, value in pyfuncitem.funcargs.items() if name in parameters}
    contextvars.copy_context().run(pyfuncitem.obj, **arguments)
    return True


@pytest.fixture
def worker() -> Iterator[WorkerProbe]:
    """A one-worker pool whose thread can be inspected between tasks."""
    probe = WorkerProbe()
    try:
        yield probe
    finally:
        probe.close()
