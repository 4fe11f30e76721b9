"""What Flask's own ``copy_current_request_context`` gets wrong on this Flask, next to the drop-in.

Each test asserts the field behaviour first, so that it documents the bug on every cell of the matrix (and
fails, asking for the docs to be updated, the day a Flask release fixes it), then the drop-in's.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask

from ctxsnap.adapters import flask as ctxsnap_flask
from tests.flask_support import MERGED_LAYOUT
from tests.support import TIMEOUT, Lifecycle

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def test_flasks_decorator_gives_the_worker_an_empty_g(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    # pallets/flask#3306
    def user() -> Any:
        return flask.g.get("user")

    with app.test_request_context("/"):
        flask.g.user = "ann"
        flasks = pool.submit(flask.copy_current_request_context(user)).result(TIMEOUT)
        ours = pool.submit(ctxsnap_flask.copy_current_request_context(user)).result(TIMEOUT)

    assert flasks is None
    assert ours == "ann"


DECORATORS: dict[str, Decorator] = {
    "flask": flask.copy_current_request_context,
    "ctxsnap": ctxsnap_flask.copy_current_request_context,
}


def test_flasks_decorator_runs_the_teardown_handlers_again_in_the_worker(
    app: flask.Flask, pool: ThreadPoolExecutor, lifecycle: Lifecycle
) -> None:
    @app.route("/work/<which>")
    def work(which: str) -> str:
        pool.submit(DECORATORS[which](lambda: flask.request.path)).result(TIMEOUT)
        return "ok"

    client = app.test_client()

    def teardowns(which: str) -> dict[str, int]:
        lifecycle.clear()
        client.get(f"/work/{which}")
        return {kind: len(lifecycle.threads(kind)) for kind in ("teardown_request", "teardown_appcontext")}

    flasks = teardowns("flask")
    ours = teardowns("ctxsnap")

    assert flasks == {"teardown_request": 2, "teardown_appcontext": 2}
    assert ours == {"teardown_request": 1, "teardown_appcontext": 1}


def test_flasks_decorator_closes_the_parents_uploaded_file(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    # pallets/flask#5399: the worker's pop calls request.close(), which closes every uploaded file.
    @app.route("/upload/<which>", methods=["POST"])
    def upload(which: str) -> dict[str, Any]:
        pool.submit(DECORATORS[which](lambda: flask.request.files["file"].filename)).result(TIMEOUT)
        return {"closed": flask.request.files["file"].stream.closed}

    client = app.test_client()

    def post(which: str) -> Any:
        data = {"file": (io.BytesIO(b"uploaded bytes"), "report.txt")}
        return client.post(f"/upload/{which}", data=data, content_type="multipart/form-data").get_json()

    assert post("flask") == {"closed": True}
    assert post("ctxsnap") == {"closed": False}


def _run_overlapping(decorate: Decorator, pool: ThreadPoolExecutor) -> list[BaseException | None]:
    """Two runs of one wrapper: the first enters, the second enters, the first leaves, then the second.

    Events fix that order: leaving in the order of entering is what a shared push/pop stack cannot survive
    (the reverse order happens to work, which is why this is easy to miss in a quick test).
    """
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    def job(position: int) -> str:
        if position == 0:
            first_in.set()
            second_in.wait(TIMEOUT)
        else:
            second_in.set()
            first_done.wait(TIMEOUT)
        return str(flask.request.path)

    wrapper = decorate(job)
    first = pool.submit(wrapper, 0)
    first.add_done_callback(lambda _: first_done.set())
    assert first_in.wait(TIMEOUT)
    second = pool.submit(wrapper, 1)
    return [first.exception(TIMEOUT), second.exception(TIMEOUT)]


def test_flasks_decorator_fails_when_one_wrapper_runs_in_two_workers_at_once(app: flask.Flask) -> None:
    # pallets/flask#5252, #5396: "Popped wrong app context" on Flask <= 2.0, "Token ... was created in a
    # different Context" on 2.2 to 3.1. Each decorator gets fresh worker threads: Flask's leaves contexts behind.
    with app.test_request_context("/"):
        with ThreadPoolExecutor(max_workers=2) as flask_pool:
            flasks = _run_overlapping(flask.copy_current_request_context, flask_pool)
        with ThreadPoolExecutor(max_workers=2) as our_pool:
            ours = _run_overlapping(ctxsnap_flask.copy_current_request_context, our_pool)

    if MERGED_LAYOUT:
        # Flask 3.2 pushes one context object with a push count: the first pop resets the shared token, so the
        # second worker's pop finds "no active context".
        assert flasks[0] is None and "Cannot pop this context" in str(flasks[1]), flasks
    else:
        pattern = re.compile("Popped wrong app context|created in a different Context")
        assert flasks[0] is not None and pattern.search(str(flasks[0])), flasks
    assert ours == [None, None]
