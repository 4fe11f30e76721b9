"""A second Celery app for the tests, with OpenTelemetry's CeleryInstrumentor and Sentry's Celery integration.

The worker process that imports it instruments itself as a production worker would (``worker_process_init`` is
where OpenTelemetry's docs put it; the threads and solo pools have no child process, so it also runs at import).
Sentry gets a DSN and a transport that drops every envelope: its integration is fully active, nothing is sent.
"""

from __future__ import annotations

import os
from typing import Any

import celery  # type: ignore[import-untyped]  # Celery ships no type information
from celery.signals import worker_process_init  # type: ignore[import-untyped]

from ctxsnap.adapters.celery import install
from tests.adapters import carrier_support as support

QUEUE = "ctxsnap-traced"
URL = os.environ.get("CTXSNAP_REDIS_URL", "memory://")

app = celery.Celery("ctxsnap_traced", broker=URL, backend=URL if URL != "memory://" else None)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
)
install(app, support.CARRIER)

_instrumented = False


def instrument() -> None:
    """OpenTelemetry (SDK tracer provider, CeleryInstrumentor) and Sentry (CeleryIntegration), once per process."""
    global _instrumented
    if _instrumented:
        return
    _instrumented = True
    import sentry_sdk
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.transport import Transport

    class DropEverything(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    trace.set_tracer_provider(TracerProvider())
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]  # its constructor is unannotated
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=DropEverything,
        traces_sample_rate=1.0,
        integrations=[CeleryIntegration()],
        default_integrations=False,
    )


@worker_process_init.connect  # type: ignore[untyped-decorator]  # Celery is untyped
def _instrument_child(**_: Any) -> None:
    instrument()


@app.task(name="traced.observe")  # type: ignore[untyped-decorator]  # Celery is untyped
def observe() -> dict[str, Any]:
    from opentelemetry import trace

    seen = support.observe()
    seen["trace_id"] = format(trace.get_current_span().get_span_context().trace_id, "032x")
    return seen


# The threads and solo pools run tasks in this process: instrument at import too (once; the signal then no-ops).
instrument()
