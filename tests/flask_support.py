"""What the Flask providers' and the Flask adapter's tests share: an app that records its lifecycle, real thread
pools, and the helpers that read which Flask context a thread holds.

The fixtures are defined here once and taken in by ``tests/providers/flask/conftest.py`` and
``tests/adapters/flask/conftest.py``. These tests drive Flask through ``test_client``/``test_request_context`` in
every Flask cell of the matrix; the example app on a real threaded server is covered in ``tests/examples``.
"""

from __future__ import annotations

import contextvars
import importlib.metadata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import flask.globals
import pytest

from tests.support import Lifecycle

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("test_flask_request_id")

#: The installed Flask's release, as the tests' oracle for layout-dependent outcomes; the adapter itself never
#: reads it (it detects features).
FLASK_VERSION = tuple(int(part) for part in importlib.metadata.version("flask").split(".")[:2])
#: Flask 3.2 (main today) merges the request context into the app context (pallets/flask#5812): there a request
#: cannot be active without an app context, and one context object is pushed per request.
MERGED_LAYOUT = FLASK_VERSION >= (3, 2)


def flask_context_seen() -> dict[str, bool]:
    """What Flask context the calling thread holds, seen through Flask's own public checks."""
    return {"app": flask.has_app_context(), "request": flask.has_request_context()}


def current_app_context() -> Any:
    """The app context object itself. Flask >= 2.2 exposes it as ``flask.globals.app_ctx``; before, only the
    ``_app_ctx_stack`` held it (looked up by feature, like the adapter does)."""
    proxy = vars(flask.globals).get("app_ctx")
    if proxy is not None:
        return proxy._get_current_object()
    return vars(flask.globals)["_app_ctx_stack"].top


@pytest.fixture
def lifecycle() -> Lifecycle:
    return Lifecycle()


@pytest.fixture
def app(lifecycle: Lifecycle) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = "test only"
    app.testing = True

    @app.teardown_request
    def record_teardown_request(exc: BaseException | None) -> None:
        lifecycle.record("teardown_request")

    @app.teardown_appcontext
    def record_teardown_appcontext(exc: BaseException | None) -> None:
        lifecycle.record("teardown_appcontext")

    @app.route("/items/<int:item_id>")
    def item(item_id: int) -> str:
        return str(item_id)

    return app


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """A plain standard-library pool with 4 workers: the tests wrap their tasks themselves."""
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="flask-test-worker")
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def single_worker() -> Iterator[ThreadPoolExecutor]:
    """One worker thread, so a second task provably runs on the thread the first one used."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flask-test-single")
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
