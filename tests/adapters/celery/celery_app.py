"""The Celery app the tests' real workers run: every task carries ``carrier_support.CARRIER``.

Workers import it by name (``celery -A tests.adapters.celery.celery_app worker``) and find the carrier by
importing ``tests.adapters.carrier_support``, as a production worker imports the module that defines its
carrier. Broker and result backend are the Redis at ``CTXSNAP_REDIS_URL``.
"""

from __future__ import annotations

import os
from typing import Any

import celery  # type: ignore[import-untyped]  # Celery ships no type information

from ctxsnap.adapters.celery import install
from tests.adapters import carrier_support as support

REDIS_URL = os.environ.get("CTXSNAP_REDIS_URL", "memory://")
#: A queue no worker consumes: refusal tests compare its length before and after.
UNCONSUMED = "ctxsnap-unconsumed"

app = celery.Celery("ctxsnap_tests", broker=REDIS_URL, backend=REDIS_URL if REDIS_URL != "memory://" else None)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
    task_routes={"ctxsnap_tests.never_consumed": {"queue": UNCONSUMED}},
)
install(app, support.CARRIER)


@app.task  # type: ignore[untyped-decorator]  # Celery is untyped
def observe() -> dict[str, Any]:
    return support.observe()


@app.task  # type: ignore[untyped-decorator]  # Celery is untyped
def observe_then_pollute() -> dict[str, Any]:
    return support.observe_then_pollute()


@app.task(base=celery.Task)  # type: ignore[untyped-decorator]  # Celery is untyped
def observe_without_carrier() -> dict[str, Any]:
    """A task of another base, not carrying: it must see nothing that an earlier carrying task set."""
    return support.observe()


@app.task  # type: ignore[untyped-decorator]  # Celery is untyped
def echo(number: int) -> list[Any]:
    seen = support.observe()
    return [number, seen["request_id"], seen["tenant"], seen["user_id"], seen["undeclared"]]


@app.task(bind=True, max_retries=3, default_retry_delay=0)  # type: ignore[untyped-decorator]  # Celery is untyped
def flaky(self: Any, fail_times: int) -> dict[str, Any]:
    """Retries ``fail_times`` times; changes a declared value first, which the retry must not carry."""
    seen = support.observe()
    if self.request.retries < fail_times:
        support.REQUEST_ID.set(f"changed-before-retry-{self.request.retries}")
        raise self.retry(countdown=0)
    return {**seen, "retries": self.request.retries}


@app.task  # type: ignore[untyped-decorator]  # Celery is untyped
def delay_nested(new_request_id: str | None) -> str:
    """Publishes a child from inside the body; with ``new_request_id`` it changes the declared value first."""
    if new_request_id is not None:
        support.REQUEST_ID.set(new_request_id)
    return str(observe.delay().id)


@app.task  # type: ignore[untyped-decorator]  # Celery is untyped
def collect(results: list[Any]) -> dict[str, Any]:
    return {"results": results, "seen": support.observe()}


@app.task(name="ctxsnap_tests.never_consumed")  # type: ignore[untyped-decorator]  # Celery is untyped
def never_consumed() -> None:  # pragma: no cover - no worker consumes its queue
    raise AssertionError("no worker consumes this queue")


def other_app() -> Any:
    import flask

    return flask.Flask("other_app")


@app.task(flask_app=other_app)  # type: ignore[untyped-decorator]  # Celery is untyped
def observe_in_other_app() -> dict[str, Any]:
    """``flask_app=`` on one task overrides the carrier's app for ``g``."""
    return support.observe()


def quart_app() -> Any:
    import quart

    return quart.Quart("quart_worker_app")


@app.task(flask_app=quart_app)  # type: ignore[untyped-decorator]  # Celery is untyped
def observe_in_quart_app() -> dict[str, Any]:
    """A Quart app holds the carried g in the worker (``install(..., flask_app=quart_app)`` works the same)."""
    import quart

    in_app = quart.has_app_context()
    return {
        "request_id": support.REQUEST_ID.get(None),
        "user_id": quart.g.get("user_id") if in_app else None,
        "g_undeclared": quart.g.get("undeclared") if in_app else None,
        "app_name": quart.current_app.name if in_app else None,
    }
