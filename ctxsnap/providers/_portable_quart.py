"""Quart's ``g`` as a carrier section: the part of the ``quart.app`` provider that crosses processes.

Celery and process-pool workers are synchronous, and Quart pushes app contexts with ``await``. The worker
therefore sets a fresh app context of its app in ``quart.globals._cv_app`` (looked up and checked, as the Quart
provider does) inside the task's own context copy, which is discarded afterwards: ``current_app`` and ``g``
work in the task, and nothing of the app's async lifecycle (signals, teardown_appcontext) runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Final

import quart
import quart.globals

__all__ = ["PortableQuartG"]

_MISSING: Final = object()
_CV_APP: Final = vars(quart.globals).get("_cv_app")


class PortableQuartG:
    """Mixed into the ``quart.app`` provider: export and restore the declared attributes of ``g``."""

    portable = "g"

    def export(self, names: tuple[str, ...]) -> dict[str, Any] | None:
        if not quart.has_app_context():
            return None
        g = quart.g
        found = {name: getattr(g, name, _MISSING) for name in names}
        return {name: value for name, value in found.items() if value is not _MISSING}

    def restore(self, app: Any, values: dict[str, Any]) -> contextlib.AbstractContextManager[None] | None:
        if not isinstance(app, quart.Quart):
            return None
        if not isinstance(_CV_APP, ContextVar):
            raise RuntimeError(
                "This Quart has no app context to hold a carried g. "
                "Use Quart >= 0.19, or leave g= out of the carrier."
            )
        return _app_context_with(_CV_APP, app, values)


@contextlib.contextmanager
def _app_context_with(var: ContextVar[Any], app: Any, values: dict[str, Any]) -> Iterator[None]:
    context = app.app_context()
    for name, value in values.items():
        setattr(context.g, name, value)
    token = var.set(context)
    try:
        yield
    finally:
        var.reset(token)
