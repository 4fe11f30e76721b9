"""End to end: a fan-out view (4 worker tasks per request) on a real server on loopback, requests per second.

Every variant is the same app with a different way of handing the 4 tasks to a pool: ctxsnap, nothing at all
(the unsafe baseline: the workers see no request), and the competitors. All variants' servers run at once, each
on its own ephemeral port on 127.0.0.1, and the load rounds are interleaved across them, so a busy moment on
the shared machine hits all of them. A round is a fixed number of requests from a few keep-alive client
threads; every response is checked (each worker must report the request's own id through g, the ContextVar
and the header), and failures are counted as data.

The clients run in the same process as the server (no second interpreter to start and pin), so absolute
numbers are lower than a dedicated load generator would show; the ratios are what to read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import logging
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .._harness import Settings
from .._report import fmt_ratio

FANOUT = 4
CLIENTS = 4
POOL_WORKERS = 4
REQUEST_TIMEOUT = 15.0


# -- the load generator ---------------------------------------------------------------------------------------


def _load(port: int, requests: int, tag: str, deadline: float) -> dict[str, Any]:
    """Send ``requests`` GET /fanout requests from CLIENTS keep-alive connections; check every answer."""
    outcome: dict[str, Any] = {"ok": 0, "wrong": 0, "errors": 0, "first_failure": ""}
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline

    def record(kind: str, detail: str = "") -> None:
        with lock:
            outcome[kind] += 1
            if detail and not outcome["first_failure"]:
                outcome["first_failure"] = detail[:140]

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        try:
            for number in range(index, requests, CLIENTS):
                if time.monotonic() > stop_at:
                    record("errors", "round deadline reached")
                    continue
                request_id = f"{tag}-{number}"
                try:
                    connection.request("GET", f"/fanout?n={FANOUT}", headers={"X-Request-Id": request_id})
                    response = connection.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    record("errors", f"{type(exc).__name__}: {exc}")
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
                    continue
                if response.status != 200:
                    record("errors", f"HTTP {response.status}: {body[:100]!r}")
                    continue
                workers = json.loads(body)["workers"]
                if len(workers) == FANOUT and all(w == [request_id] * 3 for w in workers):
                    record("ok")
                else:
                    record("wrong", f"a worker saw {_describe(workers, request_id)}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,), name=f"bench-client-{i}") for i in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome["seconds"] = time.perf_counter() - started
    outcome["requests"] = requests
    return outcome


def _describe(workers: list[Any], request_id: str) -> str:
    for seen in workers:
        if seen != [request_id] * 3:
            return " ".join(
                f"{label} {'✓' if got == request_id else '✗'}"
                for label, got in zip(("g", "var", "request"), seen, strict=False)
            )
    return f"{len(workers)} results"


def _interleaved(ports: dict[str, int], settings: Settings, deadline: float) -> dict[str, list[dict[str, Any]]]:
    rounds = 1 if settings.quick else 7
    requests = 12 if settings.quick else 300
    for name, port in ports.items():
        _load(port, 8, f"warmup-{name}", deadline)  # connections, pools and code paths warm before timing
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
    names = list(ports)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(_load(ports[name], requests, f"{name}-{round_index}", deadline))
    return results


def _report(
    title: str, results: dict[str, list[dict[str, Any]]], baseline: str, notes: list[str], plot_file: str
) -> tuple[dict[str, Any], dict[str, float | None]]:
    body = []
    data = []
    ratios: dict[str, float | None] = {}
    series: dict[str, float | None] = {}
    for name, rounds in results.items():
        rps = [r["requests"] / r["seconds"] for r in rounds]
        base = [r["requests"] / r["seconds"] for r in results[baseline]]
        ratio = statistics.median(a / b for a, b in zip(rps, base, strict=True))
        totals = {k: sum(r[k] for r in rounds) for k in ("ok", "wrong", "errors", "requests")}
        first = next((r["first_failure"] for r in rounds if r["first_failure"]), "")
        ratios[name] = ratio
        series[name] = statistics.median(rps)
        body.append(
            [
                f"**{name}**" if name == baseline else name,
                f"{statistics.median(rps):,.0f}",
                f"{min(rps):,.0f} – {max(rps):,.0f}",
                fmt_ratio(ratio),
                f"{totals['ok']}/{totals['requests']}",
                str(totals["wrong"]),
                str(totals["errors"]),
                first,
            ]
        )
        data.append({"name": name, "rps": rps, "ratio": ratio, **totals, "first_failure": first})
    table = {
        "title": "Requests per second (fan-out of 4 tasks per request)",
        "headers": [
            "variant",
            "req/s median",
            "min – max",
            f"ratio to {baseline}",
            "correct",
            "wrong",
            "errors",
            "first failure",
        ],
        "rows": body,
        "note": "",
        "data": data,
    }
    result = {
        "title": title,
        "notes": notes,
        "tables": [table],
        "targets": [],
        "plots": [
            {
                "file": plot_file,
                "kind": "bars",
                "title": f"{title}: median requests per second",
                "ylabel": "requests per second (higher is better)",
                "series": series,
                "format": "{:,.0f}",
            }
        ],
    }
    return result, ratios


# -- Flask under Werkzeug's threaded server ------------------------------------------------------------------


def _flask_app(variant: str) -> tuple[Any, Callable[[], None]]:
    import flask
    from flask import g, jsonify, request

    import ctxsnap
    from ctxsnap.adapters import flask as ctxsnap_flask

    from .. import _flask

    app = flask.Flask(f"bench_{variant}")
    task = _flask.task
    cleanup: list[Callable[[], None]] = []
    submit: Callable[[], Any]
    if variant == "ctxsnap.ThreadPoolExecutor":
        ctxsnap_flask.CtxSnap(app)
        snap_pool = ctxsnap.ThreadPoolExecutor(max_workers=POOL_WORKERS)
        cleanup.append(snap_pool.shutdown)
        submit = lambda: snap_pool.submit(task)  # noqa: E731
    elif variant == "Flask-Executor":
        from flask_executor import Executor

        app.config["EXECUTOR_MAX_WORKERS"] = POOL_WORKERS
        executor = Executor(app)
        cleanup.append(executor.shutdown)
        submit = lambda: executor.submit(task)  # noqa: E731
    else:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=POOL_WORKERS)
        cleanup.append(pool.shutdown)
        wrappers: dict[str, Callable[[], Any]] = {
            "no propagation (plain pool)": lambda: pool.submit(task),
            "closure from DESIGN.md": lambda: pool.submit(_flask.closure(task)),
            "flask.copy_current_request_context": lambda: pool.submit(flask.copy_current_request_context(task)),
        }
        submit = wrappers[variant]

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = request.headers.get(_flask.HEADER)
        _flask.REQUEST_ID.set(g.request_id)

    @app.route("/fanout")
    def fanout() -> Any:
        count = int(request.args.get("n", FANOUT))
        futures = [submit() for _ in range(count)]
        return jsonify(request_id=g.request_id, workers=[list(f.result(timeout=REQUEST_TIMEOUT)) for f in futures])

    def close() -> None:
        for shutdown in cleanup:
            shutdown()

    return app, close


@contextlib.contextmanager
def _werkzeug_server(app: Any) -> Iterator[int]:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class KeepAlive(WSGIRequestHandler):
        # HTTP/1.1 so the clients keep their connections: connection set-up would otherwise dominate.
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=KeepAlive)
    thread = threading.Thread(target=server.serve_forever, name="bench-werkzeug", daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


FLASK_VARIANTS = [
    "no propagation (plain pool)",
    "ctxsnap.ThreadPoolExecutor",
    "Flask-Executor",
    "flask.copy_current_request_context",
    "closure from DESIGN.md",
]


def flask_fanout(settings: Settings) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    deadline = 30.0 if settings.quick else 60.0
    with contextlib.ExitStack() as stack:
        ports = {}
        for variant in FLASK_VARIANTS:
            app, close = _flask_app(variant)
            stack.callback(close)
            ports[variant] = stack.enter_context(_werkzeug_server(app))
        results = _interleaved(ports, settings, deadline)
    rounds = len(results[FLASK_VARIANTS[0]])
    requests = results[FLASK_VARIANTS[0]][0]["requests"]
    result, _ = _report(
        "End to end, Flask fan-out view under Werkzeug's threaded server",
        results,
        "no propagation (plain pool)",
        [
            f"{rounds} interleaved round(s) of {requests} requests per variant, {CLIENTS} keep-alive clients, "
            f'{FANOUT} pool tasks per request, {POOL_WORKERS}-worker pool per variant. "correct": every worker '
            "reported the request's own id through g, the ContextVar and the header."
        ],
        "e2e_flask.png",
    )
    return result


# -- Quart under Hypercorn --------------------------------------------------------------------------------------


QUART_VARIANTS = [
    "no propagation (run_in_executor)",
    "ctxsnap.adapters.quart.to_thread",
    "quart.utils.run_sync",
    "asyncio.to_thread",
]


def _quart_app(variant: str) -> Any:
    import quart
    from quart import g, jsonify, request

    from .. import _quart

    app = quart.Quart(f"bench_{variant}")
    task = _quart.task
    helper: Callable[[], Any]
    if variant == "ctxsnap.adapters.quart.to_thread":
        from ctxsnap.adapters.quart import to_thread

        helper = lambda: to_thread(task)  # noqa: E731
    elif variant == "quart.utils.run_sync":
        from quart.utils import run_sync

        wrapped = run_sync(task)
        helper = lambda: wrapped()  # noqa: E731
    elif variant == "asyncio.to_thread":
        helper = lambda: asyncio.to_thread(task)  # noqa: E731
    else:
        helper = lambda: asyncio.get_running_loop().run_in_executor(None, task)  # noqa: E731

    @app.before_request
    async def assign_request_id() -> None:
        g.request_id = request.headers.get(_quart.HEADER)
        _quart.REQUEST_ID.set(g.request_id)

    @app.route("/fanout")
    async def fanout() -> Any:
        count = int(request.args.get("n", FANOUT))
        results = await asyncio.gather(*(helper() for _ in range(count)))
        return jsonify(request_id=g.request_id, workers=[list(r) for r in results])

    return app


@contextlib.contextmanager
def _hypercorn_server(app: Any) -> Iterator[int]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = Config()
    # Hypercorn takes the bound socket over by its descriptor: the port is known before it starts.
    config.bind = [f"fd://{listener.detach()}"]
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=POOL_WORKERS))
    stop = asyncio.Event()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait))
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()

    thread = threading.Thread(target=run, name="bench-hypercorn", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    _wait_for_port(port)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def quart_fanout(settings: Settings) -> dict[str, Any]:
    deadline = 30.0 if settings.quick else 60.0
    with contextlib.ExitStack() as stack:
        ports = {
            variant: stack.enter_context(_hypercorn_server(_quart_app(variant))) for variant in QUART_VARIANTS
        }
        results = _interleaved(ports, settings, deadline)
    rounds = len(results[QUART_VARIANTS[0]])
    requests = results[QUART_VARIANTS[0]][0]["requests"]
    result, _ = _report(
        "End to end, Quart fan-out view under Hypercorn",
        results,
        "no propagation (run_in_executor)",
        [
            f"{rounds} interleaved round(s) of {requests} requests per variant, {CLIENTS} keep-alive clients, "
            f"{FANOUT} `await`ed thread tasks per request, each server on its own event loop thread with a "
            f'{POOL_WORKERS}-worker default executor. "correct": every worker reported the request\'s own id '
            "through g, the ContextVar and the header. quart.utils.run_sync and asyncio.to_thread hand the worker "
            "the request's own g object, so a worker's g writes leak into the request: this read-only check does "
            "not show that (the test suite does)."
        ],
        "e2e_quart.png",
    )
    return result
