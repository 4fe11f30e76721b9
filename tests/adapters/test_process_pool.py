"""Process pools: only the carrier's declared values cross, under fork, forkserver and spawn.

Every test runs real worker processes. A forked child inherits its parent's variables (none of them declared),
so each child task must start from an empty context: the probe reports the undeclared ContextVar and ``g``
attribute too, set in the parent just before the submit, and they must arrive as nothing.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest

import ctxsnap
from tests.adapters import carrier_support as support
from tests.support import PROCESS_TIMEOUT as TIMEOUT

METHODS = ["fork", "forkserver", "spawn"]


def in_request(fn: Any, request_id: str = "req-1", **values: Any) -> Any:
    """Call ``fn()`` inside a Flask request of the web app, after the handler-like set-up, in a fresh context."""

    def body() -> Any:
        with support.WEB_APP.test_request_context("/"):
            support.set_request(request_id, **values)
            return fn()

    return contextvars.Context().run(body)


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pool(method: str) -> Iterator[ctxsnap.ProcessPoolExecutor]:
    with ctxsnap.ProcessPoolExecutor(
        1, carrier=support.CARRIER, mp_context=multiprocessing.get_context(method)
    ) as p:
        yield p


def test_child_sees_exactly_the_declared_values(pool: ctxsnap.ProcessPoolExecutor) -> None:
    seen = in_request(lambda: pool.submit(support.observe).result(TIMEOUT))
    assert support.view(seen) == support.declared_view("req-1")
    assert seen["app_name"] == "carrier_support"


def test_context_executor_with_a_carrier(method: str) -> None:
    processes = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method))
    with ctxsnap.ContextExecutor(processes, carrier=support.CARRIER) as executor:
        seen = in_request(lambda: executor.submit(support.observe).result(TIMEOUT), "req-ce")
        mapped = in_request(
            lambda: list(executor.map(support.echo_request_id, [1, 2], timeout=TIMEOUT)), "req-map"
        )
    assert support.view(seen) == support.declared_view("req-ce")
    assert mapped == [(1, "req-map"), (2, "req-map")]


def test_nothing_leaks_to_the_next_task(method: str) -> None:
    """One worker process: a task that sets everything is followed by an empty-payload task and a raw task."""
    context = multiprocessing.get_context(method)
    with ctxsnap.ProcessPoolExecutor(1, carrier=support.CARRIER, mp_context=context) as pool:
        raw_before = concurrent.futures.ProcessPoolExecutor.submit(pool, support.observe).result(TIMEOUT)
        first = in_request(lambda: pool.submit(support.observe_then_pollute).result(TIMEOUT), "req-a")
        # Submitted outside any request and with no declared value set: the carrier has nothing to carry.
        after = contextvars.Context().run(lambda: pool.submit(support.observe).result(TIMEOUT))
        raw_after = concurrent.futures.ProcessPoolExecutor.submit(pool, support.observe).result(TIMEOUT)
    assert support.view(first) == support.declared_view("req-a")
    assert first["pid"] == after["pid"] == raw_after["pid"]
    assert support.view(after) == {key: None for key in support.EXPECTED_KEYS} | {
        "app_context": False,
        "request_context": False,
    }
    # The worker's own context after a carried task is what it was before: the task's writes went nowhere.
    assert support.view(raw_after) == support.view(raw_before)


def test_interleaved_requests_see_their_own_values(pool: ctxsnap.ProcessPoolExecutor) -> None:
    futures = [in_request(lambda n=n: pool.submit(support.echo_request_id, n), f"req-{n}") for n in range(40)]
    assert [f.result(TIMEOUT) for f in futures] == [(n, f"req-{n}") for n in range(40)]


def test_refused_value_raises_at_submit_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with ctxsnap.ProcessPoolExecutor(1, carrier=support.CARRIER) as pool:
        for bad in (object(), float("nan"), (1, {2: "x"})):
            with pytest.raises(ctxsnap.UnportableValueError, match="the ContextVar 'tenant'") as caught:
                in_request(lambda: pool.submit(support.touch, str(marker)), tenant=bad)
            assert "acme" not in str(caught.value)
        with pytest.raises(ctxsnap.UnportableValueError, match="the g attribute 'user_id'"):
            in_request(lambda: pool.submit(support.touch, str(marker)), user_id={"when": object()})
        with pytest.raises(ctxsnap.UnportableValueError, match="the ContextVar 'tenant'"):
            in_request(lambda: pool.map(support.touch, [str(marker)]), tenant=object())
    assert not marker.exists()


def test_task_errors_propagate() -> None:
    with (
        ctxsnap.ProcessPoolExecutor(1, carrier=support.CARRIER) as pool,
        pytest.raises(LookupError, match="raised by the task"),
    ):
        in_request(lambda: pool.submit(support.fail).result(TIMEOUT))


def test_app_factory_runs_once_per_worker_process(pool: ctxsnap.ProcessPoolExecutor) -> None:
    seen = [in_request(lambda: pool.submit(support.observe).result(TIMEOUT), f"r{n}") for n in range(3)]
    assert len({s["pid"] for s in seen}) == 1
    created = [s["apps_created"] for s in seen]
    # A forked child inherits the parent's count (the parent may have made apps in earlier tests); the
    # factory adds exactly one in the child, on its first carried g, and never again.
    assert created[0] >= 1 and created == [created[0]] * 3


def test_signed_carrier_through_a_pool() -> None:
    with ctxsnap.ProcessPoolExecutor(1, carrier=support.SIGNED) as pool:
        seen = in_request(lambda: pool.submit(support.observe).result(TIMEOUT), "req-signed")
    assert (seen["request_id"], seen["user_id"], seen["tenant"]) == ("req-signed", 42, None)


def test_carrier_wrap_for_multiprocessing_pool(method: str) -> None:
    wrapped = in_request(lambda: support.CARRIER.wrap(support.observe), "req-wrap")
    with multiprocessing.get_context(method).Pool(1) as mp_pool:
        seen = mp_pool.apply_async(wrapped).get(TIMEOUT)
        echoed = mp_pool.map(in_request(lambda: support.CARRIER.wrap(support.echo_request_id), "req-m"), [7, 8])
    assert support.view(seen) == support.declared_view("req-wrap")
    assert echoed == [(7, "req-m"), (8, "req-m")]


def test_a_process_pool_needs_a_carrier() -> None:
    with pytest.raises(TypeError, match="ProcessPoolExecutor\\(carrier=...\\) takes a ctxsnap.Carrier"):
        ctxsnap.ProcessPoolExecutor(1, carrier=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="carrier"):
        ctxsnap.ProcessPoolExecutor(1)  # type: ignore[call-arg]
    processes = concurrent.futures.ProcessPoolExecutor(1)
    try:
        with pytest.raises(TypeError, match="without a carrier.*pass carrier="):
            ctxsnap.ContextExecutor(processes)
        with pytest.raises(TypeError, match="carrier= or include=/exclude=, not both"):
            ctxsnap.ContextExecutor(processes, carrier=support.CARRIER, include=["contextvars"])
    finally:
        processes.shutdown()


def test_g_without_an_app_is_a_clear_error() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("appless_id")
    appless = ctxsnap.Carrier("ctxsnap-tests-appless", vars=[var], g=["user_id"])
    app = flask.Flask("appless")

    def export() -> str:
        with app.app_context():
            flask.g.user_id = 1
            return appless.export()

    payload = export()
    with pytest.raises(RuntimeError, match="carries g but has no app.*Pass app="):
        appless.run(payload, support.observe)
