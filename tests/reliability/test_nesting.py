"""Nesting: a worker that captures again hands on its own view, and nothing flows back up.

A task that fans out further is common (a report that fetches its parts in parallel). The grandchildren must see
the parent's values plus whatever the worker changed before capturing, and their own writes must stay theirs:
not in the worker, not in the request, not in a sibling.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from typing import Any

import flask
import pytest

import ctxsnap
from tests.support import TIMEOUT

from ._flask_support import make_app

first: contextvars.ContextVar[str] = contextvars.ContextVar("reliability_nesting_first")
second: contextvars.ContextVar[str] = contextvars.ContextVar("reliability_nesting_second")
third: contextvars.ContextVar[str] = contextvars.ContextVar("reliability_nesting_third")

FANOUT = 3


def _vars() -> tuple[str | None, str | None, str | None]:
    return first.get(None), second.get(None), third.get(None)


def _grandchild(i: int) -> tuple[str | None, str | None, str | None]:
    seen = _vars()
    first.set(f"overwritten by grandchild {i}")
    third.set(f"grandchild {i}")
    return seen


def _child(pool: concurrent.futures.Executor, i: int) -> dict[str, Any]:
    on_entry = _vars()
    first.set(f"child {i}")
    second.set(f"child {i}")
    grandchildren = [f.result(timeout=TIMEOUT) for f in [pool.submit(_grandchild, j) for j in range(FANOUT)]]
    # A wrapped callable from a snapshot taken here, run on a plain thread, sees the same view.
    from_thread: list[Any] = []

    def report() -> None:
        from_thread.append(_vars())

    thread = threading.Thread(target=ctxsnap.wrap(report))
    thread.start()
    thread.join(timeout=TIMEOUT)
    return {"on_entry": on_entry, "grandchildren": grandchildren, "thread": from_thread, "after": _vars()}


def test_contextvars_flow_down_through_two_levels_and_never_up() -> None:
    first.set("parent")
    # One shared pool for both levels, as an app would have; big enough that children waiting on
    # grandchildren cannot starve it.
    with ctxsnap.ThreadPoolExecutor(max_workers=2 + 2 * FANOUT) as pool:
        results = [f.result(timeout=TIMEOUT) for f in [pool.submit(_child, pool, i) for i in range(2)]]
    for i, result in enumerate(results):
        assert result["on_entry"] == ("parent", None, None)
        assert result["grandchildren"] == [(f"child {i}", f"child {i}", None)] * FANOUT
        assert result["thread"] == [(f"child {i}", f"child {i}", None)]
        assert result["after"] == (f"child {i}", f"child {i}", None), "a grandchild's write reached its parent"
    assert _vars() == ("parent", None, None), "a child's write reached the request"


def _flask_view() -> dict[str, Any]:
    g = flask.g
    return {"g": dict(vars(g)), "path": flask.request.path, "url": flask.url_for("item", item_id=2)}


def _flask_grandchild(i: int) -> dict[str, Any]:
    seen = _flask_view()
    flask.g.level = f"grandchild {i}"
    flask.g.grandchild_only = i
    return seen


def _flask_child(pool: concurrent.futures.Executor, i: int) -> dict[str, Any]:
    on_entry = _flask_view()
    flask.g.level = f"child {i}"
    flask.g.child_only = i
    grandchildren = [f.result(timeout=TIMEOUT) for f in [pool.submit(_flask_grandchild, j) for j in range(FANOUT)]]
    return {"on_entry": on_entry, "grandchildren": grandchildren, "after": _flask_view()}


def test_flask_g_flows_down_through_two_levels_and_never_up() -> None:
    app, _ = make_app()
    with app.test_request_context("/reports/7"), ctxsnap.ThreadPoolExecutor(max_workers=2 + 2 * FANOUT) as pool:
        flask.g.level = "request"
        results = [f.result(timeout=TIMEOUT) for f in [pool.submit(_flask_child, pool, i) for i in range(2)]]
        assert vars(flask.g) == {"level": "request"}, "a worker's g write reached the request's g"
    for i, result in enumerate(results):
        assert result["on_entry"] == {"g": {"level": "request"}, "path": "/reports/7", "url": "/items/2"}
        child_view = {"level": f"child {i}", "child_only": i}
        assert result["grandchildren"] == [{"g": child_view, "path": "/reports/7", "url": "/items/2"}] * FANOUT
        assert result["after"]["g"] == child_view, "a grandchild's g write reached its parent"


def test_flask_teardown_mode_tears_down_each_level_once_in_its_own_thread() -> None:
    app, lifecycle = make_app(teardown=True)
    with app.test_request_context("/"), ctxsnap.ThreadPoolExecutor(max_workers=2 + 2 * FANOUT) as pool:
        flask.g.level = "request"
        results = [f.result(timeout=TIMEOUT) for f in [pool.submit(_flask_child, pool, i) for i in range(2)]]
        request_thread = threading.get_ident()
        assert lifecycle.in_thread(request_thread) == [], "a worker's teardown ran in the request's thread"
    assert all(r["after"]["g"]["level"].startswith("child") for r in results)
    worker_events = [(handler, exc) for handler, thread, exc in lifecycle.events if thread != request_thread]
    # Two children and 2 * FANOUT grandchildren: one teardown_appcontext each, no teardown_request anywhere.
    assert worker_events == [("teardown_appcontext", None)] * (2 + 2 * FANOUT)
    assert lifecycle.in_thread(request_thread) == [("teardown_request", None), ("teardown_appcontext", None)]


def test_g_is_a_shallow_copy_so_a_mutable_value_in_g_is_shared() -> None:
    """The documented limit: ctxsnap copies g's attributes, not the objects they point to."""
    app, _ = make_app()
    with app.test_request_context("/"):
        flask.g.items = ["from the request"]
        flask.g.name = "request"

        def child() -> None:
            flask.g.items.append("appended by the worker")  # mutates the shared list
            flask.g.name = "worker"  # rebinds the attribute in the worker's own g

        with ctxsnap.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(child).result(timeout=TIMEOUT)
        assert flask.g.items == ["from the request", "appended by the worker"]
        assert flask.g.name == "request"


@pytest.mark.quart
def test_quart_to_thread_worker_fans_out_further_with_its_own_view() -> None:
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    from ._quart_support import make_quart_app

    app, _ = make_quart_app()

    def grandchild(i: int) -> dict[str, Any]:
        seen = {"g": dict(vars(quart.g)), "vars": _vars(), "path": quart.request.path}
        quart.g.level = f"grandchild {i}"
        first.set(f"grandchild {i}")
        return seen

    def child() -> dict[str, Any]:
        quart.g.level = "child"
        second.set("child")
        with ctxsnap.ThreadPoolExecutor(max_workers=FANOUT) as pool:
            grandchildren = [
                f.result(timeout=TIMEOUT) for f in [pool.submit(grandchild, i) for i in range(FANOUT)]
            ]
        return {"grandchildren": grandchildren, "after": (dict(vars(quart.g)), _vars())}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], tuple[Any, ...]]:
        async with app.test_request_context("/reports/9"):
            quart.g.level = "request"
            first.set("request")
            result = await ctxsnap_quart.to_thread(child)
            return result, dict(vars(quart.g)), _vars()

    result, request_g, request_vars = asyncio.run(scenario())
    expected = {"g": {"level": "child"}, "vars": ("request", "child", None), "path": "/reports/9"}
    assert result["grandchildren"] == [expected] * FANOUT
    assert result["after"] == ({"level": "child"}, ("request", "child", None))
    assert request_g == {"level": "request"} and request_vars == ("request", None, None)
