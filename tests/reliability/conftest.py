"""Fixtures of the reliability suite; the tools themselves live in ``_support``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Each test runs in its own copy of the context: the tests set ContextVars freely to play "the parent request".
from tests.support import run_each_test_in_a_copy_of_the_context as pytest_pyfunc_call  # noqa: F401

from ._support import WorkerProbe


@pytest.fixture
def worker() -> Iterator[WorkerProbe]:
    """A one-worker pool whose thread can be inspected between tasks."""
    probe = WorkerProbe()
    try:
        yield probe
    finally:
        probe.close()
