"""The example Flask app on werkzeug's real threaded server, driven over loopback by a real HTTP client.

These run in every Flask cell of the matrix (1.1.1 to 3.1): what a user of any supported Flask relies on when
a view hands work to a pool or a thread. Each property is checked against the same app with propagation off,
so a ctxsnap that carried nothing would fail here rather than pass vacuously.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import flask
import httpx
import pytest

from examples import flask_app
from tests.support import TIMEOUT


def _client(base_url: str) -> httpx.Client:
    # trust_env=False: a proxy configured in the environment must never see loopback traffic.
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False)


@pytest.fixture
def ctxsnap_url() -> Iterator[str]:
    with flask_app.serve(flask_app.create_app(propagate=True)) as url:
        yield url


@pytest.fixture
def plain_url() -> Iterator[str]:
    with flask_app.serve(flask_app.create_app(propagate=False)) as url:
        yield url


def _get(base_url: str, path: str, request_id: str) -> dict[str, Any]:
    with _client(base_url) as client:
        response = client.get(path, headers={"X-Request-Id": request_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- GET / : one pool task and one threading.Thread --------------------------------------------------------


def test_pool_task_and_thread_see_g_contextvar_and_header(ctxsnap_url: str) -> None:
    body = _get(ctxsnap_url, "/", "req-index-1")

    assert body["request_id"] == "req-index-1"
    for kind in ("executor", "thread"):
        seen = body["workers"][kind]
        assert (seen["g"], seen["var"], seen["header"]) == ("req-index-1",) * 3, kind
        # The work really ran in another thread, not inline in the view.
        assert seen["thread"] != body["view_thread"], kind


def test_without_ctxsnap_the_same_workers_see_nothing(plain_url: str) -> None:
    body = _get(plain_url, "/", "req-index-plain")

    assert body["request_id"] == "req-index-plain"
    for kind in ("executor", "thread"):
        seen = body["workers"][kind]
        assert (seen["g"], seen["var"], seen["header"]) == (None, None, None), kind


# -- GET /fanout : the shared pool under concurrent requests ------------------------------------------------


def test_fanout_workers_all_see_their_request(ctxsnap_url: str) -> None:
    body = _get(ctxsnap_url, "/fanout?n=6", "req-fanout-1")

    assert len(body["workers"]) == 6
    assert all((w["g"], w["var"], w["header"]) == ("req-fanout-1",) * 3 for w in body["workers"]), body["workers"]


def test_fanout_without_ctxsnap_sees_nothing(plain_url: str) -> None:
    body = _get(plain_url, "/fanout?n=4", "req-fanout-plain")

    assert [(w["g"], w["var"], w["header"]) for w in body["workers"]] == [(None, None, None)] * 4


def test_concurrent_requests_never_see_each_others_ids(ctxsnap_url: str) -> None:
    clients, requests_each, fanout = 8, 25, 4
    start = threading.Barrier(clients, timeout=TIMEOUT)
    wrong: list[tuple[str, dict[str, Any]]] = []
    failures: list[BaseException] = []
    ids_by_worker_thread: dict[int, set[str]] = defaultdict(set)
    lock = threading.Lock()

    def client_loop(number: int) -> None:
        try:
            with _client(ctxsnap_url) as client:
                start.wait()
                for i in range(requests_each):
                    sent = f"c{number}-r{i}-{uuid.uuid4().hex[:8]}"
                    response = client.get(f"/fanout?n={fanout}", headers={"X-Request-Id": sent})
                    body = response.json()
                    with lock:
                        if response.status_code != 200 or body["request_id"] != sent:
                            wrong.append((sent, body))
                            continue
                        for seen in body["workers"]:
                            ids_by_worker_thread[seen["thread"]].add(sent)
                            if (seen["g"], seen["var"], seen["header"]) != (sent, sent, sent):
                                wrong.append((sent, seen))
        except BaseException as exc:  # reported below: an exception in a thread must fail the test
            failures.append(exc)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT * 2)

    assert not any(t.is_alive() for t in threads), "a client thread did not finish"
    assert failures == []
    assert wrong == []
    served = sum(len(ids) for ids in ids_by_worker_thread.values())
    assert served >= clients * requests_each  # every request reported workers
    # The isolation claim only means something if pool threads were reused across requests.
    assert max(len(ids) for ids in ids_by_worker_thread.values()) > 1


def test_fanout_rejects_a_bad_n_with_a_clear_message(ctxsnap_url: str) -> None:
    with _client(ctxsnap_url) as client:
        for bad in ("0", "abc", str(flask_app.FANOUT_MAX + 1)):
            response = client.get("/fanout", params={"n": bad})
            assert response.status_code == 400
            assert "n must be an integer" in response.json()["error"]


# -- teardown: once per request, in the request thread ------------------------------------------------------


def _count_lifecycle(app: flask.Flask) -> list[tuple[str, str, int]]:
    """Record (event, request id, thread) for before_request and both teardown hooks."""
    events: list[tuple[str, str, int]] = []

    @app.before_request
    def record_start() -> None:
        events.append(("before_request", flask.g.request_id, threading.get_ident()))

    @app.teardown_request
    def record_teardown_request(exc: BaseException | None) -> None:
        events.append(("teardown_request", flask.g.get("request_id"), threading.get_ident()))

    @app.teardown_appcontext
    def record_teardown_appcontext(exc: BaseException | None) -> None:
        events.append(("teardown_appcontext", flask.g.get("request_id"), threading.get_ident()))

    return events


def test_teardown_handlers_run_once_per_request_in_the_request_thread() -> None:
    app = flask_app.create_app(propagate=True)
    events = _count_lifecycle(app)
    sent = [f"req-teardown-{i}" for i in range(6)]

    with flask_app.serve(app) as url, _client(url) as client:
        for i, request_id in enumerate(sent):
            path = "/" if i % 2 else "/fanout?n=4"
            assert client.get(path, headers={"X-Request-Id": request_id}).status_code == 200

    request_thread = {rid: thread for event, rid, thread in events if event == "before_request"}
    assert sorted(request_thread) == sorted(sent)
    for hook in ("teardown_request", "teardown_appcontext"):
        ran = [(rid, thread) for event, rid, thread in events if event == hook]
        assert sorted(rid for rid, _ in ran) == sorted(sent), hook  # exactly once per request
        assert all(thread == request_thread[rid] for rid, thread in ran), hook


# -- uploads: a worker must not close the request's files (pallets/flask#5399) ------------------------------


@pytest.mark.parametrize(
    "size",
    # Werkzeug keeps small uploads in memory and spools large ones to a temporary file: test both.
    [1024, 1024 * 1024],
    ids=["in-memory", "temporary-file"],
)
def test_uploaded_file_is_still_readable_in_the_view_after_a_worker_read_it(ctxsnap_url: str, size: int) -> None:
    payload = bytes(range(256)) * (size // 256)
    digest = hashlib.sha256(payload).hexdigest()

    with _client(ctxsnap_url) as client:
        response = client.post("/upload", files={"file": ("data.bin", payload, "application/octet-stream")})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["worker"] == {"size": size, "sha256": digest}
    assert body["view"] == {"closed": False, "size": size, "sha256": digest}


def test_upload_without_ctxsnap_the_worker_cannot_see_the_file(plain_url: str) -> None:
    payload = b"x" * 2048
    with _client(plain_url) as client:
        response = client.post("/upload", files={"file": ("data.bin", payload)})

    body = response.json()
    assert body["worker"] is None
    assert body["view"]["sha256"] == hashlib.sha256(payload).hexdigest()


def test_upload_without_a_file_is_refused_with_a_clear_message(ctxsnap_url: str) -> None:
    with _client(ctxsnap_url) as client:
        response = client.post("/upload", data={"other": "x"})
    assert response.status_code == 400
    assert "field named 'file'" in response.json()["error"]
