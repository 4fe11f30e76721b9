"""Stale snapshots: a snapshot taken during one request never speaks for another.

Two ways it could: a snapshot kept around after its request (in a global, a cache, a long-lived object) gets
used again; or something inside ctxsnap (a cached plan, a worker thread, a pool) remembers the last request. The
first is refused once the snapshot is sealed, and is otherwise only possible by running the old snapshot by
name; the second must never happen. Both are checked here, with many requests in flight on one shared pool.
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

from ._flask_support import identity, make_app

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("reliability_stale_request_id")


def _reads() -> str | None:
    return request_id.get(None)


def test_sealed_snapshot_refuses_new_work_but_runs_what_was_wrapped_inside() -> None:
    request_id.set("inside")
    with ctxsnap.capture() as snap:
        wrapped_inside = snap.wrap(_reads)
    request_id.set("after")
    assert snap.sealed
    with pytest.raises(ctxsnap.SnapshotClosedError):
        snap.wrap(_reads)
    with pytest.raises(ctxsnap.SnapshotClosedError):
        snap.run(_reads)
    # What was handed out inside the block keeps its capture-time view, however late it runs.
    assert wrapped_inside() == "inside"
    assert ctxsnap.wrap(_reads)() == "after"


def test_close_seals_a_snapshot_taken_without_a_with_block() -> None:
    snap = ctxsnap.capture()
    snap.close()
    assert snap.sealed
    with pytest.raises(ctxsnap.SnapshotClosedError):
        snap.run(_reads)
    # Closing it again is harmless; entering it again is the reuse that sealing refuses.
    snap.close()
    with pytest.raises(ctxsnap.SnapshotClosedError), snap:
        pass
    assert snap.sealed


def test_a_sealed_snapshot_from_one_request_is_refused_in_the_next() -> None:
    app, _ = make_app()
    with app.test_request_context("/", headers={"X-Request-Id": "A"}):
        flask.g.request_id = "A"
        with ctxsnap.capture() as kept:
            pass
    with app.test_request_context("/", headers={"X-Request-Id": "B"}):
        flask.g.request_id = "B"
        with pytest.raises(ctxsnap.SnapshotClosedError):
            kept.run(identity)
        with pytest.raises(ctxsnap.SnapshotClosedError):
            kept.wrap(identity)


def test_a_kept_snapshot_never_leaks_into_later_requests_on_a_shared_pool() -> None:
    """Request A's snapshot and a callable wrapped from it stay alive; requests B... fan out on one pool.

    Every helper that captures (submit, map, wrap, Thread) captures the *current* request; the old snapshot is
    seen only where the user runs it explicitly.
    """
    app, _ = make_app()
    pool = ctxsnap.ThreadPoolExecutor(max_workers=4)
    with app.test_request_context("/", headers={"X-Request-Id": "A"}):
        flask.g.request_id = "A"
        request_id.set("A")
        kept = ctxsnap.capture()  # never sealed: the worst case
        kept_task = kept.wrap(identity)
        # Run it once in the pool's threads, so the workers have "seen" request A.
        assert {f.result(timeout=TIMEOUT)["g"] for f in [pool.submit(identity) for _ in range(8)]} == {"A"}

    try:
        for name in [f"B{i}" for i in range(20)]:
            with app.test_request_context("/", headers={"X-Request-Id": name}):
                flask.g.request_id = name
                request_id.set(name)
                futures = [pool.submit(identity) for _ in range(4)]
                seen: list[dict[str, Any]] = [f.result(timeout=TIMEOUT) for f in futures]
                seen += list(pool.map(lambda _: identity(), range(4)))
                seen.append(ctxsnap.wrap(identity)())
                from_thread: list[dict[str, Any]] = []
                thread = ctxsnap.Thread(target=lambda sink=from_thread: sink.append(identity()))
                thread.start()
                thread.join(timeout=TIMEOUT)
                seen += from_thread
                assert len(seen) == 10
                assert all(s["g"] == name and s["header"] == name for s in seen), seen
                assert pool.submit(_reads).result(timeout=TIMEOUT) == name
                # Explicitly running the old snapshot is the one way to see A, and it shows exactly A.
                assert kept.run(identity)["g"] == "A"
                assert kept_task()["header"] == "A"
                assert pool.submit(kept_task).result(timeout=TIMEOUT)["g"] == "A"
    finally:
        pool.shutdown(wait=True)


def test_late_child_sees_its_own_request_after_it_ended_and_nothing_newer() -> None:
    app, lifecycle = make_app()
    release = threading.Event()
    with app.test_request_context("/", headers={"X-Request-Id": "A"}):
        flask.g.request_id = "A"
        late = ctxsnap.wrap(lambda: (release.wait(timeout=TIMEOUT), identity())[1])
    request_thread_handlers = [handler for handler, _ in lifecycle.in_thread(threading.get_ident())]
    assert request_thread_handlers == ["teardown_request", "teardown_appcontext"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(late)
        with app.test_request_context("/", headers={"X-Request-Id": "B"}):
            flask.g.request_id = "B"
            release.set()
            assert future.result(timeout=TIMEOUT)["g"] == "A"
            assert future.result(timeout=TIMEOUT)["header"] == "A"


@pytest.mark.quart
def test_quart_kept_snapshot_never_leaks_into_a_later_request() -> None:
    import quart

    from ctxsnap.adapters import quart as ctxsnap_quart

    from ._quart_support import make_quart_app, quart_identity

    app, _ = make_quart_app()

    async def scenario() -> None:
        async with app.test_request_context("/", headers={"X-Request-Id": "A"}):
            quart.g.request_id = "A"
            kept = ctxsnap.capture()
            with ctxsnap.capture() as sealed:
                pass
            assert (await ctxsnap_quart.to_thread(quart_identity))["g"] == "A"
        for name in [f"B{i}" for i in range(10)]:
            async with app.test_request_context("/", headers={"X-Request-Id": name}):
                quart.g.request_id = name
                seen = await asyncio.gather(*(ctxsnap_quart.to_thread(quart_identity) for _ in range(4)))
                assert all((s["g"], s["header"]) == (name, name) for s in seen), seen
                with pytest.raises(ctxsnap.SnapshotClosedError):
                    sealed.run(quart_identity)
                # Only running the kept snapshot by name shows A, and then exactly A.
                assert (await asyncio.to_thread(kept.run, quart_identity))["g"] == "A"

    asyncio.run(scenario())
