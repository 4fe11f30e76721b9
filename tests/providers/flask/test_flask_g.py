"""``g`` in the worker: a private shallow copy by default (pallets/flask#3306), the parent's ``g`` by opt-in."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.flask_support import current_app_context
from tests.support import TIMEOUT


def _read_then_write_g() -> dict[str, Any]:
    seen = {"user": flask.g.get("user"), "tags": list(flask.g.get("tags", []))}
    flask.g.user = "changed-in-worker"
    flask.g.worker_only = True
    return seen


def test_g_reaches_the_worker_and_its_writes_do_not_come_back(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    with app.test_request_context("/"):
        flask.g.user = "ann"
        flask.g.tags = ["a"]
        seen = pool.submit(ctxsnap.wrap(_read_then_write_g)).result(TIMEOUT)

        assert seen == {"user": "ann", "tags": ["a"]}
        assert flask.g.user == "ann"
        assert "worker_only" not in flask.g


def test_g_is_a_shallow_copy_taken_at_capture(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    with app.test_request_context("/"):
        flask.g.user = "ann"
        flask.g.tags = ["a"]
        task = ctxsnap.wrap(_read_then_write_g)
        flask.g.user = "bob"  # after capture: not seen
        flask.g.tags.append("b")  # the same list object: shallow copy, so seen

        assert pool.submit(task).result(TIMEOUT) == {"user": "ann", "tags": ["a", "b"]}


def test_every_run_starts_from_the_captured_g(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    def count() -> int:
        flask.g.runs = flask.g.get("runs", 0) + 1
        return int(flask.g.runs)

    with app.test_request_context("/"):
        task = ctxsnap.wrap(count)
        results = [pool.submit(task).result(TIMEOUT) for _ in range(5)]

    assert results == [1] * 5


def test_copy_context_alone_leaks_worker_writes_into_the_parents_g(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    # The bug the g copy removes, side by side: on Flask >= 2.2 copy_context() carries the parent's app context
    # object itself. (On Flask < 2.2 the stack is copied the same way and the g object is shared as well.)
    with app.test_request_context("/"):
        flask.g.user = "ann"
        context = contextvars.copy_context()
        pool.submit(context.run, _read_then_write_g).result(TIMEOUT)
        leaked = flask.g.user

        flask.g.user = "ann"
        pool.submit(ctxsnap.wrap(_read_then_write_g)).result(TIMEOUT)

        assert leaked == "changed-in-worker"
        assert flask.g.user == "ann"


def test_share_policy_gives_the_worker_the_parents_g(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    with app.test_request_context("/"):
        flask.g.user = "ann"
        flask.g.tags = ["a"]
        task = ctxsnap_flask.capture(g="share").wrap(_read_then_write_g)
        flask.g.user = "bob"  # shared: a parent write after capture is seen too

        assert pool.submit(task).result(TIMEOUT) == {"user": "bob", "tags": ["a"]}
        assert flask.g.user == "changed-in-worker"
        assert flask.g.worker_only is True


def test_share_policy_from_the_app_config(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    app.config["CTXSNAP_G"] = "share"
    ctxsnap_flask.CtxSnap(app)

    with app.test_request_context("/"):
        flask.g.user = "ann"
        pool.submit(ctxsnap.wrap(_read_then_write_g)).result(TIMEOUT)
        assert flask.g.user == "changed-in-worker"

        # The per-capture policy wins over the app's.
        flask.g.user = "ann"
        pool.submit(ctxsnap_flask.capture(g="copy").wrap(_read_then_write_g)).result(TIMEOUT)
        assert flask.g.user == "ann"


def test_shared_g_still_gets_an_app_context_object_of_its_own(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    # Extensions key per-context state on the app context's identity (Flask-SQLAlchemy scopes its session by
    # it): even when g is shared, the worker must not be handed the request's app context object.
    def context_and_g() -> tuple[Any, Any]:
        return current_app_context(), flask.g._get_current_object()

    with app.test_request_context("/"):
        parent_context, parent_g = context_and_g()
        child_context, child_g = pool.submit(ctxsnap_flask.capture(g="share").wrap(context_and_g)).result(TIMEOUT)

    assert child_context is not parent_context
    assert child_context.app is app
    assert child_g is parent_g


class _AuditedGlobals(flask.ctx._AppCtxGlobals):
    """A custom ``g`` class, as ``app.app_ctx_globals_class`` allows: the worker's g must be one too."""

    def audited(self) -> str:
        return f"audited:{self.get('user')}"


def test_a_custom_g_class_is_kept_in_the_worker(pool: ThreadPoolExecutor) -> None:
    app = flask.Flask(__name__)
    app.app_ctx_globals_class = _AuditedGlobals

    def read() -> tuple[str, str]:
        g: Any = flask.g._get_current_object()
        seen = type(g).__name__, g.audited()
        flask.g.user = "changed-in-worker"
        return seen

    with app.test_request_context("/"):
        flask.g.user = "ann"
        assert pool.submit(ctxsnap.wrap(read)).result(TIMEOUT) == ("_AuditedGlobals", "audited:ann")
        assert flask.g.user == "ann"


def test_an_app_context_with_attributes_of_its_own_is_forked_whole(pool: ThreadPoolExecutor) -> None:
    """An extension may keep state on the app context object; the worker's fork has it, beside a private g."""
    app = flask.Flask(__name__)

    def read() -> tuple[object, object, bool]:
        context: Any = current_app_context()
        flask.g.user = "changed-in-worker"
        return context.extension_state, flask.g.user, context is parent

    with app.test_request_context("/"):
        parent: Any = current_app_context()
        parent.extension_state = "kept"
        flask.g.user = "ann"
        assert pool.submit(ctxsnap.wrap(read)).result(TIMEOUT) == ("kept", "changed-in-worker", False)
        assert flask.g.user == "ann"


class _GlobalsWithNew(flask.ctx._AppCtxGlobals):
    """A ``g`` class with a ``__new__`` of its own: forks make its instances as ``object.__new__`` does."""

    made: int = 0

    def __new__(cls, *args: Any, **kwargs: Any) -> _GlobalsWithNew:
        cls.made += 1
        return super().__new__(cls)


def test_a_g_class_with_its_own_new_is_forked_like_any_other(pool: ThreadPoolExecutor) -> None:
    app = flask.Flask(__name__)
    app.app_ctx_globals_class = _GlobalsWithNew

    def read() -> tuple[str, object]:
        return type(flask.g._get_current_object()).__name__, flask.g.get("user")

    with app.test_request_context("/"):
        flask.g.user = "ann"
        made = _GlobalsWithNew.made
        assert pool.submit(ctxsnap.wrap(read)).result(TIMEOUT) == ("_GlobalsWithNew", "ann")
        # The worker's g is a fork: made without calling the class (as copy.copy would), never by __init__.
        assert _GlobalsWithNew.made == made
