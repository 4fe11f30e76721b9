"""The Quart providers: loaded by themselves, what they carry from a request, a websocket and an app context.

The conformance suite checks the semantics table through every adapter; these tests check what is specific to
Quart: that the providers need no import, that include/exclude select them, and that the Flask providers (Quart
is built on Flask) never act on a Quart app's contexts.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import ctxsnap
from tests.support import TIMEOUT, run

if TYPE_CHECKING:
    from quart import Quart

pytestmark = pytest.mark.quart

ROOT = Path(__file__).resolve().parents[3]
REQUEST_ID: ContextVar[str] = ContextVar("quart_providers_request_id")


def _in_thread(snapshot: ctxsnap.Snapshot, fn: Any) -> Any:
    """Run ``snapshot.run(fn)`` in a new plain thread and return its result (or raise its exception)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = snapshot.run(fn)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(TIMEOUT)
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_the_providers_load_as_soon_as_quart_is_imported_without_importing_the_adapter() -> None:
    code = (
        "import sys, quart, ctxsnap; "
        "assert 'ctxsnap.adapters.quart' not in sys.modules; "
        "print(sorted(p.name for p in ctxsnap.providers() if p.name.startswith('quart')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "['quart.app', 'quart.request', 'quart.websocket']"


def test_a_request_snapshot_names_the_quart_providers_and_no_flask_one(app: Quart) -> None:
    import quart

    async def main() -> tuple[str, ...]:
        async with app.test_request_context("/items/1"):
            quart.g.user = "alice"
            return ctxsnap.capture().providers

    assert run(main()) == ("contextvars", "quart.app", "quart.request")


def test_the_flask_providers_stay_out_of_a_quart_request(app: Quart) -> None:
    # Quart >= 0.19 subclasses Flask's sansio App and imports Flask, so the Flask providers are registered too;
    # they read Flask's own ContextVars, which a Quart app never sets.
    import flask
    import quart

    def child() -> tuple[bool, bool, bool, str]:
        return flask.has_app_context(), flask.has_request_context(), quart.has_request_context(), quart.g.user

    async def main() -> Any:
        async with app.test_request_context("/items/1"):
            quart.g.user = "alice"
            snapshot = ctxsnap.capture()
            assert {p.name for p in ctxsnap.providers()} >= {"flask.app", "flask.request"}
            return _in_thread(snapshot, child)

    assert run(main()) == (False, False, True, "alice")


def test_a_flask_request_inside_a_quart_handler_is_carried_by_each_frameworks_providers(app: Quart) -> None:
    # The one way the two meet in one context: a Quart handler that runs a Flask app's code. Each provider
    # carries its own framework's context and neither disturbs the other.
    import flask
    import quart

    flask_app = flask.Flask("inner")

    def child() -> tuple[Any, ...]:
        return flask.request.path, flask.g.user, quart.request.path, quart.g.user

    async def main() -> Any:
        async with app.test_request_context("/items/1"):
            quart.g.user = "quart user"
            with flask_app.test_request_context("/flask/path"):
                flask.g.user = "flask user"
                snapshot = ctxsnap.capture()
            assert set(snapshot.providers) >= {"quart.app", "quart.request", "flask.app", "flask.request"}
            return _in_thread(snapshot, child)

    assert run(main()) == ("/flask/path", "flask user", "/items/1", "quart user")


def test_a_websocket_snapshot_carries_the_websocket_and_its_session(app: Quart) -> None:
    import quart

    seen: list[Any] = []

    @app.websocket("/ws")
    async def socket() -> None:
        await quart.websocket.accept()
        quart.session["user"] = "alice"
        snapshot = ctxsnap.capture()

        def child() -> tuple[Any, ...]:
            return (
                quart.websocket._get_current_object(),  # type: ignore[attr-defined]  # Quart types its proxies as the object they stand for
                quart.websocket.args.get("room"),
                quart.session["user"],
                quart.has_request_context(),
            )

        seen.append(snapshot.providers)
        seen.append((_in_thread(snapshot, child), quart.websocket._get_current_object()))  # type: ignore[attr-defined]  # Quart types its proxies as the object they stand for
        await quart.websocket.send("done")

    async def main() -> None:
        async with app.test_client().websocket("/ws?room=42") as client:
            assert await client.receive() == "done"

    run(main())
    assert seen[0] == ("contextvars", "quart.app", "quart.websocket")
    (child_websocket, room, user, has_request), parent_websocket = seen[1]
    assert child_websocket is parent_websocket
    assert (room, user, has_request) == ("42", "alice", False)


def test_excluding_quart_leaves_every_quart_context_behind_and_keeps_contextvars(app: Quart) -> None:
    import quart

    def child() -> tuple[bool, bool, str]:
        return quart.has_app_context(), quart.has_request_context(), REQUEST_ID.get()

    async def main() -> Any:
        async with app.test_request_context("/items/1"):
            REQUEST_ID.set("kept")
            return _in_thread(ctxsnap.capture(exclude=["quart"]), child)

    assert run(main()) == (False, False, "kept")


def test_excluding_only_the_request_keeps_the_app_context(app: Quart) -> None:
    import quart

    def child() -> tuple[bool, bool, str]:
        return quart.has_app_context(), quart.has_request_context(), quart.g.user

    async def main() -> Any:
        async with app.test_request_context("/items/1"):
            quart.g.user = "alice"
            return _in_thread(ctxsnap.capture(exclude=["quart.request"]), child)

    assert run(main()) == (True, False, "alice")


def test_including_only_quart_carries_the_quart_contexts_and_no_other_variable(app: Quart) -> None:
    import quart

    def child() -> tuple[str, Any, str | None]:
        return quart.request.path, quart.g.user, REQUEST_ID.get(None)

    async def main() -> Any:
        async with app.test_request_context("/items/5"):
            quart.g.user = "alice"
            REQUEST_ID.set("left out")
            return _in_thread(ctxsnap.capture(include=["quart"]), child)

    assert run(main()) == ("/items/5", "alice", None)


def test_url_for_with_external_urls_uses_the_parents_request(app: Quart) -> None:
    import quart

    async def main() -> Any:
        async with app.test_request_context("/items/1", headers={"Host": "shop.example"}):
            return _in_thread(ctxsnap.capture(), lambda: quart.url_for("item", item_id=9, _external=True))

    assert run(main()) == "http://shop.example/items/9"


def test_a_sync_view_which_quart_runs_in_its_executor_can_capture_and_hand_off_again(app: Quart) -> None:
    # Quart runs sync views in a worker thread (in a copy of the handler's context); a capture there sees the
    # request and g, and hands them on to a further thread.
    import quart

    @app.route("/sync")
    def sync_view() -> str:
        quart.g.user = "alice"
        result: str = _in_thread(ctxsnap.capture(), lambda: f"{quart.request.path} {quart.g.user}")
        return result

    async def main() -> str:
        response = await app.test_client().get("/sync")
        return str(await response.get_data(as_text=True))

    assert run(main()) == "/sync alice"


def test_the_adapter_refuses_a_quart_whose_contexts_are_not_contextvars(monkeypatch: pytest.MonkeyPatch) -> None:
    import quart.globals

    from ctxsnap.providers import quart as provider

    monkeypatch.setattr(quart.globals, "_cv_app", object())
    with pytest.raises(ImportError, match=r"no ContextVar at quart\.globals\._cv_app.*Quart 0\.19"):
        provider._context_var("_cv_app")


def test_the_adapter_detects_where_this_quart_keeps_its_contexts() -> None:
    # The oracle is the installed release, which the adapter itself never reads: Quart 0.23 merged the request
    # and websocket contexts into the app context (one ContextVar, _cv_app).
    import importlib.metadata

    from ctxsnap.providers import quart as provider

    release = tuple(int(part) for part in importlib.metadata.version("quart").split(".")[:2])
    assert ("contextvars-merged" if release >= (0, 23) else "contextvars") == provider.LAYOUT


# -- after_this_request / after_this_websocket in a worker (issue 11, defect 9) -----------------------------------


def test_after_this_request_in_a_worker_is_refused_and_the_response_is_untouched(app: Quart) -> None:
    import quart

    errors: list[str] = []

    def add_header(response: Any) -> Any:
        response.headers["X-From-Worker"] = "yes"
        return response

    def task() -> None:
        try:
            quart.after_this_request(add_header)
        except RuntimeError as exc:
            errors.append(str(exc))

    @app.route("/report")
    async def report() -> str:
        from ctxsnap.adapters.quart import to_thread

        await to_thread(task)
        _in_thread(ctxsnap.capture(), task)
        return "ok"

    async def main() -> Any:
        response = await app.test_client().get("/report")
        return response.headers

    headers = run(main())
    assert "X-From-Worker" not in headers
    assert len(errors) == 2
    assert errors[0].startswith("after_this_request() cannot be used in a ctxsnap worker.")


def test_after_this_websocket_in_a_worker_is_refused(app: Quart) -> None:
    import quart
    from quart.ctx import after_this_websocket

    errors: list[str] = []

    def task() -> None:
        try:
            after_this_websocket(lambda response: response)
        except RuntimeError as exc:
            errors.append(str(exc))

    @app.websocket("/ws")
    async def socket() -> None:
        await quart.websocket.accept()
        _in_thread(ctxsnap.capture(), task)
        await quart.websocket.send("done")

    async def main() -> None:
        async with app.test_client().websocket("/ws") as client:
            assert await client.receive() == "done"

    run(main())
    assert len(errors) == 1 and "cannot be used in a ctxsnap worker" in errors[0]


# -- quart.app unregistered or replaced (issue 11, defect 8) ------------------------------------------------------


class _NothingCaptured(ctxsnap.Provider):
    """A replacement for quart.app that declares no owned_vars and carries nothing."""

    name = "quart.app"

    def capture(self) -> None:
        return None

    def apply(self, state: Any) -> None:
        return None


def _register_again(registered: tuple[ctxsnap.Provider, ...]) -> None:
    """Put the registry back as it was, order included (the order is the order of capture and apply)."""
    for provider in ctxsnap.providers():
        if provider.name != "contextvars":
            ctxsnap.unregister_provider(provider.name)
    for provider in registered:
        if provider.name != "contextvars":
            ctxsnap.register_provider(provider)
    assert ctxsnap.providers() == registered


@pytest.mark.parametrize("how", ["unregister", "replace"])
def test_without_the_app_provider_the_worker_never_shares_the_parents_g(app: Quart, how: str) -> None:
    import quart

    def child() -> Any:
        if not quart.has_app_context():
            return None
        quart.g.user = "worker"
        return quart.g._get_current_object()

    async def main() -> list[tuple[Any, Any, str]]:
        results = []
        async with app.app_context():
            quart.g.user = "cli"
            results.append((_in_thread(ctxsnap.capture(), child), quart.g._get_current_object(), quart.g.user))
        async with app.test_request_context("/items/1"):
            quart.g.user = "alice"
            results.append((_in_thread(ctxsnap.capture(), child), quart.g._get_current_object(), quart.g.user))
        return results

    ctxsnap.providers()  # the Quart providers are loaded before the registry is changed
    registered = ctxsnap.providers()
    try:
        if how == "replace":
            ctxsnap.register_provider(_NothingCaptured(), replace=True)
        else:
            ctxsnap.unregister_provider("quart.app")
        results = run(main())
    finally:
        _register_again(registered)
    for (workers_g, parents_g, _), parents_user in zip(results, ["cli", "alice"], strict=False):
        assert workers_g is not parents_g
        assert _ == parents_user
