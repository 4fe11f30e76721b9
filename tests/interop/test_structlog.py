"""structlog's contextvars: what ``before_request`` binds is on every log line a worker writes.

The logger is a real structlog processor chain (``merge_contextvars`` then ``JSONRenderer``) writing to an
in-memory text sink, built with ``wrap_logger`` so the test leaves structlog's global configuration alone.
Each worker also logs, as a plain argument, the id of the request that started it: the bound ``request_id``
must equal it on every line, also with concurrent requests on a shared pool. The control with plain threads
shows the bound value missing, so the first test cannot pass vacuously.

structlog is imported inside the functions: this module is collected (then deselected) in cells without it.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import threading
from typing import Any

import flask
import httpx
import pytest

import ctxsnap
from examples import flask_app
from tests.support import TIMEOUT

pytestmark = pytest.mark.interop

REQUESTS = 8
TASKS_PER_REQUEST = 3


def _logger(sink: io.StringIO) -> Any:
    import structlog

    return structlog.wrap_logger(
        structlog.WriteLogger(sink),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )


def _logged_app(log: Any, pool: concurrent.futures.Executor, thread_class: type[threading.Thread]) -> flask.Flask:
    from structlog.contextvars import bind_contextvars, clear_contextvars

    app = flask.Flask(__name__)

    @app.before_request
    def bind_request_id() -> None:
        clear_contextvars()
        bind_contextvars(request_id=flask.request.headers["X-Request-Id"])

    def work(worker: str, step: int, started_by: str) -> None:
        log.info("worker step", worker=worker, step=step, started_by=started_by)

    @app.route("/work")
    def view() -> str:
        sent = flask.request.headers["X-Request-Id"]
        log.info("view")
        thread = thread_class(target=work, args=("thread", 0, sent))
        thread.start()
        for future in [pool.submit(work, "task", step, sent) for step in range(TASKS_PER_REQUEST)]:
            future.result(timeout=TIMEOUT)
        thread.join(timeout=TIMEOUT)
        return "done"

    return app


def _drive(app: flask.Flask) -> None:
    def one(i: int) -> int:
        with httpx.Client(base_url=url, timeout=TIMEOUT, trust_env=False) as client:
            return client.get("/work", headers={"X-Request-Id": f"req-{i}"}).status_code

    with flask_app.serve(app) as url, concurrent.futures.ThreadPoolExecutor(4) as clients:
        assert list(clients.map(one, range(REQUESTS), timeout=TIMEOUT)) == [200] * REQUESTS


def _lines(sink: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def test_worker_log_lines_carry_the_request_id_bound_in_before_request() -> None:
    sink = io.StringIO()
    with ctxsnap.ThreadPoolExecutor(max_workers=2) as pool:
        _drive(_logged_app(_logger(sink), pool, ctxsnap.Thread))

    lines = _lines(sink)
    worker_lines = [line for line in lines if line["event"] == "worker step"]
    assert len(worker_lines) == REQUESTS * (TASKS_PER_REQUEST + 1)
    assert [line for line in worker_lines if line.get("request_id") != line["started_by"]] == []
    assert sorted(line["request_id"] for line in lines if line["event"] == "view") == [
        f"req-{i}" for i in range(REQUESTS)
    ]


def test_control_plain_threads_log_without_the_request_id() -> None:
    sink = io.StringIO()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        _drive(_logged_app(_logger(sink), pool, threading.Thread))

    worker_lines = [line for line in _lines(sink) if line["event"] == "worker step"]
    assert len(worker_lines) == REQUESTS * (TASKS_PER_REQUEST + 1)
    assert all("request_id" not in line for line in worker_lines)
