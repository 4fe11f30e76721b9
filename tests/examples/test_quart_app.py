"""The example Quart app on a real Hypercorn server, reached over loopback by real HTTP and websocket clients.

Each route is also driven on the same app with propagation off (Quart's own ``run_sync`` and a plain
``threading.Thread``), so the tests show what ctxsnap changes rather than pass vacuously: ``GET /``, ``/fanout``
and ``/ws`` workers write into the request's or websocket's own ``g`` there, and the plain thread of ``GET /``
sees nothing. The concurrent-client tests have no such twin: Quart's ``run_sync`` carries ids too, and a
per-request id cannot leak between requests either way; they guard ctxsnap's per-run copies. Quart and Hypercorn
are imported inside the fixtures: the Flask-only cells of the matrix deselect this module by its marker, and
must be able to collect it without them.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import TIMEOUT

pytestmark = pytest.mark.quart


@pytest.fixture(scope="module")
def quart_app() -> ModuleType:
    from examples import quart_app

    return quart_app


@pytest.fixture
def ctxsnap_url(quart_app: ModuleType) -> Iterator[str]:
    with quart_app.serve(quart_app.create_app(propagate=True)) as url:
        yield url


@pytest.fixture
def plain_url(quart_app: ModuleType) -> Iterator[str]:
    with quart_app.serve(quart_app.create_app(propagate=False)) as url:
        yield url


def _client(base_url: str) -> httpx.Client:
    # trust_env=False: a proxy configured in the environment must never see loopback traffic.
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False)


def _get(base_url: str, path: str, request_id: str) -> dict[str, Any]:
    with _client(base_url) as client:
        response = client.get(path, headers={"X-Request-Id": request_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _sees(worker: dict[str, Any], request_id: str) -> bool:
    return bool(worker["g"] == worker["var"] == worker["header"] == request_id)


# -- GET / -------------------------------------------------------------------------------------------------------


def test_the_to_thread_worker_and_the_thread_see_g_contextvar_and_header(ctxsnap_url: str) -> None:
    body = _get(ctxsnap_url, "/", "req-index-1")
    assert body["request_id"] == "req-index-1"
    assert _sees(body["workers"]["to_thread"], "req-index-1")
    assert _sees(body["workers"]["thread"], "req-index-1")


def test_the_workers_g_write_stays_in_the_worker(ctxsnap_url: str) -> None:
    assert _get(ctxsnap_url, "/", "req-index-2")["g_note_leaked_into_request"] is False


def test_without_ctxsnap_quarts_run_sync_shares_g_and_a_plain_thread_sees_nothing(plain_url: str) -> None:
    # What the example replaces: Quart's run_sync copies the ContextVars and with them the request's own g
    # object, so the worker's write lands in the request; a plain thread starts with an empty context.
    body = _get(plain_url, "/", "req-plain-1")
    assert _sees(body["workers"]["to_thread"], "req-plain-1")
    assert body["g_note_leaked_into_request"] is True
    thread = body["workers"]["thread"]
    assert (thread["g"], thread["var"], thread["header"]) == (None, None, None)


# -- GET /fanout --------------------------------------------------------------------------------------------------


def test_concurrent_clients_fanning_out_never_see_another_requests_id(ctxsnap_url: str) -> None:
    clients, requests_each, fanout = 6, 4, 4

    def one_client(number: int) -> list[tuple[str, dict[str, Any]]]:
        seen = []
        with _client(ctxsnap_url) as client:
            for i in range(requests_each):
                sent = f"client{number}-request{i}"
                response = client.get(f"/fanout?n={fanout}", headers={"X-Request-Id": sent})
                assert response.status_code == 200, response.text
                seen += [(sent, worker) for worker in response.json()["workers"]]
        return seen

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [item for chunk in pool.map(one_client, range(clients), timeout=TIMEOUT) for item in chunk]
    assert len(results) == clients * requests_each * fanout
    wrong = [(sent, worker) for sent, worker in results if not _sees(worker, sent)]
    assert wrong == []


def test_the_fanout_workers_g_writes_stay_in_the_workers(ctxsnap_url: str) -> None:
    body = _get(ctxsnap_url, "/fanout?n=4", "req-fanout-1")
    assert [_sees(worker, "req-fanout-1") for worker in body["workers"]] == [True] * 4
    assert body["g_note_leaked_into_request"] is False


def test_without_ctxsnap_the_fanout_workers_write_into_the_requests_g(plain_url: str) -> None:
    # Quart's run_sync carries the id to every worker as well, but as the request's own g: their writes land there.
    body = _get(plain_url, "/fanout?n=4", "req-fanout-plain")
    assert [_sees(worker, "req-fanout-plain") for worker in body["workers"]] == [True] * 4
    assert body["g_note_leaked_into_request"] is True


@pytest.mark.parametrize("n", ["0", "65", "many"])
def test_fanout_refuses_a_bad_n_and_says_what_it_takes(ctxsnap_url: str, n: str) -> None:
    with _client(ctxsnap_url) as client:
        response = client.get(f"/fanout?n={n}")
    assert response.status_code == 400
    assert "n must be an integer from 1 to 64" in response.json()["error"]


# -- websocket /ws ------------------------------------------------------------------------------------------------


def test_a_websocket_message_is_seen_by_the_handlers_to_thread_workers(
    quart_app: ModuleType, ctxsnap_url: str
) -> None:
    with quart_app.WebSocketClient(ctxsnap_url, "/ws") as ws:
        for sent in ("first message", "second message"):
            ws.send(sent)
            answer = json.loads(ws.receive())
            assert answer["request_id"] == sent
            for worker in answer["workers"]:
                assert (worker["g"], worker["var"], worker["path"]) == (sent, sent, "/ws")
            assert answer["g_note_leaked_into_socket"] is False


def test_without_ctxsnap_the_websocket_workers_write_into_the_sockets_g(
    quart_app: ModuleType, plain_url: str
) -> None:
    with quart_app.WebSocketClient(plain_url, "/ws") as ws:
        for sent in ("first message", "second message"):
            ws.send(sent)
            answer = json.loads(ws.receive())
            for worker in answer["workers"]:
                assert (worker["g"], worker["var"], worker["path"]) == (sent, sent, "/ws")
            assert answer["g_note_leaked_into_socket"] is True


def test_concurrent_websocket_clients_never_see_another_clients_id(
    quart_app: ModuleType, ctxsnap_url: str
) -> None:
    clients, messages = 4, 5
    start = threading.Barrier(clients, timeout=TIMEOUT)

    def one_client(number: int) -> list[bool]:
        verdicts = []
        with quart_app.WebSocketClient(ctxsnap_url, "/ws") as ws:
            start.wait()  # every connection is open before anyone sends: the handlers really overlap
            for i in range(messages):
                sent = f"socket{number}-message{i}"
                ws.send(sent)
                answer = json.loads(ws.receive())
                verdicts += [
                    answer["request_id"] == sent and worker["g"] == worker["var"] == sent
                    for worker in answer["workers"]
                ]
        return verdicts

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        verdicts = [v for chunk in pool.map(one_client, range(clients), timeout=TIMEOUT) for v in chunk]
    assert verdicts == [True] * (clients * messages * 2)


# -- the server itself --------------------------------------------------------------------------------------------


def test_serve_binds_loopback_on_an_ephemeral_port_and_shuts_down_cleanly(quart_app: ModuleType) -> None:
    threads_before = set(threading.enumerate())
    with quart_app.serve(quart_app.create_app()) as url:
        address = urlsplit(url)
        assert address.hostname == "127.0.0.1" and address.port not in (None, 0, 80, 5000, 8000)
        assert _get(url, "/", "req-serve")["request_id"] == "req-serve"
    with pytest.raises(OSError):
        socket.create_connection((address.hostname, address.port), timeout=5).close()
    assert not [t for t in set(threading.enumerate()) - threads_before if t.name == "example-asgi-server"]
