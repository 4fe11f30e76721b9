"""What the worker can use, for each context the parent may be in: request, app only, none; and selection.

``request``, ``session``, ``current_app``, ``g`` and ``url_for`` (also with ``_external=True``) work in a
request snapshot; an app-only snapshot (CLI commands, ``app.app_context()``) carries ``current_app`` and ``g``;
a capture outside any Flask context still carries ContextVars (Flask-Executor #52 needs a request context).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import pytest

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.flask_support import MERGED_LAYOUT, flask_context_seen, request_id
from tests.support import TIMEOUT


def _everything() -> dict[str, Any]:
    return {
        "has_app": flask.has_app_context(),
        "has_request": flask.has_request_context(),
        "method": flask.request.method,
        "arg": flask.request.args["q"],
        "header": flask.request.headers["X-Request-Id"],
        "session": flask.session.get("user"),
        "app": flask.current_app.name,
        "g": flask.g.user,
        "url": flask.url_for("item", item_id=3),
        "external": flask.url_for("item", item_id=3, _external=True),
        "var": request_id.get(),
    }


def test_request_session_app_g_and_url_for_work_in_the_worker(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    @app.route("/view", methods=["POST"])
    def view() -> dict[str, Any]:
        flask.session["user"] = "ann"
        flask.g.user = "ann"
        request_id.set("req-1")
        return pool.submit(ctxsnap.wrap(_everything)).result(TIMEOUT)

    response = app.test_client().post(
        "/view?q=cats", headers={"X-Request-Id": "hdr-1"}, base_url="https://shop.test"
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "has_app": True,
        "has_request": True,
        "method": "POST",
        "arg": "cats",
        "header": "hdr-1",
        "session": "ann",
        "app": app.name,
        "g": "ann",
        "url": "/items/3",
        "external": "https://shop.test/items/3",
        "var": "req-1",
    }


def test_the_worker_writes_to_the_same_session(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    # request and session are the request's own objects, not copies: a worker that the view waits for can
    # still change what the response sends.
    @app.route("/login")
    def login() -> str:
        pool.submit(ctxsnap.wrap(lambda: flask.session.__setitem__("user", "ann"))).result(TIMEOUT)
        return "ok"

    @app.route("/whoami")
    def whoami() -> str:
        return str(flask.session.get("user"))

    client = app.test_client()
    client.get("/login")
    assert client.get("/whoami").get_data(as_text=True) == "ann"


def test_app_context_only(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    app.config["SERVER_NAME"] = "cli.test"

    def in_worker() -> dict[str, Any]:
        return {
            **flask_context_seen(),
            "app": flask.current_app.name,
            "g": flask.g.job,
            "url": flask.url_for("item", item_id=9),
            "var": request_id.get(),
        }

    with app.app_context():
        flask.g.job = "nightly"
        request_id.set("job-1")
        seen = pool.submit(ctxsnap.wrap(in_worker)).result(TIMEOUT)

    assert seen == {
        "app": app.name,
        "request": False,
        "g": "nightly",
        "url": "http://cli.test/items/9",
        "var": "job-1",
    }


def test_no_flask_context_at_all(pool: ThreadPoolExecutor) -> None:
    request_id.set("outside")
    snapshot = ctxsnap.capture()

    assert pool.submit(snapshot.wrap(lambda: (flask_context_seen(), request_id.get()))).result(TIMEOUT) == (
        {"app": False, "request": False},
        "outside",
    )
    assert pool.submit(ctxsnap_flask.capture(g="share", teardown=False).wrap(request_id.get)).result(TIMEOUT) == (
        "outside"
    )
    assert pool.submit(ctxsnap_flask.capture(teardown=True).wrap(flask_context_seen)).result(TIMEOUT) == {
        "app": False,
        "request": False,
    }


def _selection_probe() -> dict[str, Any]:
    return {
        **flask_context_seen(),
        "g": flask.g.get("user") if flask.has_app_context() else None,
        "path": flask.request.path if flask.has_request_context() else None,
        "var": request_id.get(None),
    }


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({}, {"app": True, "request": True, "g": "ann", "path": "/p", "var": "req-2"}),
        ({"exclude": "flask"}, {"app": False, "request": False, "g": None, "path": None, "var": "req-2"}),
        (
            {"exclude": ["flask.request"]},
            {"app": True, "request": False, "g": "ann", "path": None, "var": "req-2"},
        ),
        # Where the request lives in the app context (Flask 3.2), a request brings an app context of its own, with
        # an empty g: the parent's g stays behind with flask.app.
        (
            {"exclude": ["flask.app"]},
            {"app": MERGED_LAYOUT, "request": True, "g": None, "path": "/p", "var": "req-2"},
        ),
        ({"include": ["flask"]}, {"app": True, "request": True, "g": "ann", "path": "/p", "var": None}),
        ({"include": "flask.app"}, {"app": True, "request": False, "g": "ann", "path": None, "var": None}),
        ({"include": [request_id]}, {"app": False, "request": False, "g": None, "path": None, "var": "req-2"}),
    ],
    ids=[
        "default",
        "exclude-flask",
        "exclude-request",
        "exclude-app",
        "include-flask",
        "include-app",
        "include-var",
    ],
)
def test_include_and_exclude(
    app: flask.Flask, pool: ThreadPoolExecutor, selection: dict[str, Any], expected: dict[str, Any]
) -> None:
    with app.test_request_context("/p"):
        flask.g.user = "ann"
        request_id.set("req-2")
        plain = ctxsnap.capture(**selection)
        with_policy = ctxsnap_flask.capture(g="copy", **selection)

        assert pool.submit(plain.wrap(_selection_probe)).result(TIMEOUT) == expected
        assert pool.submit(with_policy.wrap(_selection_probe)).result(TIMEOUT) == expected


def test_snapshot_names_the_flask_providers_that_captured(app: flask.Flask) -> None:
    assert ctxsnap.capture().providers == ("contextvars",)
    with app.app_context():
        assert ctxsnap.capture().providers == ("contextvars", "flask.app")
        with app.test_request_context("/"):
            flask.g.secret = "s3cr3t"
            snapshot = ctxsnap.capture()
            assert snapshot.providers == ("contextvars", "flask.app", "flask.request")
            assert "s3cr3t" not in repr(snapshot)


# -- a built-in provider unregistered or replaced (issue 11, defect 8) --------------------------------------------
# Without the app provider the app context's variable used to travel through the plain ContextVar copy: the
# worker held the request's own app context, and its g writes landed in the request's g.


def _write_g_in_the_worker() -> Any:
    if not flask.has_app_context():
        return None
    flask.g.user = "worker"
    return flask.g._get_current_object()


def _parent_g_after_a_worker_write(pool: ThreadPoolExecutor, app: flask.Flask) -> tuple[Any, Any, str]:
    with app.test_request_context("/p"):
        flask.g.user = "ann"
        workers_g = pool.submit(ctxsnap.wrap(_write_g_in_the_worker)).result(TIMEOUT)
        return workers_g, flask.g._get_current_object(), flask.g.user


def _register_again(registered: tuple[ctxsnap.Provider, ...]) -> None:
    """Put the registry back as it was, order included (the order is the order of capture and apply)."""
    for provider in ctxsnap.providers():
        if provider.name != "contextvars":
            ctxsnap.unregister_provider(provider.name)
    for provider in registered:
        if provider.name != "contextvars":
            ctxsnap.register_provider(provider)
    assert ctxsnap.providers() == registered


class _NothingCaptured(ctxsnap.Provider):
    """A replacement that declares no owned_vars and carries nothing."""

    name = "flask.app"

    def capture(self) -> None:
        return None

    def apply(self, state: Any) -> None:
        return None


@pytest.mark.parametrize("how", ["unregister", "replace"])
def test_without_the_app_provider_the_worker_never_shares_the_requests_g(
    app: flask.Flask, pool: ThreadPoolExecutor, how: str
) -> None:
    registered = ctxsnap.providers()
    try:
        if how == "replace":
            ctxsnap.register_provider(_NothingCaptured(), replace=True)
        else:
            ctxsnap.unregister_provider("flask.app")
        workers_g, parents_g, user = _parent_g_after_a_worker_write(pool, app)
    finally:
        _register_again(registered)
    assert workers_g is not parents_g
    assert user == "ann"
    # Registered again, the provider carries a private copy of g as before.
    workers_g, parents_g, user = _parent_g_after_a_worker_write(pool, app)
    assert workers_g is not None and workers_g is not parents_g and user == "ann"
