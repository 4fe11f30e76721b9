"""The load driver of the isolation tests: many loopback clients, each request with an id of its own.

Each client thread keeps one HTTP connection (``http.client``, the standard library's real client) and sends
requests whose ``X-Request-Id`` is unique in the whole run. The example apps put that id in ``g`` and in a
ContextVar in ``before_request`` and fan out to one pool shared by every request; every worker reports the id
it saw through ``g``, the ContextVar and the request header. A report that differs from the id its request
sent, in any of the three, is a mismatch: one request's context reached another's worker, or none arrived.

The run is bounded twice: by a request count and by a deadline. The deadline is a guard against a hang, set
far above what the count needs; a run that hits it fails and says how far it got.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int = 0
    reports: int = 0
    mismatches: int = 0
    errors: int = 0
    seconds: float = 0.0
    deadline_hit: bool = False
    #: The first few mismatches and errors, for the failure message.
    examples: list[str] = field(default_factory=list)
    #: Distinct worker threads that answered: proof the shared pool's threads were reused across requests.
    worker_threads: set[int] = field(default_factory=set)

    def summary(self, label: str, unit: str = "requests") -> str:
        return (
            f"isolation {label}: {self.requests} {unit}, {self.reports} worker reports, "
            f"{self.mismatches} mismatches, {self.errors} errors, {len(self.worker_threads)} worker threads, "
            f"{self.seconds:.1f} s"
        )


def _paths(i: int) -> str:
    # Mostly /fanout with a varying width; every tenth request the original problem view (a pool task and a
    # threading.Thread per request).
    if i % 10 == 9:
        return "/"
    return f"/fanout?n={1 + i % 8}"


def _reports_of(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if path == "/":
        # {"executor"/"to_thread": ..., "thread": ...}: a missing thread report counts as a mismatch.
        return [report or {} for report in body["workers"].values()]
    reports: list[dict[str, Any]] = body["workers"]
    return reports


def _leak_flag(body: dict[str, Any]) -> bool:
    # The Quart example's "/" has its worker write g.note and reports whether the request's g got it.
    return bool(body.get("g_note_leaked_into_request"))


class _Client:
    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._timeout = timeout
        self._connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def get(self, path: str, request_id: str) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self._connection.request("GET", path, headers={"X-Request-Id": request_id})
                response = self._connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed a kept-alive connection between two requests (HTTP/1.0 servers do after
                # each one): reconnect once. A second failure is a real error.
                self._connection.close()
                self._connection = self._connect()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._connection.close()


def run_load(base_url: str, *, total: int, clients: int, deadline: float, timeout: float = 60.0) -> LoadResult:
    """Send ``total`` requests from ``clients`` threads; stop early only when ``deadline`` seconds pass."""
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(total))
    started = time.monotonic()
    stop_at = started + deadline
    run_id = uuid.uuid4().hex[:8]

    def note(kind: str, text: str) -> None:
        if len(result.examples) < 10:
            result.examples.append(f"{kind}: {text}")

    def client_loop(client_number: int) -> None:
        client = _Client(base_url, timeout)
        try:
            while True:
                if time.monotonic() > stop_at:
                    with lock:
                        result.deadline_hit = True
                    return
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                request_id = f"{run_id}-{client_number}-{i}"
                path = _paths(i)
                try:
                    status, raw = client.get(path, request_id)
                    body = json.loads(raw)
                except Exception as exc:  # counted and shown; the test fails on any
                    with lock:
                        result.requests += 1
                        result.errors += 1
                        note("error", f"{path} {request_id}: {type(exc).__name__}: {exc}")
                    continue
                reports = _reports_of(path, body) if status == 200 else []
                wrong = [r for r in reports if (r.get("g"), r.get("var"), r.get("header")) != (request_id,) * 3]
                with lock:
                    result.requests += 1
                    if _leak_flag(body):
                        result.mismatches += 1
                        note("mismatch", f"{path} {request_id}: a worker's g write reached the request")
                    if status != 200 or body.get("request_id") != request_id:
                        result.errors += 1
                        note("error", f"{path} {request_id}: status {status}, body {raw[:200]!r}")
                    result.reports += len(reports)
                    result.mismatches += len(wrong)
                    result.worker_threads.update(r["thread"] for r in reports if "thread" in r)
                    for report in wrong:
                        note("mismatch", f"{path} sent {request_id}, a worker saw {report}")
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(n,), name=f"load-client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline + 2 * timeout)
    result.seconds = time.monotonic() - started
    if any(thread.is_alive() for thread in threads):
        result.deadline_hit = True
        note("error", "client threads still running after the deadline")
    return result


def run_websocket_load(
    base_url: str, client_class: Any, *, connections: int, messages: int, deadline: float
) -> LoadResult:
    """``connections`` concurrent websockets, each sending ``messages`` ids one after the other.

    Each message is a new id the handler puts in ``g`` and the ContextVar before fanning out; two workers
    report what they see. On one socket, a worker seeing the previous message's id is as much a mismatch as
    seeing another socket's.
    """
    result = LoadResult()
    lock = threading.Lock()
    started = time.monotonic()
    stop_at = started + deadline
    run_id = uuid.uuid4().hex[:8]

    def note(kind: str, text: str) -> None:
        if len(result.examples) < 10:
            result.examples.append(f"{kind}: {text}")

    def client_loop(client_number: int) -> None:
        try:
            with client_class(base_url, "/ws") as socket:
                for i in range(messages):
                    if time.monotonic() > stop_at:
                        with lock:
                            result.deadline_hit = True
                        return
                    request_id = f"{run_id}-ws{client_number}-{i}"
                    socket.send(request_id)
                    body = json.loads(socket.receive())
                    reports = body["workers"]
                    expected = (request_id, request_id, "/ws")
                    wrong = [r for r in reports if (r.get("g"), r.get("var"), r.get("path")) != expected]
                    with lock:
                        result.requests += 1
                        result.reports += len(reports)
                        result.mismatches += len(wrong)
                        result.worker_threads.update(r["thread"] for r in reports)
                        if body.get("request_id") != request_id:
                            result.errors += 1
                            note("error", f"sent {request_id}, the handler answered for {body.get('request_id')}")
                        for report in wrong:
                            note("mismatch", f"sent {request_id}, a worker saw {report}")
        except Exception as exc:
            with lock:
                result.errors += 1
                note("error", f"websocket client {client_number}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client_loop, args=(n,), name=f"ws-client-{n}") for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline + 60)
    result.seconds = time.monotonic() - started
    if any(thread.is_alive() for thread in threads):
        result.deadline_hit = True
        note("error", "websocket clients still running after the deadline")
    return result


def assert_isolated(result: LoadResult, total: int) -> None:
    assert not result.deadline_hit, f"the run hit its deadline after {result.requests} of {total} requests"
    assert result.requests == total
    assert result.errors == 0, result.examples
    assert result.mismatches == 0, result.examples
    # At least one report per request (the fan-out is 1 to 8 wide, the / view reports twice).
    assert result.reports >= total
