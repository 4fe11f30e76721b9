"""The Celery adapter on a real Redis broker and real workers (threads, prefork, solo).

Every task reports what it sees with ``carrier_support.observe``: the declared ContextVars and ``g`` attribute
must arrive, ``g`` inside an app context of the carrier's app, and the undeclared ContextVar and ``g`` attribute,
set in the same request, must not.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
from typing import Any

import pytest

import ctxsnap
from tests.adapters import carrier_support as support
from tests.support import TIMEOUT

pytestmark = pytest.mark.celery


def in_request(fn: Any, request_id: str = "req-1", **values: Any) -> Any:
    """Call ``fn()`` inside a Flask request, after the handler-like set-up, in a fresh context."""

    def body() -> Any:
        with support.WEB_APP.test_request_context("/"):
            support.set_request(request_id, **values)
            return fn()

    return contextvars.Context().run(body)


NOTHING = {key: None for key in support.EXPECTED_KEYS} | {"app_context": False, "request_context": False}


def test_task_sees_exactly_the_declared_values(celery_worker: Any, celery_app: Any) -> None:
    seen = in_request(lambda: celery_app.observe.delay()).get(timeout=TIMEOUT)
    assert support.view(seen) == support.declared_view("req-1")
    assert seen["app_name"] == "carrier_support"


def test_nothing_leaks_to_the_next_task(celery_worker: Any, celery_app: Any) -> None:
    """A task that sets everything, then tasks without values and a carrier-less task, on every worker slot."""
    slots = 1 if celery_worker.pool == "solo" else 4
    polluted = [
        in_request(lambda n=n: celery_app.observe_then_pollute.delay(), f"req-p{n}") for n in range(slots * 3)
    ]
    assert [support.view(p.get(timeout=TIMEOUT)) for p in polluted] == [
        support.declared_view(f"req-p{n}") for n in range(slots * 3)
    ]
    empty = [contextvars.Context().run(celery_app.observe.delay) for _ in range(slots * 3)]
    plain = [contextvars.Context().run(celery_app.observe_without_carrier.delay) for _ in range(slots * 3)]
    assert all(support.view(r.get(timeout=TIMEOUT)) == NOTHING for r in empty)
    assert all(support.view(r.get(timeout=TIMEOUT)) == NOTHING for r in plain)


def test_interleaved_requests_2000_tasks(celery_worker: Any, celery_app: Any) -> None:
    """2,000 tasks published from 8 threads' interleaved requests; each must see its own request's values."""
    per_thread, threads = 250, 8

    def requester(thread: int) -> list[tuple[str, Any]]:
        sent = []
        for n in range(per_thread):
            request_id = f"t{thread}-r{n}"
            result = in_request(lambda n=n: celery_app.echo.delay(n), request_id, tenant=thread, user_id=n)
            sent.append((request_id, result))
        return sent

    with concurrent.futures.ThreadPoolExecutor(threads) as requesters:
        batches = list(requesters.map(requester, range(threads)))
    mismatches = 0
    for thread, batch in enumerate(batches):
        for n, (request_id, result) in enumerate(batch):
            if result.get(timeout=TIMEOUT) != [n, request_id, thread, n, None]:
                mismatches += 1
    assert mismatches == 0


def test_retries_keep_the_original_payload(celery_worker: Any, celery_app: Any) -> None:
    seen = in_request(lambda: celery_app.flaky.delay(2), "req-retry").get(timeout=TIMEOUT)
    assert seen["retries"] == 2
    assert support.view(seen) == support.declared_view("req-retry")


def test_chain_group_and_chord_keep_the_carrier(celery_worker: Any, celery_app: Any) -> None:
    import celery  # type: ignore[import-untyped]  # Celery ships no type information

    chained = in_request(lambda: celery.chain(celery_app.echo.s(1), celery_app.echo.s()).delay(), "req-chain")
    # The second step gets the first step's result as its argument: the echo of it.
    assert chained.get(timeout=TIMEOUT) == [[1, "req-chain", "acme", 42, None], "req-chain", "acme", 42, None]
    grouped = in_request(lambda: celery.group(celery_app.echo.s(n) for n in range(3)).delay(), "req-group")
    assert grouped.get(timeout=TIMEOUT) == [[n, "req-group", "acme", 42, None] for n in range(3)]
    # The chord body is published by the worker that finishes the last header task, not by the caller.
    chord = in_request(
        lambda: celery.chord(celery_app.echo.s(n) for n in range(3))(celery_app.collect.s()), "req-chord"
    )
    outcome = chord.get(timeout=TIMEOUT)
    assert outcome["results"] == [[n, "req-chord", "acme", 42, None] for n in range(3)]
    assert support.view(outcome["seen"]) == support.declared_view("req-chord")


def test_delay_inside_a_task_forwards_the_current_values(celery_worker: Any, celery_app: Any) -> None:
    unchanged = in_request(lambda: celery_app.delay_nested.delay(None), "req-outer").get(timeout=TIMEOUT)
    changed = in_request(lambda: celery_app.delay_nested.delay("req-changed"), "req-outer").get(timeout=TIMEOUT)
    child = celery_app.app.AsyncResult(unchanged).get(timeout=TIMEOUT)
    changed_child = celery_app.app.AsyncResult(changed).get(timeout=TIMEOUT)
    assert support.view(child) == support.declared_view("req-outer")
    assert support.view(changed_child) == support.declared_view("req-changed")


def test_explicit_headers_win(celery_worker: Any, celery_app: Any) -> None:
    other = in_request(lambda: support.CARRIER.export(), "req-explicit")
    seen = in_request(lambda: celery_app.observe.apply_async(headers={"ctxsnap": str(other)}), "req-ignored").get(
        timeout=TIMEOUT
    )
    assert seen["request_id"] == "req-explicit"


def test_eager_mode_sees_what_a_worker_sees(celery_worker: Any, celery_app: Any) -> None:
    real = support.view(in_request(lambda: celery_app.observe.delay(), "req-same").get(timeout=TIMEOUT))
    app = celery_app.app
    app.conf.task_always_eager = True
    try:
        eager = support.view(in_request(lambda: celery_app.observe.delay(), "req-same").get())
    finally:
        app.conf.task_always_eager = False
    applied = support.view(in_request(lambda: celery_app.observe.apply(), "req-same").get())
    assert eager == applied == real == support.declared_view("req-same")


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"tenant": object()}, "the ContextVar 'tenant'"),
        ({"tenant": float("nan")}, "the ContextVar 'tenant'"),
        ({"tenant": {1: "int key"}}, "the ContextVar 'tenant'"),
        ({"user_id": {"nested": {1, 2}}}, "the g attribute 'user_id'"),
        ({"tenant": "x" * 9000}, "the ContextVar 'tenant'"),
    ],
)
def test_refused_values_raise_before_publishing(
    celery_app: Any, redis_client: Any, values: dict[str, Any], variable: str
) -> None:
    queue = celery_app.UNCONSUMED
    redis_client.delete(queue)
    calls = [
        lambda: celery_app.never_consumed.delay(),
        lambda: celery_app.never_consumed.apply_async(),
        lambda: celery_app.never_consumed.s().delay(),
    ]
    for call in calls:
        with pytest.raises(ctxsnap.UnportableValueError) as caught:
            in_request(call, "req-refused", **values)
        assert caught.value.variable == variable
        assert redis_client.llen(queue) == 0
    # The control: the same call with portable values does publish, so the length above could have changed.
    in_request(lambda: celery_app.never_consumed.delay(), "req-allowed")
    assert redis_client.llen(queue) == 1
    redis_client.delete(queue)


def test_tampered_payload_does_not_run(celery_worker: Any, celery_app: Any) -> None:
    forged = '{"v":1,"c":"ctxsnap-tests","d":{"vars":{"request_id":"x"}},"s":"0"}'
    unknown_version = '{"v":9,"c":"ctxsnap-tests","d":{}}'
    for payload, message in ((unknown_version, "version 9"), ("not a payload", "not a ctxsnap payload")):
        result = celery_app.observe.apply_async(headers={"ctxsnap": payload})
        with pytest.raises(ctxsnap.PayloadError, match=message):
            result.get(timeout=TIMEOUT)
    # An unsigned carrier ignores a signature it cannot check; a signed one refuses it (tests/core).
    assert (
        support.view(celery_app.observe.apply_async(headers={"ctxsnap": forged}).get(timeout=TIMEOUT))[
            "request_id"
        ]
        == "x"
    )


def test_install_is_checked(celery_app: Any) -> None:
    import celery

    from ctxsnap.adapters.celery import install

    late = celery.Celery("late")
    late.finalize()
    refusals: list[tuple[type[Exception], str, Any]] = [
        (
            ValueError,
            r"already installed on the Celery app .*\. Call install\(\) once",
            lambda: install(celery_app.app, support.CARRIER),
        ),
        (
            TypeError,
            r"takes a ctxsnap\.Carrier, got str\. Declare what crosses",
            lambda: install(celery.Celery("x"), "carrier"),  # type: ignore[arg-type]
        ),
        (
            TypeError,
            r"takes a celery\.Celery app, got object\. Pass the app itself",
            lambda: install(object(), support.CARRIER),
        ),
        (
            RuntimeError,
            r"after the Celery app 'late' created its tasks\. .*before defining tasks",
            lambda: install(late, support.CARRIER),
        ),
    ]
    for error, key_words, call in refusals:
        with pytest.raises(error, match=key_words) as caught:
            call()
        # The house style: what is wrong in under 12 words, then the way out.
        problem, _, way_out = str(caught.value).partition(". ")
        assert len(problem.split()) < 12 and way_out, caught.value


def test_flask_app_overrides_the_carriers_app(celery_worker: Any, celery_app: Any) -> None:
    seen = in_request(lambda: celery_app.observe_in_other_app.delay(), "req-other").get(timeout=TIMEOUT)
    assert seen["app_name"] == "other_app"
    assert support.view(seen) == support.declared_view("req-other")


def test_task_base_for_one_task_without_install(celery_app: Any) -> None:
    """``@celery_app.task(base=Task, carrier=carrier)`` on an app where install() was not called."""
    import celery

    from ctxsnap.adapters.celery import Task

    plain_app = celery.Celery("ctxsnap_per_task", broker="memory://")
    plain_app.conf.task_always_eager = True

    @plain_app.task(base=Task, carrier=support.CARRIER)  # type: ignore[untyped-decorator]  # Celery is untyped
    def carrying() -> dict[str, Any]:
        return support.observe()

    @plain_app.task  # type: ignore[untyped-decorator]  # Celery is untyped
    def not_carrying() -> dict[str, Any]:
        return support.observe()

    assert support.view(in_request(carrying.delay, "req-base").get()) == support.declared_view("req-base")
    # Eager without a carrier runs in the caller's own context: the request is right there.
    assert in_request(not_carrying.delay, "req-base").get()["request_context"] is True


def test_a_quart_app_holds_g_in_the_worker(celery_worker: Any, celery_app: Any) -> None:
    seen = in_request(lambda: celery_app.observe_in_quart_app.delay(), "req-quart").get(timeout=TIMEOUT)
    assert seen == {"request_id": "req-quart", "user_id": 42, "g_undeclared": None, "app_name": "quart_worker_app"}
