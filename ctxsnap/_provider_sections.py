"""The payload sections that providers export and restore, such as Flask's and Quart's ``g``.

The carrier knows no framework: a provider that can carry part of its context names a section (its
``portable`` attribute) and implements ``export(names)`` and ``restore(app, values)``; the carrier asks each
registered provider in turn, and the first that answers handles the section.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from . import _provider

__all__ = ["AppSource", "export_section", "is_app", "restore_section"]


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


class AppSource:
    """The app a carrier restores ``g`` in, as given: an app, a zero-argument factory, or nothing."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._pid = -1
        self._from: Any = None
        self._app: Any = None

    def resolve(self, override: Any = None) -> Any:
        """The app (``override`` first, Celery's ``flask_app=``); a factory is called once per process."""
        source = self.source if override is None else override
        if source is None or is_app(source):
            return source
        if self._pid == os.getpid() and self._from is source:
            return self._app
        # Locked: the first tasks of a threads-pool worker arrive together, and the factory runs once per process.
        with self._lock:
            if self._pid != os.getpid() or self._from is not source:
                self._app = source()
                self._from = source
                self._pid = os.getpid()
            return self._app

    def required(self, carrier: str, override: Any = None) -> Any:
        """:meth:`resolve`, for a payload that carries ``g``: there must be an app to restore it in."""
        app = self.resolve(override)
        if app is None:
            raise RuntimeError(
                f"Carrier {carrier!r} carries g but has no app for it. Pass app= to the Carrier "
                "(or flask_app= to ctxsnap.adapters.celery.install)."
            )
        return app
