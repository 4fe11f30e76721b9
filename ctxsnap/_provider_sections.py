"""The payload sections that providers export and restore, such as Flask's and Quart's ``g``.

The carrier knows no framework: a provider that can carry part of its context names a section (its
``portable`` attribute) and implements ``export(names)`` and ``restore(app, values)``; the carrier asks each
registered provider in turn, and the first that answers handles the section.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from . import _provider

__all__ = ["export_section", "is_app", "restore_section"]


def _portable_providers(section: str) -> Iterator[Any]:
    for provider in _provider.providers():
        if getattr(provider, "portable", "") == section:
            yield provider


def export_section(section: str, names: tuple[str, ...]) -> dict[str, Any]:
    for provider in _portable_providers(section):
        values = provider.export(names)
        if values is not None:
            return dict(values)
    return {}


def restore_section(section: str, app: Any, values: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    for provider in _portable_providers(section):
        manager = provider.restore(app, values)
        if manager is not None:
            return manager  # type: ignore[no-any-return]
    raise TypeError(
        f"No ctxsnap provider can restore {section} in a {type(app).__name__}. "
        "Pass a Flask or Quart app, or a factory returning one, as the carrier's app."
    )


def is_app(value: object) -> bool:
    # An app object is callable too (a WSGI/ASGI app): told apart from a factory by the attributes every Flask
    # and Quart app has.
    return hasattr(value, "app_context") and hasattr(value, "config")
