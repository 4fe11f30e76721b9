"""The Quart adapter's tests (the extension, ``to_thread``, instrumentation) take their fixtures, and the rule
that keeps them out of the Flask-only cells, from ``tests/quart_support.py``."""

from __future__ import annotations

# Taken in by name: pytest finds fixtures and hooks among a conftest's attributes, wherever they are defined.
from tests.quart_support import app, lifecycle  # noqa: F401
from tests.quart_support import skip_quart_modules_where_quart_is_deselected as pytest_ignore_collect  # noqa: F401
