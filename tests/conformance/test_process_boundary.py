"""The process-boundary rows of the conformance suite: one carrier, every transport that takes one.

The thread-side table (``test_semantics.py``) does not apply across processes: nothing live crosses. These rows
are the carrier's own semantics, checked for every carrier transport the same way:

| row | rule |
| --- | --- |
| declared subset | from inside a request, the task sees the declared ContextVars and ``g`` attribute, ``g`` in an app context, no request, and neither the undeclared ContextVar nor the undeclared ``g`` attribute |
| no leak | a task that sets everything is followed, on the same worker, by tasks that see nothing |
| refusal before sending | an unportable value raises ``UnportableValueError`` at the call, and nothing reaches the worker |
| eager fidelity | the in-process path (``carrier.wrap(fn)()``; Celery's eager mode) sees what the worker sees |

Transports: ``ctxsnap.ProcessPoolExecutor`` (fork, forkserver, spawn), ``ContextExecutor`` over a standard
process pool, ``multiprocessing.Pool`` with ``carrier.wrap``, and Celery on a real Redis (threads, prefork and
solo workers; the ``celery`` marker, main cell).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ctxsnap
from tests.adapters import carrier_support as support
from tests.support import PROCESS_TIMEOUT as TIMEOUT

NOTHING = {key: None for key in support.EXPECTED_KEYS} | {"app_context": False, "request_context": False}


def in_request(fn: Callable[[], Any], request_id: str = "req-1", **values: Any) -> Any:
    def body() -> Any:
        with support.WEB_APP.test_request_context("/"):
            support.set_request(request_id, **values)
            return fn()

    return contextvars.Context().run(body)


class ProcessTransport:
    """``send(fn, *args)`` hands ``fn`` to one worker process through the transport; returns a result getter."""

    def __init__(self, name: str) -> None:
        self.name = name
        method = {"pool-forkserver": "forkserver", "pool-spawn": "spawn", "context-executor": "spawn"}.get(
            name, "fork"
        )
        context = multiprocessing.get_context(method)
        self._mp_pool: Any = None
        self._executor: Any = None
        if name.startswith("pool-"):
            self._executor = ctxsnap.ProcessPoolExecutor(1, carrier=support.CARRIER, mp_context=context)
        elif name == "context-executor":
            self._executor = ctxsnap.ContextExecutor(
                concurrent.futures.ProcessPoolExecutor(1, mp_context=context), carrier=support.CARRIER
            )
        else:
            self._mp_pool = context.Pool(1)

    def send(self, fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        if self._executor is not None:
            future = self._executor.submit(fn, *args)
            return lambda: future.result(TIMEOUT)
        async_result = self._mp_pool.apply_async(support.CARRIER.wrap(fn), args)
        return lambda: async_result.get(TIMEOUT)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
        else:
            self._mp_pool.close()
            self._mp_pool.join()


@pytest.fixture(
    scope="module", params=["pool-fork", "pool-forkserver", "pool-spawn", "context-executor", "mp-pool-wrap"]
)
def transport(request: pytest.FixtureRequest) -> Iterator[ProcessTransport]:
    opened = ProcessTransport(str(request.param))
    try:
        yield opened
    finally:
        opened.close()


# -- process transports -----------------------------------------------------------------------------------------


def test_declared_subset__processes(transport: ProcessTransport) -> None:
    seen = in_request(lambda: transport.send(support.observe))()
    assert support.view(seen) == support.declared_view("req-1")


def test_no_leak__processes(transport: ProcessTransport) -> None:
    polluted = in_request(lambda: transport.send(support.observe_then_pollute), "req-p")()
    after = contextvars.Context().run(lambda: transport.send(support.observe))()
    assert polluted["pid"] == after["pid"]
    assert support.view(polluted) == support.declared_view("req-p")
    assert support.view(after) == NOTHING


def test_refusal_before_sending__processes(transport: ProcessTransport, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ctxsnap.UnportableValueError, match="the ContextVar 'tenant'"):
        in_request(lambda: transport.send(support.touch, str(marker)), tenant=object())
    # The control: the same call with portable values does reach the worker.
    in_request(lambda: transport.send(support.touch, str(marker)))()
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ctxsnap.UnportableValueError, match="the g attribute 'user_id'"):
        in_request(lambda: transport.send(support.touch, str(marker)), user_id=float("inf"))
    transport.send(support.observe)()  # anything sent before this would have run by now
    assert not marker.exists()


def test_eager_fidelity__processes(transport: ProcessTransport) -> None:
    remote = in_request(lambda: transport.send(support.observe), "req-e")()
    here = in_request(lambda: support.CARRIER.wrap(support.observe), "req-e")()
    assert support.view(here) == support.view(remote) == support.declared_view("req-e")


# -- Celery on a real Redis -------------------------------------------------------------------------------------


@pytest.mark.celery
def test_declared_subset__celery(celery_worker: Any, celery_app: Any) -> None:
    seen = in_request(celery_app.observe.delay).get(timeout=TIMEOUT)
    assert support.view(seen) == support.declared_view("req-1")


@pytest.mark.celery
def test_no_leak__celery(celery_worker: Any, celery_app: Any) -> None:
    slots = 1 if celery_worker.pool == "solo" else 4
    polluted = [in_request(celery_app.observe_then_pollute.delay, f"req-{n}") for n in range(slots * 2)]
    assert [support.view(r.get(timeout=TIMEOUT)) for r in polluted] == [
        support.declared_view(f"req-{n}") for n in range(slots * 2)
    ]
    after = [contextvars.Context().run(celery_app.observe.delay) for _ in range(slots * 2)]
    assert [support.view(r.get(timeout=TIMEOUT)) for r in after] == [NOTHING] * (slots * 2)


@pytest.mark.celery
def test_refusal_before_sending__celery(celery_app: Any, redis_client: Any) -> None:
    queue = celery_app.UNCONSUMED
    redis_client.delete(queue)
    with pytest.raises(ctxsnap.UnportableValueError, match="the ContextVar 'tenant'"):
        in_request(celery_app.never_consumed.delay, tenant=object())
    assert redis_client.llen(queue) == 0
    in_request(celery_app.never_consumed.delay)
    assert redis_client.llen(queue) == 1
    redis_client.delete(queue)


@pytest.mark.celery
def test_eager_fidelity__celery(celery_worker: Any, celery_app: Any) -> None:
    remote = in_request(celery_app.observe.delay, "req-e").get(timeout=TIMEOUT)
    celery_app.app.conf.task_always_eager = True
    try:
        eager = in_request(celery_app.observe.delay, "req-e").get()
    finally:
        celery_app.app.conf.task_always_eager = False
    assert support.view(eager) == support.view(remote) == support.declared_view("req-e")
