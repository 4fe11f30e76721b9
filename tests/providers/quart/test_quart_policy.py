"""The Quart providers' policy, from the app config or per capture: the same rules as the Flask providers'.

``CTXSNAP_G`` (``"copy"``/``"share"``) and ``CTXSNAP_TEARDOWN`` count once ``CtxSnap`` is installed;
``capture(g=..., teardown=...)`` overrides them for one snapshot. In teardown mode each run gets its own app
context, and Quart's ``teardown_appcontext`` functions and app-context signals run once per run in the worker.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

import ctxsnap
from tests.support import TIMEOUT, Lifecycle, run

if TYPE_CHECKING:
    from quart import Quart

pytestmark = pytest.mark.quart


def _in_thread(fn: Any) -> tuple[Any, int]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
        box["thread"] = threading.get_ident()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(TIMEOUT)
    if "error" in box:
        raise box["error"]
    return box["value"], box["thread"]


# -- the g policy -------------------------------------------------------------------------------------------------


def _g_after_child_write(app: Quart, **capture_options: Any) -> tuple[Any, Any]:
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    def child() -> Any:
        quart.g.written = "by the child"
        return quart.g.user

    async def main() -> tuple[Any, Any]:
        async with app.test_request_context("/items/1"):
            quart.g.user = "alice"
            snapshot = ctxsnap_quart.capture(**capture_options) if capture_options else ctxsnap.capture()
            seen, _ = _in_thread(lambda: snapshot.run(child))
            return seen, quart.g.get("written")

    return run(main())


def test_share_in_the_config_lets_the_child_write_the_parents_g(app: Quart) -> None:
    from ctxsnap.adapters.quart import CtxSnap

    app.config["CTXSNAP_G"] = "share"
    CtxSnap(app)
    assert _g_after_child_write(app) == ("alice", "by the child")


def test_the_config_counts_only_once_the_extension_is_installed(app: Quart) -> None:
    # As in the Flask adapter: without the extension the defaults apply.
    app.config["CTXSNAP_G"] = "share"
    assert _g_after_child_write(app) == ("alice", None)


def test_a_capture_override_beats_the_config(app: Quart) -> None:
    from ctxsnap.adapters.quart import CtxSnap

    app.config["CTXSNAP_G"] = "share"
    CtxSnap(app)
    assert _g_after_child_write(app, g="copy") == ("alice", None)


def test_a_capture_override_works_without_the_extension(app: Quart) -> None:
    assert _g_after_child_write(app, g="share") == ("alice", "by the child")


def test_under_share_the_child_still_gets_an_app_context_of_its_own(app: Quart) -> None:
    # Extensions key per-context state on the app context object: the worker must not get the request's.
    import quart
    from quart.globals import _cv_app

    from ctxsnap.adapters import quart as ctxsnap_quart

    async def main() -> tuple[Any, Any, Any, Any]:
        async with app.test_request_context("/items/1"):
            snapshot = ctxsnap_quart.capture(g="share")
            seen = lambda: (_cv_app.get(), quart.g._get_current_object())  # noqa: E731
            child_context, _ = _in_thread(lambda: snapshot.run(seen))
            return child_context[0], child_context[1], _cv_app.get(), quart.g._get_current_object()

    child_context, child_g, parent_context, parent_g = run(main())
    assert child_context is not parent_context
    assert child_g is parent_g


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"g": "deep"}, ValueError, "Unknown g policy 'deep'"),
        ({"teardown": 1}, TypeError, "teardown got 1.*must be True or False"),
        ({"g": "share", "teardown": True}, ValueError, "cannot be combined"),
    ],
)
def test_a_bad_override_is_refused_before_anything_is_captured(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    from ctxsnap.adapters import quart as ctxsnap_quart

    with pytest.raises(error, match=message):
        ctxsnap_quart.capture(**options)


def test_the_override_is_not_inherited_by_a_capture_made_inside_the_child(app: Quart) -> None:
    # The override lives in a thread-local for the duration of one capture, not in a ContextVar that the
    # snapshot would carry along.
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    def child() -> Any:
        nested = ctxsnap.capture()
        nested.run(lambda: setattr(quart.g, "nested_write", True))
        return quart.g.get("nested_write")

    async def main() -> tuple[Any, Any]:
        async with app.test_request_context("/items/1"):
            snapshot = ctxsnap_quart.capture(g="share")
            seen, _ = _in_thread(lambda: snapshot.run(child))
            return seen, quart.g.get("nested_write")

    # The nested capture copies g (the default), so its write reaches neither the child nor the parent.
    assert run(main()) == (None, None)


# -- teardown mode ----------------------------------------------------------------------------------------------


def _teardown_app(app: Quart, lifecycle: Lifecycle) -> None:
    import quart
    import quart.signals

    from ctxsnap.adapters.quart import CtxSnap

    app.config["CTXSNAP_TEARDOWN"] = True
    CtxSnap(app)

    @app.teardown_appcontext
    def sync_teardown(exc: BaseException | None) -> None:
        lifecycle.record("sync teardown_appcontext", exc)

    def on_signal(name: str) -> Any:
        # Async receivers: Quart 0.23.1 sends its context signals with send_async(_async_wrapper=...), which
        # blinker does not know and hands to the receivers, so a sync receiver fails in Quart's own push
        # ("Cannot send to a non-coroutine function"). Every Quart runs async receivers on its loop.
        async def receiver(sender: Any, **kwargs: Any) -> None:
            assert sender is app
            lifecycle.record(name, kwargs.get("exc"))

        return receiver

    # Strong references for the test's duration (blinker holds receivers weakly).
    app.extensions["test receivers"] = [on_signal(n) for n in ("pushed", "tearing_down", "popped")]
    quart.signals.appcontext_pushed.connect(app.extensions["test receivers"][0], app)
    quart.signals.appcontext_tearing_down.connect(app.extensions["test receivers"][1], app)
    quart.signals.appcontext_popped.connect(app.extensions["test receivers"][2], app)


def test_teardown_mode_runs_sync_and_async_teardown_and_the_signals_once_per_run_in_the_worker(
    app: Quart, lifecycle: Lifecycle
) -> None:
    import quart

    _teardown_app(app, lifecycle)
    children: list[int] = []

    async def main() -> None:
        async with app.test_request_context("/items/1"):
            quart.g.user = "alice"
            wrapped = ctxsnap.wrap(lambda: quart.g.user)
            for _ in range(2):
                user, thread = _in_thread(wrapped)
                assert user == "alice"
                children.append(thread)
            # The parent's own push (on the loop) sent "pushed" too; look at the children's threads.
            child_events = [(name, thread) for name, thread, _ in lifecycle.events if thread in children]
            expected = [
                (name, child)
                for child in children
                for name in ("pushed", "teardown_appcontext", "sync teardown_appcontext", "tearing_down", "popped")
            ]
            assert child_events == expected

    run(main())
    # After the request: the parent's own teardown ran once, on the loop, and teardown_request never in a child.
    assert len(lifecycle.threads("teardown_request")) == 1
    assert not set(lifecycle.threads("teardown_request")) & set(children)
    assert len(lifecycle.threads("teardown_appcontext")) == 3


def test_teardown_mode_hands_the_tasks_exception_to_teardown(app: Quart, lifecycle: Lifecycle) -> None:
    _teardown_app(app, lifecycle)

    class Boom(Exception):
        pass

    def child() -> None:
        raise Boom("the task failed")

    async def main() -> None:
        async with app.test_request_context("/items/1"):
            snapshot = ctxsnap.capture()
            with pytest.raises(Boom) as caught:
                _in_thread(lambda: snapshot.run(child))
            seen = [exc for name, _, exc in lifecycle.events if name in ("teardown_appcontext", "tearing_down")]
            assert seen == [caught.value, caught.value]

    run(main())


def test_teardown_in_the_child_leaves_the_parents_objects_in_g_alone(app: Quart, lifecycle: Lifecycle) -> None:
    # The tutorial's close_db pattern: teardown pops g.db and closes it. The parent's connection, inherited
    # unchanged by the child, must stay open; a connection the child opened itself is closed.
    import quart

    from ctxsnap.adapters.quart import CtxSnap

    class Connection:
        def __init__(self, owner: str) -> None:
            self.owner = owner
            self.closed = False

        def close(self) -> None:
            self.closed = True

    app.config["CTXSNAP_TEARDOWN"] = True
    CtxSnap(app)

    @app.teardown_appcontext
    def close_db(exc: BaseException | None) -> None:
        connection = quart.g.pop("db", None)
        if connection is not None:
            connection.close()

    parents_connection = Connection("parent")
    childs_connections: list[Connection] = []

    def child_that_reads() -> str:
        return str(quart.g.db.owner)

    def child_that_reconnects() -> None:
        quart.g.db = Connection("child")
        childs_connections.append(quart.g.db)

    async def main() -> None:
        async with app.test_request_context("/items/1"):
            quart.g.db = parents_connection
            snapshot = ctxsnap.capture()
            assert _in_thread(lambda: snapshot.run(child_that_reads))[0] == "parent"
            _in_thread(lambda: snapshot.run(child_that_reconnects))
            assert not parents_connection.closed
            assert quart.g.db is parents_connection

    run(main())
    assert childs_connections[0].closed
    assert parents_connection.closed  # by the parent's own teardown, at the end of the request


def test_teardown_functions_in_the_child_read_what_it_inherited_in_g(app: Quart) -> None:
    # Issue 11, defect 7: a teardown_appcontext function that logs g.request_id ran after the inherited values
    # were taken out of g, and the successful task's result was lost as a ProviderError.
    import quart

    from ctxsnap.adapters.quart import CtxSnap

    app.config["CTXSNAP_TEARDOWN"] = True
    CtxSnap(app)
    logged: list[str] = []

    @app.teardown_appcontext
    def log_request_end(exc: BaseException | None) -> None:
        logged.append(quart.g.request_id)

    async def main() -> Any:
        async with app.test_request_context("/items/1"):
            quart.g.request_id = "req-4"
            snapshot = ctxsnap.capture()
            result, thread = _in_thread(lambda: snapshot.run(lambda: "done"))
            return result, list(logged)

    assert run(main()) == ("done", ["req-4"])


def test_the_default_runs_no_app_context_teardown_and_no_signal_in_the_child(
    app: Quart, lifecycle: Lifecycle
) -> None:
    import quart

    _teardown_app(app, lifecycle)
    app.config["CTXSNAP_TEARDOWN"] = False

    async def main() -> None:
        async with app.test_request_context("/items/1"):
            quart.g.user = "alice"

            def read_user() -> Any:
                return quart.g.user

            user, child = _in_thread(ctxsnap.wrap(read_user))
            assert user == "alice"
            assert [event for event in lifecycle.events if event[1] == child] == []

    run(main())
