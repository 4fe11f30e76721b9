"""Flask's ``g`` as a carrier section: the part of the ``flask.app`` provider that crosses processes.

It is a module of its own, beside the provider module, because it serves a different reader: the carrier
(``ctxsnap._carrier``) in the parent and in a worker process, where no provider state exists.

A worker in another process has no request and no parent app context to fork, so the carried ``g`` attributes
are restored in a plain app context of the worker's own app, pushed for the task and popped after it (so
teardown_appcontext runs once per task in the worker, as in Flask's own Celery pattern). The request itself
never crosses. Only Flask's public API is used here, so this works on every Flask of the matrix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final

import flask

__all__ = ["PortableFlaskG"]

_MISSING: Final = object()


class PortableFlaskG:
    """Mixed into the ``flask.app`` provider: export and restore the declared attributes of ``g``."""

    portable = "g"

    def export(self, names: tuple[str, ...]) -> dict[str, Any] | None:
        if not flask.has_app_context():
            return None
        g = flask.g
        found = {name: getattr(g, name, _MISSING) for name in names}
        return {name: value for name, value in found.items() if value is not _MISSING}

    def restore(self, app: Any, values: dict[str, Any]) -> contextlib.AbstractContextManager[None] | None:
        if not isinstance(app, flask.Flask):
            return None
        return _app_context_with(app, values)


@contextlib.contextmanager
def _app_context_with(app: flask.Flask, values: dict[str, Any]) -> Iterator[None]:
    with app.app_context():
        namespace = flask.g
        for name, value in values.items():
            setattr(namespace, name, value)
        yield
