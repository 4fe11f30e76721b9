"""The same problem in an async app: a Quart view and a websocket handler hand sync work to threads.

``before_request`` puts a request id in ``g`` and in a ContextVar; the views run sync functions in worker
threads, and every worker reports what it sees. Quart's own helpers (``quart.utils.run_sync``, and
``asyncio.to_thread``) do carry ContextVars, and with them Quart's app context: the worker gets the request's
*own* ``g`` object, so what it writes there lands in the request. With ``propagate=True`` the app uses
``ctxsnap.adapters.quart.to_thread`` (the worker gets its own copy of ``g``) and ``ctxsnap.Thread``; with
``propagate=False`` it uses Quart's ``run_sync`` and a plain ``threading.Thread``, which sees nothing at all.

The Quart demo (``examples/quart_demo.py``) and ``tests/examples/test_quart_app.py`` drive this module on a
real Hypercorn server on loopback (:func:`serve`).

Routes:

* ``GET /``: one ``to_thread`` worker and one thread report ``g.request_id``, the ``request_id`` ContextVar and
  the ``X-Request-Id`` header as they see them; the ``to_thread`` worker then writes ``g.note``, and the view
  reports whether that write reached the request's own ``g``.
* ``GET /fanout?n=4``: ``n`` concurrent ``to_thread`` workers, each reporting the same plus its thread id, then
  writing ``g.note``; the view reports whether a write reached the request's ``g``.
* websocket ``/ws``: each text message is a request id; the handler stores it in ``g`` and the ContextVar, two
  ``to_thread`` workers report what they see (``g``, ContextVar, the websocket's path) and write ``g.note``,
  and the handler sends the JSON answer, saying whether a write reached the websocket's ``g``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlsplit

import quart
import quart.utils
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from quart import g, request, websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage

import ctxsnap
from ctxsnap.adapters import quart as ctxsnap_quart

__all__ = ["FANOUT_MAX", "WebSocketClient", "create_app", "request_id", "serve"]

T = TypeVar("T")

#: The ContextVar a logging or tracing library would keep the request id in.
request_id: ContextVar[str] = ContextVar("request_id")

#: Upper bound for ``/fanout?n=``: the executor is shared by every request, one must not monopolise it.
FANOUT_MAX = 64
#: How long a handler waits for a plain thread before answering without it: generous, the machine is shared.
WORKER_TIMEOUT = 30.0


def _visible(read: Callable[[], T]) -> T | None:
    # Quart raises RuntimeError ("Not within a request context") when a worker cannot see the context at all;
    # the example reports that as null instead of failing the view.
    try:
        return read()
    except RuntimeError:
        return None


def what_this_worker_sees() -> dict[str, Any]:
    """The request id as seen through ``g``, the ContextVar and the request header, and the worker's thread."""
    return {
        "g": _visible(lambda: g.get("request_id")),
        "var": request_id.get(None),
        "header": _visible(lambda: request.headers.get("X-Request-Id")),
        "thread": threading.get_ident(),
    }


def what_this_socket_worker_sees() -> dict[str, Any]:
    """The same for a websocket message: ``g``, the ContextVar, the websocket's path, and the thread."""
    return {
        "g": _visible(lambda: g.get("request_id")),
        "var": request_id.get(None),
        "path": _visible(lambda: websocket.path),
        "thread": threading.get_ident(),
    }


def look_then_write_g() -> dict[str, Any]:
    """Report what the worker sees, then write to ``g`` as a helper caching something would."""
    return _then_write_g(what_this_worker_sees())


def look_at_the_socket_then_write_g() -> dict[str, Any]:
    """The same for a websocket message."""
    return _then_write_g(what_this_socket_worker_sees())


def _then_write_g(seen: dict[str, Any]) -> dict[str, Any]:
    if _visible(lambda: g.get("request_id")) is not None:
        g.note = "written by the worker"
    return seen


def create_app(propagate: bool = True) -> quart.Quart:
    """The example app; ``propagate=False`` swaps ctxsnap for Quart's ``run_sync`` and ``threading.Thread``."""
    app = quart.Quart(__name__)
    app.config["PROPAGATE"] = propagate
    if propagate:
        # Optional: the providers work without it. The extension is where the g/teardown policies live.
        ctxsnap_quart.CtxSnap(app)
    thread_class = ctxsnap.Thread if propagate else threading.Thread

    async def in_thread(fn: Callable[[], T]) -> T:
        if propagate:
            return await ctxsnap_quart.to_thread(fn)
        return await quart.utils.run_sync(fn)()  # type: ignore[no-any-return]

    @app.before_request
    async def assign_request_id() -> None:
        value = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        g.request_id = value
        request_id.set(value)

    @app.route("/")
    async def index() -> Any:
        from_thread: dict[str, Any] = {}
        done = threading.Event()

        def in_plain_thread() -> None:
            try:
                from_thread.update(what_this_worker_sees())
            finally:
                done.set()

        thread = thread_class(target=in_plain_thread, name="example-thread")
        thread.start()
        from_to_thread = await in_thread(look_then_write_g)
        # Wait without blocking the event loop: the thread sets an Event, a worker waits for it.
        await asyncio.get_running_loop().run_in_executor(None, done.wait, WORKER_TIMEOUT)
        return {
            "request_id": g.request_id,
            "propagate": propagate,
            "workers": {"to_thread": from_to_thread, "thread": from_thread or None},
            "g_note_leaked_into_request": "note" in g,
        }

    @app.route("/fanout")
    async def fanout() -> Any:
        raw = request.args.get("n", "4")
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if not 1 <= n <= FANOUT_MAX:
            return {"error": f"n must be an integer from 1 to {FANOUT_MAX}, got {raw!r}"}, 400
        workers = await asyncio.gather(*(in_thread(look_then_write_g) for _ in range(n)))
        return {"request_id": g.request_id, "workers": list(workers), "g_note_leaked_into_request": "note" in g}

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            sent = message if isinstance(message, str) else message.decode()
            g.request_id = sent
            request_id.set(sent)
            workers = await asyncio.gather(*(in_thread(look_at_the_socket_then_write_g) for _ in range(2)))
            # The websocket's g lives as long as the connection: each answer reports this message's writes only.
            leaked = g.pop("note", None) is not None
            answer = {"request_id": sent, "workers": list(workers), "g_note_leaked_into_socket": leaked}
            await websocket.send(json.dumps(answer))

    return app


@contextmanager
def serve(app: quart.Quart) -> Iterator[str]:
    """Run ``app`` on Hypercorn on an ephemeral loopback port, in a background thread; yield its base URL.

    The server gets its own event loop in its own thread. The socket is bound and listening before the URL is
    handed out, so the first request never races the server's start; the block's end shuts the server down
    gracefully and joins the thread.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = Config()
    # Hypercorn adopts the listening socket (and closes it at shutdown); binding port 0 through Config would
    # leave us unable to learn the port it picked.
    config.bind = [f"fd://{listener.detach()}"]
    config.accesslog = None
    config.loglevel = "WARNING"  # no "Running on ..." banner in the demo's output; errors still show
    config.graceful_timeout = 5.0

    started = threading.Event()
    state: dict[str, Any] = {}

    async def run() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop
        started.set()
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)

    def thread_main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # reported to the caller at shutdown rather than lost with the thread
            state["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=thread_main, name="example-asgi-server", daemon=True)
    thread.start()
    started.wait(WORKER_TIMEOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop = state.get("loop")
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(state["stop"].set)
        thread.join(WORKER_TIMEOUT)
        if "error" in state:
            raise RuntimeError("the example Hypercorn server failed") from state["error"]


class WebSocketClient:
    """A small real websocket client: wsproto (the protocol library Hypercorn itself uses) over a TCP socket.

    ``with WebSocketClient(base_url, "/ws") as ws: ws.send("id"); ws.receive()``. Blocking, one text message at
    a time; every socket operation is bounded by ``timeout``.
    """

    def __init__(self, base_url: str, path: str, *, timeout: float = WORKER_TIMEOUT) -> None:
        address = urlsplit(base_url)
        host, port = address.hostname or "127.0.0.1", address.port or 80
        self._socket = socket.create_connection((host, port), timeout=timeout)
        self._connection = WSConnection(ConnectionType.CLIENT)
        self._queue: list[Any] = []
        self._text: list[str] = []
        self._messages: list[str] = []
        try:
            self._socket.sendall(self._connection.send(Request(host=f"{host}:{port}", target=path)))
            while True:
                event = self._next_event()
                if isinstance(event, AcceptConnection):
                    break
                if isinstance(event, RejectConnection):
                    raise ConnectionError(f"the server refused the websocket on {path} ({event.status_code})")
        except BaseException:
            self._socket.close()
            raise

    def send(self, text: str) -> None:
        self._socket.sendall(self._connection.send(TextMessage(data=text)))

    def receive(self) -> str:
        """The next complete text message."""
        while not self._messages:
            event = self._next_event()
            if isinstance(event, CloseConnection):
                raise ConnectionError(f"the server closed the websocket ({event.code} {event.reason})")
        return self._messages.pop(0)

    def close(self) -> None:
        try:
            self._socket.sendall(self._connection.send(CloseConnection(code=1000)))
            while not isinstance(self._next_event(), CloseConnection):
                pass
        except (OSError, ConnectionError):
            pass  # the server went first; nothing left to say
        finally:
            self._socket.close()

    def __enter__(self) -> WebSocketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_event(self) -> Any:
        """The next event that matters to the caller; answers pings and collects text on the way."""
        while True:
            while self._queue:
                event = self._queue.pop(0)
                if isinstance(event, Ping):
                    self._socket.sendall(self._connection.send(event.response()))
                elif isinstance(event, TextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        self._messages.append("".join(self._text))
                        self._text.clear()
                        return event
                else:
                    return event
            data = self._socket.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self._connection.receive_data(data)
            self._queue.extend(self._connection.events())
