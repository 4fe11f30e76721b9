"""The real OpenTelemetry SDK: a span started in a worker is a child of the request's span.

OpenTelemetry keeps the current span in a ContextVar (its ``contextvars`` runtime context). The app starts the
request span in ``before_request`` and ends it in ``teardown_request``, as the Flask instrumentation does, and
the workers (a ctxsnap pool task and a ``ctxsnap.Thread``) start spans of their own. With plain threads the
worker spans are roots of new traces: the control test shows that, so the first one cannot pass vacuously.

The SDK is imported inside the fixture: this module is collected (then deselected) in cells without it.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

import flask
import httpx
import pytest

import ctxsnap
from examples import flask_app
from tests.support import TIMEOUT

pytestmark = pytest.mark.interop

REQUESTS = 6


@pytest.fixture
def tracing() -> Iterator[tuple[Any, Any]]:
    """A private TracerProvider (the global one can be set only once per process) exporting to memory."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("ctxsnap-interop"), exporter
    provider.shutdown()


def _traced_app(
    tracer: Any, pool: concurrent.futures.Executor, thread_class: type[threading.Thread]
) -> flask.Flask:
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    app = flask.Flask(__name__)

    @app.before_request
    def start_request_span() -> None:
        request_id = flask.request.headers["X-Request-Id"]
        span = tracer.start_span(f"request {request_id}")
        flask.g.otel = (span, otel_context.attach(trace.set_span_in_context(span)))

    @app.teardown_request
    def end_request_span(exc: BaseException | None) -> None:
        span, token = flask.g.otel
        otel_context.detach(token)
        span.end()

    def work(label: str) -> None:
        # Name the span after the request the worker can see, if any, to match it to its request later.
        seen = flask.request.headers["X-Request-Id"] if flask.has_request_context() else "none"
        with tracer.start_as_current_span(f"{label} {seen}"):
            pass

    @app.route("/work")
    def view() -> str:
        thread = thread_class(target=work, args=("thread",))
        thread.start()
        pool.submit(work, "task").result(timeout=TIMEOUT)
        thread.join(timeout=TIMEOUT)
        return "done"

    return app


def _drive(app: flask.Flask) -> None:
    def one(i: int) -> int:
        with httpx.Client(base_url=url, timeout=TIMEOUT, trust_env=False) as client:
            return client.get("/work", headers={"X-Request-Id": f"req-{i}"}).status_code

    with flask_app.serve(app) as url, concurrent.futures.ThreadPoolExecutor(3) as clients:
        assert list(clients.map(one, range(REQUESTS), timeout=TIMEOUT)) == [200] * REQUESTS


def test_worker_spans_are_children_of_their_request_span(tracing: tuple[Any, Any]) -> None:
    tracer, exporter = tracing
    with ctxsnap.ThreadPoolExecutor(max_workers=2) as pool:
        _drive(_traced_app(tracer, pool, ctxsnap.Thread))

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert len(spans) == REQUESTS * 3
    for i in range(REQUESTS):
        parent = spans[f"request req-{i}"]
        for label in ("task", "thread"):
            child = spans[f"{label} req-{i}"]
            assert child.context.trace_id == parent.context.trace_id, child.name
            assert child.parent is not None and child.parent.span_id == parent.context.span_id, child.name
    # Six requests, six traces: concurrent requests never adopted each other's spans.
    assert len({span.context.trace_id for span in spans.values()}) == REQUESTS


def test_control_plain_threads_start_new_traces(tracing: tuple[Any, Any]) -> None:
    tracer, exporter = tracing
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        _drive(_traced_app(tracer, pool, threading.Thread))

    worker_spans = [span for span in exporter.get_finished_spans() if not span.name.startswith("request")]
    assert len(worker_spans) == REQUESTS * 2
    # No request context and no current span in the worker: every worker span is the root of its own trace.
    assert all(span.parent is None for span in worker_spans)
    assert {span.name for span in worker_spans} == {"task none", "thread none"}
