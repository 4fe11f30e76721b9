"""The original problem, as a small Flask app: request state set in ``before_request``, read by worker threads.

``before_request`` puts a request id in ``g`` and in a ContextVar; the views hand work to a thread pool and to a
``threading.Thread``, and every worker reports what it can see of the request. With ``propagate=True`` the
workers are started through ctxsnap; with ``propagate=False`` the same app uses the plain standard-library
classes, which is what most apps start with, and the workers see nothing.

The demo (``python dev.py demo``), the example tests and the reliability load tests all drive this module on a
real threaded WSGI server (:func:`serve`), so it is written to run on every Flask the matrix supports (1.1.1 to
3.1): ``app.route`` rather than ``app.get``, ``jsonify`` rather than returning dicts.

Routes:

* ``GET /``: one pool task and one thread report ``g.request_id``, the ``request_id`` ContextVar and the
  ``X-Request-Id`` header as they see them.
* ``GET /fanout?n=4``: ``n`` tasks on the one pool shared by the whole process, each reporting the same plus
  its thread id.
* ``POST /upload``: a pool task reads the uploaded file (multipart field ``file``), then the view reads it
  again: a worker must not close the request's files (pallets/flask#5399).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import flask
from flask import g, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask

__all__ = ["FANOUT_MAX", "create_app", "request_id", "serve"]

T = TypeVar("T")

#: The ContextVar a logging or tracing library would keep the request id in.
request_id: ContextVar[str] = ContextVar("request_id")

#: Upper bound for ``/fanout?n=``: the pool is shared by every request, one request must not monopolise it.
FANOUT_MAX = 64

# One pool per process, shared by every request and every app instance, as in a real deployment: that is
# where a worker could see a previous request's state if anything leaked. The ctxsnap pool is the drop-in
# subclass; the plain one is what ``propagate=False`` uses.
_POOL_SIZE = 8
shared_pool: concurrent.futures.ThreadPoolExecutor = ctxsnap.ThreadPoolExecutor(
    max_workers=_POOL_SIZE, thread_name_prefix="example-ctxsnap-pool"
)
plain_pool = concurrent.futures.ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="example-plain-pool")

#: How long a view waits for its workers before answering 504: generous, the test machine is shared.
WORKER_TIMEOUT = 30.0


def _visible(read: Callable[[], T]) -> T | None:
    # Flask raises RuntimeError ("Working outside of application/request context") when a worker cannot see
    # the context at all; the example reports that as null instead of crashing the view.
    try:
        return read()
    except RuntimeError:
        return None


def what_this_worker_sees() -> dict[str, Any]:
    """The request id as seen through ``g``, the ContextVar and the request header, and the worker's thread."""
    return {
        "g": _visible(lambda: g.get("request_id")),
        "var": request_id.get(None),
        "header": _visible(lambda: request.headers.get("X-Request-Id")),
        "thread": threading.get_ident(),
    }


def read_uploaded_file() -> dict[str, Any] | None:
    """Read the whole uploaded file as a background task would (to store or scan it)."""
    upload = _visible(lambda: request.files.get("file"))
    if upload is None:
        return None
    data = upload.read()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def create_app(propagate: bool = True) -> flask.Flask:
    """The example app; ``propagate=False`` swaps ctxsnap for the plain ``concurrent.futures``/``threading``."""
    app = flask.Flask(__name__)
    app.config["PROPAGATE"] = propagate
    if propagate:
        # Optional: the providers work without it. The extension is where the g/teardown policies live.
        ctxsnap_flask.CtxSnap(app)
    pool = shared_pool if propagate else plain_pool
    thread_class = ctxsnap.Thread if propagate else threading.Thread

    @app.before_request
    def assign_request_id() -> None:
        value = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        g.request_id = value
        request_id.set(value)

    @app.route("/")
    def index() -> flask.Response:
        from_thread: dict[str, Any] = {}
        thread = thread_class(target=lambda: from_thread.update(what_this_worker_sees()), name="example-thread")
        thread.start()
        from_pool = pool.submit(what_this_worker_sees).result(timeout=WORKER_TIMEOUT)
        thread.join(timeout=WORKER_TIMEOUT)
        return jsonify(
            request_id=g.request_id,
            propagate=propagate,
            view_thread=threading.get_ident(),
            workers={"executor": from_pool, "thread": from_thread or None},
        )

    @app.route("/fanout")
    def fanout() -> flask.Response | tuple[flask.Response, int]:
        raw = request.args.get("n", "4")
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if not 1 <= n <= FANOUT_MAX:
            return jsonify(error=f"n must be an integer from 1 to {FANOUT_MAX}, got {raw!r}"), 400
        futures = [pool.submit(what_this_worker_sees) for _ in range(n)]
        workers = [future.result(timeout=WORKER_TIMEOUT) for future in futures]
        return jsonify(request_id=g.request_id, workers=workers)

    @app.route("/upload", methods=["POST"])
    def upload() -> flask.Response | tuple[flask.Response, int]:
        if "file" not in request.files:
            return jsonify(error="send the file as multipart/form-data in a field named 'file'"), 400
        worker_saw = pool.submit(read_uploaded_file).result(timeout=WORKER_TIMEOUT)
        stream = request.files["file"].stream
        closed_after_worker = bool(stream.closed)
        data = b""
        if not closed_after_worker:
            stream.seek(0)
            data = stream.read()
        return jsonify(
            worker=worker_saw,
            view={"closed": closed_after_worker, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        )

    return app


class _QuietRequestHandler(WSGIRequestHandler):
    # One access-log line per request drowns the demo's table and the test output; errors are still logged.
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def serve(app: flask.Flask) -> Iterator[str]:
    """Run ``app`` on werkzeug's threaded server on an ephemeral loopback port; yield its base URL.

    The server runs in a background thread and is shut down (socket closed, thread joined) when the block ends.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="example-wsgi-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=WORKER_TIMEOUT)
