"""Fixtures of the Flask adapter's tests: an app that records its lifecycle, and a real thread pool.

These tests drive Flask through ``test_client``/``test_request_context`` in every Flask cell of the matrix; the
example app on a real threaded server is covered in ``tests/examples``.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import flask
import pytest

from tests.support import Lifecycle


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool:
    """Run each test in its own copy of the context, the way a server runs each request.

    Tests set ContextVars to play "the parent request"; a value left behind by one test must not decide whether
    the next one passes.
    """
    # The test's own parameters, read from its public signature (pytest's private _fixtureinfo is not an API);
    # funcargs also holds autouse fixtures the test does not take.
    parameters = inspect.signature(pyfuncitem.obj).parameters
    arguments = {name: value for name, value in pyfuncitem.funcargs.items() if name in parameters}
    contextvars.copy_context().run(pyfuncitem.obj, **arguments)
    return True


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
