"""What Flask apps run today to hand a request to a worker thread, side by side with ctxsnap, on one small app.

``examples/flask_app.py`` compares ctxsnap with no propagation at all. Most apps that hand work to a thread
already do *something*, though: Flask's own ``copy_current_request_context``, the hand-written closure that
many apps copy (``docs/flask.md``), or ``contextvars.copy_context().run``. Each one fails in its own way
(``docs/flask.md``, "What the field gets wrong"), and this app makes every failure happen where the demo can
see it, one route per scenario, with the hand-off chosen by ``?via=``:

* ``GET /handoff/g-read``: the worker reads ``g.request_id``; Flask's decorator gives it an empty ``g``
  (pallets/flask#3306).
* ``GET /handoff/g-write``: the worker sets ``g.from_worker``; the view then checks whether its own ``g`` got it.
* ``GET /handoff/teardown``: which ``teardown_request``/``teardown_appcontext`` handlers ran in the worker.
* ``POST /handoff/upload``: the worker reads the uploaded file, then the view reads it again; Flask's decorator
  pops its request context in the worker, which calls ``request.close()`` and closes the view's file (#5399).
* ``GET /handoff/two-workers``: one wrapped callable run by two threads at once (#5252, #5396). The overlap is
  forced with events, not left to luck: worker 1 is inside the callable when worker 2 starts it, and worker 1
  leaves first, which is the order in which Flask's shared token list pops the other worker's token.

Every route answers ``{"state": "good" | "bad" | "n/a", "text": <one table cell>, "detail": <error or null>}``.
Workers are plain ``threading.Thread`` objects named ``handoff-...``, so the teardown handlers can tell a run in
a worker from the request's own teardown. Written, like ``flask_app``, for every Flask from 1.1.1 on.
"""

from __future__ import annotations

import contextvars
import functools
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import flask
from flask import g, jsonify, request

from ctxsnap.adapters import flask as ctxsnap_flask

__all__ = ["HANDOFFS", "SCENARIOS", "create_app", "hand_written_closure"]

#: How long the view waits for a worker: generous, the machine is shared; only a bug makes it wait that long.
WORKER_TIMEOUT = 30.0


def hand_written_closure(func: Callable[..., Any]) -> Callable[..., Any]:
    """The closure apps write today (docs/flask.md, "The problem"), verbatim."""
    outer_ctx = contextvars.copy_context()
    g_values = flask.g.__dict__.copy()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flask.g.__dict__.update(g_values)
        return outer_ctx.run(func, *args, **kwargs)

    return flask.copy_current_request_context(wrapper)


def copy_context_run(func: Callable[..., Any]) -> Callable[..., Any]:
    """The standard library's answer: run the callable in a copy of the view's Context, copied once per wrap."""
    return functools.partial(contextvars.copy_context().run, func)


#: The hand-offs compared, in the demo's column order: ``?via=`` name, column title, how it wraps a callable.
HANDOFFS: tuple[tuple[str, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    ("flask", "Flask decorator", flask.copy_current_request_context),
    ("closure", "closure", hand_written_closure),
    ("copy_context", "copy_context", copy_context_run),
    ("none", "nothing", lambda func: func),
    ("ctxsnap", "ctxsnap", ctxsnap_flask.copy_current_request_context),
)
_WRAP = {name: wrap for name, _, wrap in HANDOFFS}

#: The scenarios, in the demo's row order: route name and the question its row answers.
SCENARIOS = (
    ("g-read", "worker sees the request's g"),
    ("g-write", "worker's g writes stay its own"),
    ("teardown", "no teardown runs in the worker"),
    ("upload", "view can read upload after"),
    ("two-workers", "one wrapper, two workers"),
)

# Teardown handlers that ran in a hand-off worker, by the worker thread's name.
_teardowns: dict[str, list[str]] = {}
_teardowns_lock = threading.Lock()


def _record_teardown(kind: str) -> None:
    name = threading.current_thread().name
    if name.startswith("handoff-"):
        with _teardowns_lock:
            _teardowns.setdefault(name, []).append(kind)


def _run(func: Callable[[], Any], name: str) -> dict[str, Any]:
    """Run ``func`` in a new thread called ``name``: what it returned or raised, and the teardowns it ran."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func()
        except Exception as exc:  # the demo shows the error a user would find in the worker's log
            outcome["error"] = _error_text(exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join(WORKER_TIMEOUT)
    if thread.is_alive():
        outcome["error"] = f"TimeoutError: the worker did not finish in {WORKER_TIMEOUT:.0f} s"
    outcome["teardowns"] = _teardowns_in(name)
    return outcome


def _teardowns_in(name: str) -> list[str]:
    with _teardowns_lock:
        return _teardowns.pop(name, [])


def _error_text(exc: BaseException) -> str:
    # Addresses differ on every run; without them the demo's output is the same each time.
    return re.sub(r" at 0x[0-9a-fA-F]+", "", f"{type(exc).__name__}: {exc}")


def _cell(state: str, text: str, detail: str | None = None) -> flask.Response:
    return jsonify(state=state, text=text, detail=detail)


def _no_context(outcome: dict[str, Any]) -> flask.Response:
    return _cell("bad", "!! no context", outcome.get("error"))


def create_app() -> flask.Flask:
    app = flask.Flask(__name__)

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex

    @app.teardown_request
    def count_teardown_request(exc: BaseException | None) -> None:
        _record_teardown("teardown_request")

    @app.teardown_appcontext
    def count_teardown_appcontext(exc: BaseException | None) -> None:
        _record_teardown("teardown_appcontext")

    @app.route("/handoff/<scenario>", methods=["GET", "POST"])
    def handoff(scenario: str) -> flask.Response | tuple[flask.Response, int]:
        via = request.args.get("via", "")
        if via not in _WRAP:
            return jsonify(error=f"via must be one of {sorted(_WRAP)}, got {via!r}"), 400
        run = _SCENARIO_RUNNERS.get(scenario)
        if run is None:
            return jsonify(error=f"unknown scenario {scenario!r}; pick one of {[s for s, _ in SCENARIOS]}"), 404
        return run(_WRAP[via])

    return app


def _g_read(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> flask.Response:
    def read() -> Any:
        return g.get("request_id")

    outcome = _run(wrap(read), f"handoff-{uuid.uuid4().hex}")
    if "error" in outcome:
        return _no_context(outcome)
    if outcome["value"] == g.request_id:
        return _cell("good", "yes")
    return _cell("bad", "!! g empty", "the worker got a new, empty g (pallets/flask#3306)")


def _g_write(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> flask.Response:
    def write() -> None:
        g.from_worker = "written by the worker"

    outcome = _run(wrap(write), f"handoff-{uuid.uuid4().hex}")
    if "error" in outcome:
        return _cell("n/a", "-- no g", outcome["error"])
    if "from_worker" in g:
        return _cell("bad", "!! leaked", "the worker's write to g showed up in the view's g")
    return _cell("good", "yes")


def _teardown(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> flask.Response:
    ran = _run(wrap(lambda: None), f"handoff-{uuid.uuid4().hex}")["teardowns"]
    if not ran:
        return _cell("good", "yes")
    return _cell("bad", "!! ran twice", " and ".join(ran) + " ran in the worker, and again at the request's end")


def _upload(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> flask.Response:
    expected = request.files["file"].read()

    def read_upload() -> int:
        upload = request.files["file"]
        upload.seek(0)
        return len(upload.read())

    outcome = _run(wrap(read_upload), f"handoff-{uuid.uuid4().hex}")
    try:
        upload = request.files["file"]
        upload.seek(0)
        again = upload.read()
    except ValueError as exc:  # what the view gets once a worker closed its file
        detail = f"the view's upload.read() raised {_error_text(exc)} (pallets/flask#5399)"
        return _cell("bad", "!! closed", detail)
    if "error" in outcome:
        return _no_context(outcome)
    if outcome["value"] != len(expected) or again != expected:
        return _cell("bad", "!! corrupt", "the worker or the view read other bytes than were uploaded")
    return _cell("good", "yes")


def _two_workers(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> flask.Response:
    first_inside, second_ready = threading.Event(), threading.Event()
    release_first, release_second = threading.Event(), threading.Event()
    names = [f"handoff-{uuid.uuid4().hex}" for _ in range(2)]

    def work() -> Any:
        if threading.current_thread().name == names[0]:
            first_inside.set()
            release_first.wait(WORKER_TIMEOUT)
        else:
            second_ready.set()
            release_second.wait(WORKER_TIMEOUT)
        return request.headers.get("X-Request-Id") if flask.has_request_context() else None

    wrapped = wrap(work)
    outcomes: list[dict[str, Any]] = [{}, {}]

    def target(index: int) -> None:
        try:
            outcomes[index]["value"] = wrapped()
        except Exception as exc:
            outcomes[index]["error"] = _error_text(exc)
        finally:
            # Worker 2 may fail before it reaches work() (Context.run: "already entered"); the view goes on.
            second_ready.set()

    threads = [threading.Thread(target=target, args=(i,), name=name, daemon=True) for i, name in enumerate(names)]
    threads[0].start()
    first_inside.wait(WORKER_TIMEOUT)
    threads[1].start()
    second_ready.wait(WORKER_TIMEOUT)
    # Worker 1 leaves while worker 2 is still inside: Flask pops worker 2's context token in worker 1.
    release_first.set()
    threads[0].join(WORKER_TIMEOUT)
    release_second.set()
    threads[1].join(WORKER_TIMEOUT)
    for name in names:
        _teardowns_in(name)
    if any(thread.is_alive() for thread in threads):
        return _cell("bad", "!! hung", f"a worker did not finish in {WORKER_TIMEOUT:.0f} s")
    errors = [o["error"] for o in outcomes if "error" in o]
    if errors:
        return _cell("bad", "!! crashed", "a worker raised " + errors[0])
    if any(o.get("value") != g.request_id for o in outcomes):
        return _cell("bad", "!! no context", "the workers ran but could not see the request")
    return _cell("good", "yes")


_SCENARIO_RUNNERS: dict[str, Callable[[Callable[[Callable[..., Any]], Callable[..., Any]]], flask.Response]] = {
    "g-read": _g_read,
    "g-write": _g_write,
    "teardown": _teardown,
    "upload": _upload,
    "two-workers": _two_workers,
}
