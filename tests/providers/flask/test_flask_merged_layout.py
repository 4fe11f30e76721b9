"""The next Flask, whose app context holds the request (pallets/flask#5812), before that release exists.

The adapter detects the layout from what ``flask.globals`` holds, never from a version number. These tests run
it in a fresh interpreter against ``merged_flask/``, a stand-in that reproduces the merged design's contexts
(one ``_cv_app``, one object with ``g``, ``_request`` and ``_session``, whose pop runs teardown_request,
``request.close()`` and teardown_appcontext), and hold it to the same semantics as every real Flask: a private
``g``, the request readable, nothing of the lifecycle in the worker, and teardown mode running only
teardown_appcontext. They need no real Flask, so they run in every cell of the matrix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support import TIMEOUT

ROOT = Path(__file__).resolve().parents[3]
STAND_IN = Path(__file__).resolve().parent / "merged_flask"

PRELUDE = """
import json, threading
from concurrent.futures import ThreadPoolExecutor
import flask
import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from ctxsnap.providers import flask as flask_providers
from tests.support import TIMEOUT

assert flask.__file__.startswith({stand_in!r}), flask.__file__
app = flask.Flask("merged")
calls = []

@app.teardown_request
def record_teardown_request(exc):
    calls.append(["teardown_request", threading.get_ident()])

@app.teardown_appcontext
def record_teardown_appcontext(exc):
    calls.append(["teardown_appcontext", threading.get_ident()])

def seen():
    return {{"app": flask.has_app_context(), "request": flask.has_request_context()}}

pool = ThreadPoolExecutor(max_workers=4)
report = {{"layout": flask_providers.LAYOUT, "main": threading.get_ident()}}
"""


def _run(body: str) -> dict[str, Any]:
    code = textwrap.dedent(PRELUDE).format(stand_in=str(STAND_IN)) + textwrap.dedent(body)
    code += "\npool.shutdown()\nreport['calls'] = calls\nprint(json.dumps(report))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(STAND_IN), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["layout"] == "contextvars-merged"
    return report


def _threads(report: dict[str, Any], kind: str) -> list[int]:
    return [thread for name, thread in report["calls"] if name == kind]


def test_the_worker_gets_a_private_g_and_the_request_and_nothing_of_the_lifecycle() -> None:
    report = _run(
        """
        def task():
            before = flask.g.user
            flask.g.user = "worker"
            return [before, flask.request.path, flask.request.headers["X-Id"], flask.session["cart"],
                    flask.current_app.name, threading.get_ident()]

        with app.test_request_context("/report", headers={"X-Id": "r-1"}):
            flask.session["cart"] = 3
            flask.g.user = "ann"
            request_object = flask.request._get_current_object()
            report["worker"] = pool.submit(ctxsnap.wrap(task)).result()
            report["parent_g"] = flask.g.user
            report["closed_while_open"] = request_object.closed
            report["calls_before_pop"] = list(calls)
        report["closed_after_pop"] = request_object.closed
        """
    )
    before, path, header, cart, app_name, worker_thread = report["worker"]
    assert [before, path, header, cart, app_name] == ["ann", "/report", "r-1", 3, "merged"]
    assert worker_thread != report["main"]
    assert report["parent_g"] == "ann"
    # Nothing ran in the worker: the request is still open and no teardown ran until the parent's own pop.
    assert report["closed_while_open"] is False
    assert report["calls_before_pop"] == []
    assert _threads(report, "teardown_request") == [report["main"]]
    assert _threads(report, "teardown_appcontext") == [report["main"]]
    assert report["closed_after_pop"] is True


def test_one_wrapped_callable_runs_in_four_workers_at_once_each_with_its_own_g() -> None:
    report = _run(
        """
        barrier = threading.Barrier(4)

        def task(n):
            barrier.wait(TIMEOUT)
            flask.g.user = f"worker-{n}"
            barrier.wait(TIMEOUT)
            return flask.g.user

        with app.test_request_context("/fan"):
            flask.g.user = "ann"
            wrapped = ctxsnap.wrap(task)
            report["results"] = list(pool.map(wrapped, range(4)))
            report["parent_g"] = flask.g.user
        """
    )
    assert report["results"] == [f"worker-{n}" for n in range(4)]
    assert report["parent_g"] == "ann"


def test_teardown_mode_runs_teardown_appcontext_once_in_the_worker_and_never_the_requests() -> None:
    report = _run(
        """
        class Connection:
            closed = False

        @app.teardown_appcontext
        def close_db(exc):
            db = flask.g.pop("db", None)
            if db is not None:
                db.closed = True

        def task():
            flask.g.db = Connection()
            return [flask.request.path, flask.g.user, threading.get_ident()]

        with app.test_request_context("/teardown"):
            flask.g.user = "ann"
            flask.g.db = parent_db = Connection()
            request_object = flask.request._get_current_object()
            snap = ctxsnap_flask.capture(teardown=True)
            report["worker"] = pool.submit(snap.wrap(task)).result()
            report["calls_in_request"] = list(calls)
            report["parent_db_closed"] = parent_db.closed
            report["closed_while_open"] = request_object.closed
            report["after"] = pool.submit(seen).result()
        """
    )
    path, user, worker_thread = report["worker"]
    assert [path, user] == ["/teardown", "ann"]
    assert report["calls_in_request"] == [["teardown_appcontext", worker_thread]]
    assert report["parent_db_closed"] is False
    assert report["closed_while_open"] is False
    assert report["after"] == {"app": False, "request": False}
    assert _threads(report, "teardown_request") == [report["main"]]


@pytest.mark.parametrize(
    ("exclude", "expected"),
    [
        (["flask.request"], {"app": True, "request": False, "user": "ann"}),
        (["flask.app"], {"app": True, "request": True, "user": None}),
        (["flask"], {"app": False, "request": False, "user": None}),
    ],
)
def test_exclude_leaves_out_what_it_names(exclude: list[str], expected: dict[str, Any]) -> None:
    report = _run(
        f"""
        def task():
            return {{**seen(), "user": flask.g.get("user") if flask.has_app_context() else None}}

        with app.test_request_context("/excluded"):
            flask.g.user = "ann"
            report["worker"] = pool.submit(ctxsnap.capture(exclude={exclude!r}).wrap(task)).result()
        """
    )
    assert report["worker"] == expected


def test_app_context_only_and_no_context_at_all() -> None:
    report = _run(
        """
        def task():
            return {**seen(), "user": flask.g.get("user") if flask.has_app_context() else None}

        with app.app_context():
            flask.g.user = "cli"
            report["app_only"] = pool.submit(ctxsnap.wrap(task)).result()
        report["none"] = pool.submit(ctxsnap.wrap(task)).result()
        report["worker_after"] = pool.submit(seen).result()
        """
    )
    assert report["app_only"] == {"app": True, "request": False, "user": "cli"}
    assert report["none"] == {"app": False, "request": False, "user": None}
    assert report["worker_after"] == {"app": False, "request": False}


def test_teardown_mode_hands_the_exception_and_the_inherited_g_to_teardown_appcontext() -> None:
    # Flask main's do_teardown_appcontext(ctx, exc=None) takes the context first: called the old way, with the
    # exception alone, it took the exception for the context and every handler saw None.
    report = _run(
        """
        seen = []

        @app.teardown_appcontext
        def record_exc(exc):
            seen.append([type(exc).__name__ if exc else None, flask.g.request_id])

        def fail():
            raise LookupError("task failed")

        with app.test_request_context("/teardown"):
            flask.g.request_id = "req-3"
            snap = ctxsnap_flask.capture(teardown=True)
            try:
                pool.submit(snap.wrap(fail)).result()
            except LookupError as exc:
                report["raised"] = str(exc)
            report["result"] = pool.submit(snap.wrap(lambda: "done")).result()
            report["seen"] = list(seen)
        """
    )
    assert report["raised"] == "task failed"
    assert report["result"] == "done"
    assert report["seen"] == [["LookupError", "req-3"], [None, "req-3"]]


def test_after_this_request_in_the_worker_is_refused_and_the_parents_list_stays_empty() -> None:
    report = _run(
        """
        def task():
            try:
                flask.after_this_request(lambda response: response)
            except RuntimeError as exc:
                return str(exc)
            return "accepted"

        with app.test_request_context("/after"):
            report["worker"] = pool.submit(ctxsnap.wrap(task)).result()
            report["parent_callbacks"] = len(flask.globals.app_ctx._after_request_functions)
        """
    )
    assert report["worker"].startswith("after_this_request() cannot be used in a ctxsnap worker.")
    assert report["parent_callbacks"] == 0


def test_the_drop_in_runs_an_async_function_through_ensure_sync() -> None:
    report = _run(
        """
        async def notify(n):
            return [n, flask.g.user, flask.request.path]

        with app.test_request_context("/notify"):
            flask.g.user = "ann"
            report["worker"] = pool.submit(ctxsnap_flask.copy_current_request_context(notify), 5).result()
        """
    )
    assert report["worker"] == [5, "ann", "/notify"]


def test_without_the_app_provider_the_worker_never_shares_the_requests_g() -> None:
    report = _run(
        """
        def task():
            if flask.has_app_context():
                flask.g.user = "worker"
            return {**seen(), "shared": flask.has_app_context() and flask.g._get_current_object() is parent_g}

        ctxsnap.unregister_provider("flask.app")
        with app.app_context():
            flask.g.user = "cli"
            parent_g = flask.g._get_current_object()
            report["app_only"] = pool.submit(ctxsnap.wrap(task)).result()
            report["parent_g"] = flask.g.user
        with app.test_request_context("/unregistered"):
            flask.g.user = "ann"
            parent_g = flask.g._get_current_object()
            report["request"] = pool.submit(ctxsnap.wrap(task)).result()
        """
    )
    # Like exclude=["flask.app"]: no app context for an app-only parent, and a request gets one of its own.
    assert report["app_only"] == {"app": False, "request": False, "shared": False}
    assert report["parent_g"] == "cli"
    assert report["request"] == {"app": True, "request": True, "shared": False}
