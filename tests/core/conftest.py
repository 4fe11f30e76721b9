"""Fixtures of the core suite.

The provider registry is process-wide and shared with every other test in the run, so tests that register
providers do it through ``registered``, which always removes them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ctxsnap

Register = Callable[..., Any]


@pytest.fixture
def registered() -> Iterator[Register]:
    """``registered(*providers)``: register providers for this test only, in order; removed afterwards."""
    names: list[str] = []

    def register(*providers: Any, replace: bool = False) -> None:
        for provider in providers:
            ctxsnap.register_provider(provider, replace=replace)
            if provider.name not in names:
                names.append(provider.name)

    yield register
    for name in reversed(names):
        if any(p.name == name for p in ctxsnap.providers()):
            ctxsnap.unregister_provider(name)
