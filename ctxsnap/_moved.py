"""Old import paths of names that moved, kept working with a DeprecationWarning (PEP 562).

Issue 13 moved the Flask and Quart providers out of ``ctxsnap.adapters`` into ``ctxsnap.providers``. Code that
imported a moved name from its old module keeps working, and is told where the name lives now; the name is
the very object of its new home, not a copy.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["moved_names"]


def moved_names(module: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``module`` that serves each name of ``homes`` from the module it maps to."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} has moved to {home}.{name}. Import it from there.", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(home), name)

    return __getattr__
