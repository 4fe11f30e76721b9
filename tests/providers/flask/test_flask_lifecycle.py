"""Flask's lifecycle stays in the request thread: teardown once, files open, late workers, clean workers.

By default nothing of Flask's lifecycle runs in the worker: no teardown_request, no teardown_appcontext, no
``request.close()`` (which closes the request's uploaded files, pallets/flask#5399). Teardown mode is the
opt-in for per-thread resources: each run pushes an app context of its own and pops it, so
teardown_appcontext runs once per run, in the worker, and teardown_request never does.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import pytest

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.flask_support import current_app_context, flask_context_seen, request_id
from tests.support import TIMEOUT, Lifecycle


def _upload(client: Any, path: str) -> Any:
    data = {"file": (io.BytesIO(b"uploaded bytes"), "report.txt")}
    return client.post(path, data=data, content_type="multipart/form-data")


def test_teardown_runs_once_per_request_in_the_request_thread(
    app: flask.Flask, pool: ThreadPoolExecutor, lifecycle: Lifecycle
) -> None:
    view_threads: list[int] = []

    @app.route("/work")
    def work() -> str:
        view_threads.append(threading.get_ident())
        flask.g.user = "ann"
        users = [pool.submit(ctxsnap.wrap(lambda: flask.g.user)).result(TIMEOUT) for _ in range(3)]
        thread = ctxsnap.Thread(target=lambda: users.append(flask.g.user))
        thread.start()
        thread.join(TIMEOUT)
        decorated = ctxsnap_flask.copy_current_request_context(lambda: flask.g.user)
        users.append(pool.submit(decorated).result(TIMEOUT))
        return ",".join(users)

    client = app.test_client()
    for _ in range(2):
        assert client.get("/work").get_data(as_text=True) == "ann,ann,ann,ann,ann"

    assert lifecycle.threads("teardown_request") == view_threads
    assert lifecycle.threads("teardown_appcontext") == view_threads


def test_an_uploaded_file_stays_readable_in_the_parent_after_a_worker_ran(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    def read_upload() -> bytes:
        upload = flask.request.files["file"]
        data: bytes = upload.read()
        upload.seek(0)
        return data

    @app.route("/upload", methods=["POST"])
    def upload() -> dict[str, Any]:
        in_worker = pool.submit(ctxsnap.wrap(read_upload)).result(TIMEOUT)
        in_drop_in = pool.submit(ctxsnap_flask.copy_current_request_context(read_upload)).result(TIMEOUT)
        upload = flask.request.files["file"]
        return {
            "worker": in_worker.decode(),
            "drop_in": in_drop_in.decode(),
            "closed": upload.stream.closed,
            "parent": upload.read().decode(),
        }

    response = _upload(app.test_client(), "/upload")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "worker": "uploaded bytes",
        "drop_in": "uploaded bytes",
        "closed": False,
        "parent": "uploaded bytes",
    }


def test_teardown_mode_runs_teardown_appcontext_once_per_run_in_the_worker(
    app: flask.Flask, pool: ThreadPoolExecutor, lifecycle: Lifecycle
) -> None:
    run_threads: list[int] = []

    @app.route("/jobs")
    def jobs() -> str:
        flask.g.user = "ann"
        task = ctxsnap_flask.capture(teardown=True).wrap(lambda: run_threads.append(threading.get_ident()))
        for _ in range(3):
            pool.submit(task).result(TIMEOUT)
        return "ok"

    view_thread = threading.get_ident()  # test_client runs the view in this thread
    app.test_client().get("/jobs")

    assert lifecycle.threads("teardown_request") == [view_thread]
    assert lifecycle.threads("teardown_appcontext") == [*run_threads, view_thread]


def test_teardown_mode_from_the_app_config(
    app: flask.Flask, pool: ThreadPoolExecutor, lifecycle: Lifecycle
) -> None:
    app.config["CTXSNAP_TEARDOWN"] = True
    ctxsnap_flask.CtxSnap(app)

    with app.test_request_context("/"):
        worker = pool.submit(ctxsnap.wrap(threading.get_ident)).result(TIMEOUT)
        assert lifecycle.threads("teardown_appcontext") == [worker]
        # The per-capture policy wins over the app's.
        pool.submit(ctxsnap_flask.capture(teardown=False).wrap(threading.get_ident)).result(TIMEOUT)
        assert lifecycle.threads("teardown_appcontext") == [worker]

    assert lifecycle.threads("teardown_request") == [threading.get_ident()]


def test_teardown_mode_tears_down_what_the_worker_opened_not_what_it_inherited(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    closed: list[str] = []

    class Connection:
        def __init__(self, owner: str) -> None:
            self.owner = owner

        def close(self) -> None:
            closed.append(self.owner)

    @app.teardown_appcontext
    def close_db(exc: BaseException | None) -> None:
        # The pattern of Flask's tutorial.
        db = flask.g.pop("db", None)
        if db is not None:
            db.close()

    def reuse_the_request_connection() -> str:
        return str(flask.g.db.owner)

    def open_own_connection() -> str:
        flask.g.db = Connection("worker")
        return str(flask.g.request_id)

    with app.test_request_context("/"):
        flask.g.db = Connection("request")
        flask.g.request_id = "req-5"
        snapshot = ctxsnap_flask.capture(teardown=True)
        assert pool.submit(snapshot.wrap(reuse_the_request_connection)).result(TIMEOUT) == "request"
        assert closed == []
        assert pool.submit(snapshot.wrap(open_own_connection)).result(TIMEOUT) == "req-5"
        assert closed == ["worker"]

    assert closed == ["worker", "request"]


def test_teardown_mode_handlers_read_what_the_worker_inherited_in_g(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    # Issue 11, defect 7: a teardown_appcontext handler that logs g.request_id ran after the inherited values
    # were taken out of g, failed with AttributeError, and the successful task's result was lost.
    logged: list[tuple[str, str]] = []

    @app.teardown_appcontext
    def log_request_end(exc: BaseException | None) -> None:
        logged.append((flask.g.request_id, flask.g.get("user", "?")))

    with app.test_request_context("/"):
        flask.g.request_id = "req-9"
        flask.g.user = "ann"
        snapshot = ctxsnap_flask.capture(teardown=True)
        assert pool.submit(snapshot.wrap(lambda: "done")).result(TIMEOUT) == "done"
        assert logged == [("req-9", "ann")]
        assert flask.g.request_id == "req-9"


def test_teardown_mode_pop_of_an_inherited_value_leaves_the_parents_object_alone(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    # g.pop without a default, on a value the worker inherited unchanged: as if it were absent (KeyError), and
    # the parent's g keeps it. What the worker replaced is its own and pops as usual.
    popped: list[Any] = []

    @app.teardown_appcontext
    def take(exc: BaseException | None) -> None:
        for name in ("inherited", "replaced"):
            try:
                popped.append(flask.g.pop(name))
            except KeyError:
                popped.append(KeyError)

    def replace() -> None:
        flask.g.replaced = "child's"

    with app.test_request_context("/"):
        flask.g.inherited = "parent's"
        flask.g.replaced = "parent's"
        pool.submit(ctxsnap_flask.capture(teardown=True).wrap(replace)).result(TIMEOUT)
        assert popped == [KeyError, "child's"]
        assert (flask.g.inherited, flask.g.replaced) == ("parent's", "parent's")


def test_after_this_request_in_a_worker_is_refused_and_the_response_is_untouched(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    # Issue 11, defect 9: the worker's callback landed on the parent's response (or was silently lost if the
    # response was already sent). It is refused in the worker, with a message that says what to do instead.
    errors: list[BaseException] = []

    def add_header(response: Any) -> Any:
        response.headers["X-From-Worker"] = "yes"
        return response

    def task() -> None:
        try:
            flask.after_this_request(add_header)
        except RuntimeError as exc:
            errors.append(exc)

    @app.route("/report")
    def report() -> str:
        pool.submit(ctxsnap.wrap(task)).result(TIMEOUT)
        pool.submit(ctxsnap_flask.copy_current_request_context(task)).result(TIMEOUT)

        @flask.after_this_request
        def own(response: Any) -> Any:  # the view's own callback still works
            response.headers["X-From-View"] = "yes"
            return response

        return "ok"

    response = app.test_client().get("/report")
    assert response.headers.get("X-From-View") == "yes"
    assert "X-From-Worker" not in response.headers
    assert len(errors) == 2
    assert str(errors[0]).startswith("after_this_request() cannot be used in a ctxsnap worker.")
    assert "Register the callback in the view" in str(errors[0])


def test_teardown_mode_hands_the_tasks_exception_to_teardown(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    seen: list[BaseException | None] = []
    app.teardown_appcontext(seen.append)

    def fail() -> None:
        raise LookupError("task failed")

    with app.test_request_context("/"):
        future = pool.submit(ctxsnap_flask.capture(teardown=True).wrap(fail))
        with pytest.raises(LookupError, match="task failed"):
            future.result(TIMEOUT)
        assert len(seen) == 1 and isinstance(seen[0], LookupError)

    assert seen[1] is None  # the request's own teardown


def test_a_worker_that_starts_after_its_request_ended(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    later: list[Any] = []

    def report() -> dict[str, Any]:
        return {
            "user": flask.g.user,
            "path": flask.request.path,
            "arg": flask.request.args["q"],
            "app": flask.current_app.name,
            "var": request_id.get(),
            "url": flask.url_for("item", item_id=7),
        }

    @app.route("/search")
    def search() -> str:
        flask.g.user = "ann"
        request_id.set("req-6")
        later.append(ctxsnap.wrap(report))
        return "queued"

    assert app.test_client().get("/search?q=cats").get_data(as_text=True) == "queued"
    assert not flask.has_request_context()

    expected = {
        "user": "ann",
        "path": "/search",
        "arg": "cats",
        "app": app.name,
        "var": "req-6",
        "url": "/items/7",
    }
    assert pool.submit(later[0]).result(TIMEOUT) == expected
    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: results.append(later[0]()))
    thread.start()
    thread.join(TIMEOUT)
    assert results == [expected]


@pytest.mark.parametrize("teardown", [False, True])
def test_the_worker_thread_holds_no_flask_context_afterwards(
    app: flask.Flask, single_worker: ThreadPoolExecutor, teardown: bool
) -> None:
    def fail() -> None:
        raise RuntimeError("task failed")

    with app.test_request_context("/"):
        request_id.set("req-7")
        snapshot = ctxsnap_flask.capture(teardown=teardown)
        assert single_worker.submit(snapshot.wrap(flask_context_seen)).result(TIMEOUT) == {
            "app": True,
            "request": True,
        }
        with pytest.raises(RuntimeError, match="task failed"):
            single_worker.submit(snapshot.wrap(fail)).result(TIMEOUT)

        # The same worker thread, running a plain task afterwards.
        after = single_worker.submit(lambda: (flask_context_seen(), request_id.get(None))).result(TIMEOUT)

    assert after == ({"app": False, "request": False}, None)


def test_the_parents_nested_contexts_survive_a_worker_that_pushes_and_pops(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    # On Werkzeug 2.0 a copied Context shares the parent's stack list, and LocalStack.pop on two or more
    # entries pops that list in place: the worker must only ever pop stacks of its own.
    other = flask.Flask("other")

    def push_and_pop() -> str:
        with other.app_context():
            inner = flask.current_app.name
        with app.test_request_context("/inner"):
            pass
        return f"{inner},{flask.current_app.name},{flask.request.path}"

    with app.app_context():
        outer = current_app_context()
        with app.test_request_context("/outer"):
            flask.g.level = "inner"
            for teardown in (False, True):
                task = ctxsnap_flask.capture(teardown=teardown).wrap(push_and_pop)
                assert pool.submit(task).result(TIMEOUT) == f"other,{app.name},/outer"
            assert flask.request.path == "/outer"
            assert flask.g.level == "inner"
        assert current_app_context() is outer
        assert not flask.has_request_context()
    assert not flask.has_app_context()
