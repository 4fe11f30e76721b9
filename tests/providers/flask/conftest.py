"""The Flask providers' tests (g, the app and request contexts, teardown, layouts) take their fixtures from
their one home in ``tests/flask_support.py``; each test runs in its own copy of the context."""

from __future__ import annotations

# Taken in by name: pytest finds fixtures and hooks among a conftest's attributes, wherever they are defined.
from tests.flask_support import app, lifecycle, pool, single_worker  # noqa: F401
from tests.support import run_each_test_in_a_copy_of_the_context as pytest_pyfunc_call  # noqa: F401
