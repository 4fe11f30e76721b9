"""ctxsnap coexists with OpenTelemetry's CeleryInstrumentor and Sentry's Celery integration, on real workers.

Both are active in the caller (this process) and in the worker. The task must see the caller's trace (the trace
id of the span that was current at ``.delay()``) and exactly the declared values, on each pool.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Any

import pytest

from tests._celery_fixtures import Worker
from tests.adapters import carrier_support as support
from tests.support import PROCESS_TIMEOUT, TIMEOUT

pytestmark = pytest.mark.celery


@pytest.fixture(scope="module")
def traced(celery_app: Any) -> Any:
    # celery_app first: it sets CTXSNAP_REDIS_URL, which this app reads at import.
    from tests.adapters.celery import celery_traced_app

    celery_traced_app.instrument()
    return celery_traced_app


@pytest.fixture(scope="module", params=["threads", "prefork", "solo"])
def traced_worker(request: pytest.FixtureRequest, traced: Any, redis_url: str) -> Iterator[Worker]:
    pool = str(request.param)
    running = Worker(
        pool,
        1 if pool == "solo" else 2,
        redis_url,
        traced.QUEUE,
        app_module="tests.adapters.celery.celery_traced_app",
    )
    try:
        try:
            contextvars.Context().run(traced.observe.delay).get(timeout=PROCESS_TIMEOUT)
        except Exception as exc:
            raise RuntimeError(f"the {pool} worker did not start:\n{running.output()}") from exc
        yield running
    finally:
        running.stop()


def _in_span(send: Any, request_id: str) -> tuple[str, Any]:
    from opentelemetry import trace

    def body() -> tuple[str, Any]:
        with support.WEB_APP.test_request_context("/"):
            support.set_request(request_id)
            with trace.get_tracer("ctxsnap-tests").start_as_current_span("request") as span:
                return format(span.get_span_context().trace_id, "032x"), send()

    return contextvars.Context().run(body)


def test_trace_and_declared_values_reach_the_task(traced_worker: Worker, traced: Any) -> None:
    trace_id, result = _in_span(traced.observe.delay, "req-traced")
    seen = result.get(timeout=TIMEOUT)
    assert seen["trace_id"] == trace_id
    assert support.view(seen) == support.declared_view("req-traced")
    # The next task, sent outside any span and request, sees neither the values nor that trace.
    after = contextvars.Context().run(traced.observe.delay).get(timeout=TIMEOUT)
    assert support.view(after)["request_id"] is None and after["trace_id"] != trace_id


def test_eager_mode_with_both_integrations(traced: Any) -> None:
    traced.app.conf.task_always_eager = True
    try:
        _, result = _in_span(traced.observe.delay, "req-eager")
    finally:
        traced.app.conf.task_always_eager = False
    assert support.view(result.get()) == support.declared_view("req-eager")
