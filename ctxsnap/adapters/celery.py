"""Celery: tasks carry a :class:`ctxsnap.Carrier` from the caller to the worker, on every pool and in eager mode.

Why in ``apply_async`` and not in a ``before_task_publish`` receiver, as tracing integrations do: Celery only
logs a receiver that raises and publishes the task anyway, without the headers, so a refused value would
silently send a task with no context; and eager mode sends no publish signal at all (celery#3864). Exporting in
``apply_async`` (and ``apply``) makes a refusal raise at ``.delay()`` before anything reaches the broker.

The payload travels in one message header (:data:`HEADER`). In the worker, the task body runs in a copy of the
worker thread's context (what a tracing integration attached before the task survives) holding the carried
values, with ``g`` in an app context of the carrier's app (or ``install``'s ``flask_app``); the copy is
discarded afterwards, so nothing a task sets reaches the next task on that worker thread or process. In eager
mode the body runs in an empty context instead, so that it sees what a real worker would see: the carried
values, not the caller's live context.

Forwarding: a ``.delay()`` inside a task body exports the body's current values (so a task that changed a
declared variable forwards the new value); what the worker publishes after the body (the next step of a chain,
a chord body) forwards the running task's payload as received. Headers the caller passes explicitly win, and a
retry republishes the original headers, so retries keep the original payload.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final

from .._carrier import Carrier
from .._extras import framework_import

with framework_import("celery", extra="celery", importer=__name__):
    import celery  # type: ignore[import-untyped]  # Celery ships no type information
    from celery import current_task

__all__ = ["HEADER", "Task", "install"]

#: The message header that holds the payload.
HEADER: Final = "ctxsnap"

#: Set inside a carrying task's body (in its own context copy): a publish from there exports the body's current
#: values; a publish by the worker outside any body forwards the running task's payload instead.
_IN_BODY: Final[ContextVar[bool]] = ContextVar("ctxsnap.celery.in_body", default=False)


def _payload_of(request: Any) -> str | None:
    if request is None:
        return None
    headers = getattr(request, "headers", None)
    payload = headers.get(HEADER) if isinstance(headers, dict) else None
    if payload is None:
        payload = getattr(request, HEADER, None)
    return payload if isinstance(payload, str) else None


def _outgoing_payload(carrier: Carrier) -> str:
    if not _IN_BODY.get():
        running: Any = current_task._get_current_object() if current_task else None
        running_carrier = getattr(running, "carrier", None)
        if isinstance(running_carrier, Carrier) and running_carrier.name == carrier.name:
            forwarded = _payload_of(running.request)
            if forwarded is not None:
                return forwarded
    return str(carrier.export())


def _with_payload(carrier: Carrier | None, headers: Any) -> Any:
    if carrier is None or (isinstance(headers, dict) and HEADER in headers):
        return headers  # no carrier, or the caller (or a retry) passed the payload explicitly: it wins
    return {**(headers or {}), HEADER: _outgoing_payload(carrier)}


def _call_body(call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _IN_BODY.set(True)
    return call(*args, **kwargs)


class Task(celery.Task):  # type: ignore[misc]
    """A Celery task base that carries ``carrier``: ``@celery_app.task(base=Task, carrier=carrier)``.

    ``flask_app`` (optional, a Flask or Quart app or a factory) overrides the carrier's ``app`` for ``g``.
    """

    carrier: Carrier | None = None
    flask_app: Any = None

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: Any = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: Any = None,
        **options: Any,
    ) -> Any:
        headers = _with_payload(self.carrier, options.get("headers"))
        if headers is not None:
            options["headers"] = headers
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, shadow, **options)

    def apply(self, args: Any = None, kwargs: Any = None, *rest: Any, headers: Any = None, **options: Any) -> Any:
        # Task.apply() called directly (not through eager apply_async) exports here, with the same refusals.
        return super().apply(args, kwargs, *rest, headers=_with_payload(self.carrier, headers), **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        carrier = self.carrier
        body = super().__call__
        if carrier is None:
            return body(*args, **kwargs)
        request = self.request
        # Eager: an empty context, so the body sees the carried values only, as it would on a worker.
        context = contextvars.Context() if request.is_eager else contextvars.copy_context()
        payload = _payload_of(request)
        if payload is None:
            # Published by a producer without ctxsnap: nothing to apply, and still nothing left behind.
            return context.run(_call_body, body, args, kwargs)
        # Read from the class: a factory function stored as a class attribute would bind to the task instance.
        flask_app = type(self).flask_app
        return carrier.run_in(context, payload, _call_body, (body, args, kwargs), {}, app=flask_app)


def install(celery_app: Any, carrier: Carrier, *, flask_app: Any = None) -> None:
    """Make every task of ``celery_app`` carry ``carrier``. Call it before defining the tasks.

    ``flask_app`` (a Flask or Quart app, or a factory) is the app whose app context holds the carried ``g`` in
    the worker; it defaults to the carrier's ``app``. A custom ``celery_app.Task`` (such as Flask's
    ``FlaskTask``) is kept: the carrying class is put in front of it.
    """
    if not isinstance(carrier, Carrier):
        raise TypeError(
            f"install() takes a ctxsnap.Carrier, got {type(carrier).__name__}. Declare what crosses first: "
            "install(celery_app, ctxsnap.Carrier('myapp', vars=[request_id]))."
        )
    if not isinstance(celery_app, celery.Celery):
        raise TypeError(
            f"install() takes a celery.Celery app, got {type(celery_app).__name__}. Pass the app itself: "
            "install(celery_app, carrier)."
        )
    base = celery_app.Task
    if issubclass(base, Task):
        raise ValueError(
            f"ctxsnap is already installed on the Celery app {celery_app.main!r}. Call install() once per app."
        )
    if celery_app.finalized:
        raise RuntimeError(
            f"install() came after the Celery app {celery_app.main!r} created its tasks. "
            "Call install() right after creating the Celery app, before defining tasks: tasks keep their base."
        )
    celery_app.Task = type(
        base.__name__, (Task, base), {"carrier": carrier, "flask_app": flask_app, "__module__": base.__module__}
    )
