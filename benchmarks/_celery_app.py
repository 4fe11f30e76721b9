"""The Celery app of the carrier benchmark: one carrying task and one plain task, the same body.

The worker process imports it by name (``celery -A benchmarks._celery_app worker``); the broker and result
backend are the Redis at ``CTXSNAP_BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

import celery

import ctxsnap
from ctxsnap.adapters.celery import install

URL = os.environ.get("CTXSNAP_BENCH_REDIS_URL", "memory://")

#: Five declared values, as a request id, tenant, user, locale and trace id would be.
VARIABLES: tuple[ContextVar[Any], ...] = tuple(ContextVar(f"bench_value_{i}") for i in range(5))
VALUES: tuple[Any, ...] = ("req-7f3a9c2e", "tenant-acme", 424242, "en-GB", "4bf92f3577b34da6a3ce929d0e0e4736")

carrier = ctxsnap.Carrier("ctxsnap-bench", vars=list(VARIABLES))

app = celery.Celery("ctxsnap_bench", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
    result_expires=600,
)
install(app, carrier)


def set_values() -> None:
    for var, value in zip(VARIABLES, VALUES, strict=True):
        var.set(value)


@app.task(name="bench.carried")
def carried() -> Any:
    return VARIABLES[0].get(None)


@app.task(name="bench.plain", base=celery.Task)
def plain() -> Any:
    return VARIABLES[0].get(None)


def read_first() -> Any:
    """The process-pool task: picklable by reference, reads one carried value."""
    return VARIABLES[0].get(None)
