"""Flask + Celery with a ctxsnap carrier: a request enqueues a task; the worker logs who asked for it.

``before_request`` puts the request id in a ContextVar and the user id in ``g``, as an app's auth and logging
middleware would; ``/enqueue`` sends a task with ``.delay()``. The carrier declares those two values (and only
those), so the worker, on another process or machine, logs them with the task, inside an app context of its own
app (``g.user_id``), and sees nothing else of the request.

Run a worker yourself with ``CTXSNAP_DEMO_BROKER=redis://127.0.0.1:6379/0 celery -A examples.celery_example
worker --pool threads``; ``examples/celery_demo.py`` (part of ``python dev.py demo``) starts everything itself.
The module is named ``celery_example``, not ``celery``: a file called celery.py next to the demo would shadow
the library.
"""

from __future__ import annotations

import logging
import os
import uuid
from contextvars import ContextVar
from typing import Any

import celery
import flask

import ctxsnap
from ctxsnap.adapters.celery import install

BROKER = os.environ.get("CTXSNAP_DEMO_BROKER", "memory://")
BACKEND = BROKER if BROKER.startswith("redis://") else "cache+memory://"

#: What a logging or tracing library keeps per request.
request_id: ContextVar[str] = ContextVar("request_id")

logger = logging.getLogger("examples.celery_example")


def create_app() -> flask.Flask:
    app = flask.Flask("celery_example")

    @app.before_request
    def identify() -> None:
        request_id.set(flask.request.headers.get("X-Request-Id") or uuid.uuid4().hex)
        flask.g.user_id = flask.request.headers.get("X-User-Id", "anonymous")
        flask.g.auth_header = flask.request.headers.get("Authorization")  # never declared: it stays here

    @app.route("/enqueue")
    def enqueue() -> flask.Response:
        result = log_identity.delay(flask.request.args.get("what", "report"))
        return flask.jsonify(task_id=result.id)

    return app


#: The declared, portable part of the request. The worker calls create_app once to hold g.
carrier = ctxsnap.Carrier("ctxsnap-demo", vars=[request_id], g=["user_id"], app=create_app)

celery_app = celery.Celery("celery_example", broker=BROKER, backend=BACKEND)
celery_app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
install(celery_app, carrier)


@celery_app.task(name="examples.log_identity")
def log_identity(what: str) -> dict[str, Any]:
    seen = {
        "what": what,
        "request_id": request_id.get(None),
        "user_id": flask.g.get("user_id") if flask.has_app_context() else None,
        "auth_header": flask.g.get("auth_header") if flask.has_app_context() else None,
    }
    logger.warning("task %(what)s: request_id=%(request_id)s user_id=%(user_id)s", seen)
    return seen
