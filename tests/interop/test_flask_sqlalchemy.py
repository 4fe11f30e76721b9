"""Flask-SQLAlchemy in background tasks: per-task sessions, and what teardown mode is for.

Flask-SQLAlchemy (3.x) scopes ``db.session`` to the current app context object and removes it in
``teardown_appcontext``. A ctxsnap child gets its own app context (a fork holding its copy of ``g``), so it gets
its own session, never the request's: sharing one session between threads is unsafe. By default nothing of
Flask's lifecycle runs in the child, so nothing removes that session and its connection stays checked out of
the pool. ``CTXSNAP_TEARDOWN = True`` is the opt-in for exactly this: the child pushes its own app context and
pops it after the run, so teardown_appcontext (and with it ``db.session.remove()``) runs once per task, in the
worker.

The app runs on a real threaded WSGI server with an SQLite file database; the libraries are imported inside the
fixtures because this module is collected (then deselected) in matrix cells that do not install them.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from examples import flask_app
from tests.support import TIMEOUT

pytestmark = pytest.mark.interop

REQUESTS = 4
TASKS_PER_REQUEST = 3


@dataclass
class Setup:
    app: flask.Flask
    db: Any
    event_model: Any
    pool: Any  # the engine's connection pool
    pending: list[concurrent.futures.Future[Any]] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)
    teardowns: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def executor() -> Iterator[ctxsnap.ThreadPoolExecutor]:
    pool = ctxsnap.ThreadPoolExecutor(max_workers=2, thread_name_prefix="interop-db-task")
    yield pool
    pool.shutdown(wait=True)


def _build(tmp_path: Path, executor: ctxsnap.ThreadPoolExecutor, *, teardown: bool) -> Setup:
    import sqlalchemy as sa
    from flask_sqlalchemy import SQLAlchemy

    app = flask.Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'app.db'}"
    app.config["CTXSNAP_TEARDOWN"] = teardown
    ctxsnap_flask.CtxSnap(app)
    db = SQLAlchemy(app)

    class Event(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "event"
        id = db.Column(db.Integer, primary_key=True)
        request_id = db.Column(db.String(64), nullable=False)
        task = db.Column(db.Integer, nullable=False)

    with app.app_context():
        db.create_all()
        setup = Setup(app, db, Event, db.engine.pool)

    def record_event(task: int) -> int:
        # The usual shape of a background job: write, commit, read back. The read starts a new transaction,
        # so the session holds a pooled connection until something closes or removes it.
        setup.sessions.append(db.session())
        flask.g.task = f"{flask.g.request_id}/{task}"
        db.session.add(Event(request_id=flask.g.request_id, task=task))
        db.session.commit()
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
        assert count is not None
        return count

    @app.before_request
    def assign_request_id() -> None:
        flask.g.request_id = flask.request.headers["X-Request-Id"]

    @app.teardown_appcontext
    def record_teardown(exc: BaseException | None) -> None:
        # In a teardown-mode child, g at teardown holds only what the child set itself (ctxsnap strips the
        # inherited values first, so a handler that closes g.db never closes the request's connection).
        label = flask.g.get("task") or flask.g.get("request_id") or "no request id"
        setup.teardowns.append((label, threading.current_thread().name))

    @app.route("/events", methods=["POST"])
    def start_background_tasks() -> tuple[flask.Response, int]:
        # Fire and forget: the response goes out while the tasks may still be running, or not yet started.
        setup.pending.extend(executor.submit(record_event, task) for task in range(TASKS_PER_REQUEST))
        return flask.jsonify(request_id=flask.g.request_id), 202

    return setup


def _drive(setup: Setup) -> None:
    with flask_app.serve(setup.app) as url, httpx.Client(base_url=url, timeout=TIMEOUT, trust_env=False) as client:
        for i in range(REQUESTS):
            response = client.post("/events", headers={"X-Request-Id": f"req-db-{i}"})
            assert response.status_code == 202, response.text
    done, not_done = concurrent.futures.wait(setup.pending, timeout=TIMEOUT)
    assert not not_done, "background tasks did not finish"
    for future in done:
        future.result()  # re-raises a task's exception


def _rows(setup: Setup) -> list[tuple[str, int]]:
    import sqlalchemy as sa

    with setup.app.app_context():
        rows = setup.db.session.execute(sa.select(setup.event_model.request_id, setup.event_model.task)).all()
    return sorted((request_id, task) for request_id, task in rows)


def _expected_rows() -> list[tuple[str, int]]:
    return sorted((f"req-db-{i}", task) for i in range(REQUESTS) for task in range(TASKS_PER_REQUEST))


def test_teardown_mode_background_tasks_leave_no_connection_checked_out(
    tmp_path: Path, executor: ctxsnap.ThreadPoolExecutor
) -> None:
    setup = _build(tmp_path, executor, teardown=True)

    _drive(setup)
    teardowns = list(setup.teardowns)  # before _rows() pushes an app context of its own

    assert setup.pool.checkedout() == 0
    # teardown_appcontext ran once per request in the request thread and once per task in a worker thread.
    in_workers = sorted(rid for rid, thread in teardowns if thread.startswith("interop-db-task"))
    in_requests = sorted(rid for rid, thread in teardowns if not thread.startswith("interop-db-task"))
    assert in_workers == sorted(f"{rid}/{task}" for rid, task in _expected_rows())
    assert in_requests == [f"req-db-{i}" for i in range(REQUESTS)]
    # Each task had its own session, and g.request_id from the request that started it.
    assert len({id(session) for session in setup.sessions}) == REQUESTS * TASKS_PER_REQUEST
    assert _rows(setup) == _expected_rows()


def test_default_mode_leaves_each_task_session_open_until_the_app_closes_it(
    tmp_path: Path, executor: ctxsnap.ThreadPoolExecutor
) -> None:
    # Documents the default: no lifecycle in the child, so Flask-SQLAlchemy's teardown never runs there and
    # every task's session keeps its connection. Apps that use db.session in background tasks want
    # CTXSNAP_TEARDOWN = True (or to close the session themselves at the end of the task).
    # Worse, measured here: Flask-SQLAlchemy keys sessions by id() of the app context, a finished task's fork is
    # freed and its id recycled, so a later task can pick up an earlier task's open session (8 to 12 distinct
    # sessions for 12 tasks across runs). Hence "> 0" below rather than an exact count.
    setup = _build(tmp_path, executor, teardown=False)

    _drive(setup)
    teardowns = list(setup.teardowns)

    try:
        assert setup.pool.checkedout() > 0
        # teardown_appcontext ran for the requests only, never in a worker.
        assert not any(thread.startswith("interop-db-task") for _, thread in teardowns)
        assert sorted(rid for rid, _ in teardowns) == [f"req-db-{i}" for i in range(REQUESTS)]
        assert _rows(setup) == _expected_rows()
    finally:
        for session in setup.sessions:
            session.close()
    # Closing the tasks' sessions is what returns the connections: the leak was theirs.
    assert setup.pool.checkedout() == 0
