"""One wrapped callable run by many workers at once (pallets/flask#5252, #5396; Flask-Executor #53).

Flask's own decorator shares one request context between its runs and fails with "Popped wrong app context"
(Flask <= 2.0) or "Token ... was created in a different Context" (2.2 to 3.1); one shared ``copy_context()``
fails with "cannot enter context: ... is already entered". A snapshot copies per run, never per wrap.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.flask_support import request_id
from tests.support import TIMEOUT, Lifecycle

WORKERS = 4


def _overlapping_task(barrier: threading.Barrier) -> Any:
    def task(item: int) -> dict[str, Any]:
        # Every run waits for all the others: the four runs of this one wrapper provably overlap.
        barrier.wait(TIMEOUT)
        flask.g.item = item  # each run writes its own g
        barrier.wait(TIMEOUT)
        return {
            "item": flask.g.item,
            "user": flask.g.user,
            "path": flask.request.path,
            "var": request_id.get(),
            "thread": threading.get_ident(),
        }

    return task


def test_one_wrapped_callable_through_executor_map_on_four_workers(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    barrier = threading.Barrier(WORKERS)
    with app.test_request_context("/report"):
        flask.g.user = "ann"
        request_id.set("req-1")
        task = ctxsnap.wrap(_overlapping_task(barrier))
        results = list(pool.map(task, range(WORKERS), timeout=TIMEOUT))
        assert "item" not in flask.g

    assert [r["item"] for r in results] == list(range(WORKERS))
    assert {(r["user"], r["path"], r["var"]) for r in results} == {("ann", "/report", "req-1")}
    assert len({r["thread"] for r in results}) == WORKERS


def test_the_drop_in_decorator_survives_concurrent_runs(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    barrier = threading.Barrier(WORKERS)
    with app.test_request_context("/report"):
        flask.g.user = "ann"
        request_id.set("req-2")
        task = ctxsnap_flask.copy_current_request_context(_overlapping_task(barrier))
        results = list(pool.map(task, range(WORKERS), timeout=TIMEOUT))

    assert sorted(r["item"] for r in results) == list(range(WORKERS))
    assert {r["user"] for r in results} == {"ann"}


def test_the_ctxsnap_pool_map_in_a_view(app: flask.Flask) -> None:
    barrier = threading.Barrier(WORKERS)

    @app.route("/fan")
    def fan() -> dict[str, Any]:
        flask.g.user = "bob"
        request_id.set("req-3")
        with ctxsnap.ThreadPoolExecutor(max_workers=WORKERS) as executor:
            results = list(executor.map(_overlapping_task(barrier), range(WORKERS), timeout=TIMEOUT))
        return {"results": results}

    response = app.test_client().get("/fan")

    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["item"] for r in results] == list(range(WORKERS))
    assert {(r["user"], r["path"], r["var"]) for r in results} == {("bob", "/fan", "req-3")}


def test_teardown_mode_runs_concurrently_too(
    app: flask.Flask, pool: ThreadPoolExecutor, lifecycle: Lifecycle
) -> None:
    barrier = threading.Barrier(WORKERS)
    with app.test_request_context("/report"):
        flask.g.user = "ann"
        request_id.set("req-4")
        task = ctxsnap_flask.capture(teardown=True).wrap(_overlapping_task(barrier))
        results = list(pool.map(task, range(WORKERS), timeout=TIMEOUT))
        during_request = lifecycle.steps()

    assert [r["item"] for r in results] == list(range(WORKERS))
    # One teardown_appcontext per run, each in the thread that ran it; no teardown_request in any worker.
    assert sorted(during_request) == sorted(("teardown_appcontext", r["thread"]) for r in results)
    assert lifecycle.steps()[WORKERS:] == [
        ("teardown_request", threading.get_ident()),
        ("teardown_appcontext", threading.get_ident()),
    ]
