"""The public surface of the Flask adapter: the extension and its config, ``capture()``, the drop-in decorator.

Bad settings fail with a message that names the setting and the values it takes, at start-up when possible.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import pytest

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from tests.support import TIMEOUT


def test_the_extension_registers_itself_and_its_defaults(app: flask.Flask) -> None:
    extension = ctxsnap_flask.CtxSnap(app)

    assert app.extensions["ctxsnap"] is extension
    assert app.config["CTXSNAP_G"] == "copy"
    assert app.config["CTXSNAP_TEARDOWN"] is False


def test_the_application_factory_pattern(pool: ThreadPoolExecutor) -> None:
    extension = ctxsnap_flask.CtxSnap()

    def create_app() -> flask.Flask:
        app = flask.Flask("factory")
        app.config["CTXSNAP_G"] = "share"
        extension.init_app(app)
        return app

    first, second = create_app(), create_app()
    assert first.extensions["ctxsnap"] is extension is second.extensions["ctxsnap"]
    with first.test_request_context("/"):
        pool.submit(ctxsnap.wrap(lambda: setattr(flask.g, "seen", True))).result(TIMEOUT)
        assert flask.g.seen is True  # "share", read from this app's config


def test_config_is_read_at_capture_so_later_changes_apply(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    ctxsnap_flask.CtxSnap(app)
    app.config["CTXSNAP_G"] = "share"

    with app.test_request_context("/"):
        pool.submit(ctxsnap.wrap(lambda: setattr(flask.g, "seen", True))).result(TIMEOUT)
        assert flask.g.seen is True


def test_without_the_extension_the_config_keys_are_not_read(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    app.config["CTXSNAP_G"] = "share"

    with app.test_request_context("/"):
        pool.submit(ctxsnap.wrap(lambda: setattr(flask.g, "seen", True))).result(TIMEOUT)
        assert "seen" not in flask.g


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"CTXSNAP_G": "deep"}, ValueError, r"Unknown g policy 'deep'.*must be 'copy' \(the default\) or 'share'"),
        ({"CTXSNAP_TEARDOWN": "yes"}, TypeError, r"teardown got 'yes'.*must be True or False"),
        (
            {"CTXSNAP_G": "share", "CTXSNAP_TEARDOWN": True},
            ValueError,
            r"g='share' cannot be combined with teardown",
        ),
    ],
)
def test_bad_config_fails_at_init_app(
    app: flask.Flask, config: dict[str, Any], error: type[Exception], message: str
) -> None:
    app.config.update(config)

    with pytest.raises(error, match=message) as caught:
        ctxsnap_flask.CtxSnap(app)
    assert "CTXSNAP_G" in str(caught.value)
    assert "ctxsnap" not in app.extensions


def test_bad_config_set_after_init_app_fails_at_capture_naming_the_provider(app: flask.Flask) -> None:
    ctxsnap_flask.CtxSnap(app)
    app.config["CTXSNAP_G"] = "deep"

    with (
        app.test_request_context("/"),
        pytest.raises(ctxsnap.ProviderError, match="'flask.app' failed during capture") as caught,
    ):
        ctxsnap.capture()
    assert isinstance(caught.value.__cause__, ValueError)
    assert "Unknown g policy 'deep'" in str(caught.value)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"g": "deep"}, ValueError, "Unknown g policy 'deep'"),
        ({"teardown": 1}, TypeError, "teardown got 1.*must be True or False"),
        ({"g": "share", "teardown": True}, ValueError, "g='share' cannot be combined with teardown"),
    ],
)
def test_bad_capture_arguments(
    app: flask.Flask, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with app.test_request_context("/"), pytest.raises(error, match=message):
        ctxsnap_flask.capture(**arguments)


def test_capture_teardown_over_a_shared_g_in_the_config_is_refused(app: flask.Flask) -> None:
    app.config["CTXSNAP_G"] = "share"
    ctxsnap_flask.CtxSnap(app)

    with app.test_request_context("/"):
        with pytest.raises(ctxsnap.ProviderError, match="g='share' cannot be combined with teardown"):
            ctxsnap_flask.capture(teardown=True)
        assert ctxsnap_flask.capture(g="copy", teardown=True).providers == (
            "contextvars",
            "flask.app",
            "flask.request",
        )


def test_init_app_rejects_what_is_not_an_app() -> None:
    with pytest.raises(TypeError, match="takes a flask.Flask application, got str"):
        ctxsnap_flask.CtxSnap("app")  # type: ignore[arg-type]


def test_capture_returns_a_snapshot_that_seals(app: flask.Flask) -> None:
    with app.test_request_context("/"):
        with ctxsnap_flask.capture(g="share") as snapshot:
            assert isinstance(snapshot, ctxsnap.Snapshot)
        with pytest.raises(ctxsnap.SnapshotClosedError):
            snapshot.run(lambda: None)


def test_the_drop_in_needs_a_request_context_like_flasks(app: flask.Flask) -> None:
    def job() -> None:
        pass

    with pytest.raises(RuntimeError, match="was called outside a request context"):
        ctxsnap_flask.copy_current_request_context(job)
    with app.app_context(), pytest.raises(RuntimeError, match="use ctxsnap.wrap"):
        ctxsnap_flask.copy_current_request_context(job)


def test_the_drop_in_keeps_the_signature_and_always_copies_g(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    app.config.update(CTXSNAP_G="share", CTXSNAP_TEARDOWN=False)
    ctxsnap_flask.CtxSnap(app)

    def job(user_id: int, *, verbose: bool = False) -> str:
        """Docstring kept."""
        flask.g.written = True
        return f"{user_id}:{verbose}:{flask.g.user}"

    with app.test_request_context("/"):
        flask.g.user = "ann"
        decorated = ctxsnap_flask.copy_current_request_context(job)

        assert decorated.__name__ == "job" and decorated.__doc__ == "Docstring kept."
        assert inspect.signature(decorated) == inspect.signature(job)
        assert pool.submit(decorated, 7, verbose=True).result(TIMEOUT) == "7:True:ann"
        assert "written" not in flask.g


def test_the_drop_in_works_as_a_decorator_in_a_view(app: flask.Flask) -> None:
    @app.route("/send")
    def send() -> str:
        flask.g.user = "ann"

        @ctxsnap_flask.copy_current_request_context
        def notify() -> str:
            return f"{flask.g.user}@{flask.request.path}"

        with ctxsnap.ThreadPoolExecutor(max_workers=1) as executor:
            return executor.submit(notify).result(TIMEOUT)

    assert app.test_client().get("/send").get_data(as_text=True) == "ann@/send"


# -- the drop-in and async functions (issue 11, defect 6) --------------------------------------------------------
# Flask's own decorator runs the function through app.ensure_sync, so an `async def` works there (Flask >= 2.0
# with its "async" extra, asgiref); the drop-in must accept what Flask's accepts.

HAS_ENSURE_SYNC = hasattr(flask.Flask, "ensure_sync")


def test_the_drop_in_runs_an_async_function_through_ensure_sync_like_flasks(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    async def notify(user_id: int) -> str:
        """Docstring kept."""
        flask.g.written = True
        return f"{user_id}:{flask.g.user}@{flask.request.path}"

    with app.test_request_context("/send"):
        flask.g.user = "ann"
        if not HAS_ENSURE_SYNC:
            # Flask 1.1 cannot run async functions at all: refused in the view, naming the decorator.
            with pytest.raises(TypeError, match=r"^copy_current_request_context\(\) got an async function"):
                ctxsnap_flask.copy_current_request_context(notify)
            return
        decorated = ctxsnap_flask.copy_current_request_context(notify)
        assert decorated.__name__ == "notify" and decorated.__doc__ == "Docstring kept."
        # A sync callable that runs the coroutine to completion in the worker, in the request's snapshot.
        assert pool.submit(decorated, 7).result(TIMEOUT) == "7:ann@/send"
        assert pool.submit(decorated, 8).result(TIMEOUT) == "8:ann@/send"
        assert "written" not in flask.g


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (42, r"^copy_current_request_context\(\) expects a callable, got int"),
        ("job", r"^copy_current_request_context\(\) expects a callable, got str"),
    ],
)
def test_the_drop_in_names_itself_when_refusing_what_it_cannot_run(
    app: flask.Flask, argument: Any, message: str
) -> None:
    with app.test_request_context("/"), pytest.raises(TypeError, match=message):
        ctxsnap_flask.copy_current_request_context(argument)


def test_the_drop_in_names_itself_when_refusing_an_async_generator(app: flask.Flask) -> None:
    async def stream() -> Any:
        yield 1

    with (
        app.test_request_context("/"),
        pytest.raises(TypeError, match=r"^copy_current_request_context\(\) got the async callable"),
    ):
        ctxsnap_flask.copy_current_request_context(stream)
