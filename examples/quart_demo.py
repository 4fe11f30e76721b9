"""The Quart part of ``python dev.py demo``: what worker threads of an async app see, with and without ctxsnap.

It starts ``examples/quart_app.py`` twice on Hypercorn on loopback (ephemeral ports), once with ctxsnap and once
with Quart's own ``run_sync`` and a plain ``threading.Thread``, sends real HTTP requests and websocket messages,
and prints one small table per question. ``examples/demo.py`` calls :func:`demo` after the Flask part; run alone
with ``python examples/quart_demo.py``.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Running as "python examples/quart_demo.py" puts examples/ on the path, not the repository root.
    sys.path.insert(0, str(ROOT))

from examples import quart_app  # noqa: E402

__all__ = ["demo"]

TIMEOUT = 60.0
CLIENTS, REQUESTS_EACH, FANOUT = 8, 5, 4
SOCKETS, MESSAGES = 4, 5
MODES = (("with ctxsnap", True), ("without ctxsnap", False))


def _client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False)


def _show(value: Any, expected: str) -> str:
    if value is None:
        return "-- missing"
    return str(value) if value == expected else f"!! {value} (wrong)"


def _verdict(values: tuple[Any, ...], expected: str) -> str:
    if all(v == expected for v in values):
        return "right"
    if any(v is not None and v != expected for v in values):
        return "wrong"
    return "missing"


def show_index(urls: dict[bool, str]) -> bool:
    request_id = f"demo-{uuid.uuid4().hex[:6]}"
    print(f"1. GET /  with header X-Request-Id: {request_id}")
    print("   before_request stores it in g and in a ContextVar; a to_thread worker and a thread report what they")
    print("   see, then the to_thread worker writes g.note.\n")
    print(f"   {'':<17}{'worker':<20}{'g.request_id':<18}{'ContextVar':<18}request header")
    ok = True
    for label, propagate in MODES:
        with _client(urls[propagate]) as client:
            body = client.get("/", headers={"X-Request-Id": request_id}).json()
        helper = "to_thread" if propagate else "quart run_sync"
        for i, (kind, name) in enumerate((("to_thread", helper), ("thread", "threading.Thread"))):
            seen = body["workers"][kind]
            cells = "".join(f"{_show(seen[key], request_id):<18}" for key in ("g", "var", "header"))
            print(f"   {label if i == 0 else '':<17}{name:<20}{cells}".rstrip())
            if propagate:
                ok &= _verdict((seen["g"], seen["var"], seen["header"]), request_id) == "right"
        leaked = body["g_note_leaked_into_request"]
        outcome = "LEAKED into the request's g" if leaked else "stayed in the worker"
        print(f"   {'':<37}the worker's g.note {outcome}")
        if propagate:
            ok &= not leaked
    print("   (Quart's run_sync copies the ContextVars, and with them the request's own g object.)\n")
    return ok


def show_fanout(urls: dict[bool, str]) -> bool:
    total = CLIENTS * REQUESTS_EACH * FANOUT
    print(f"2. GET /fanout?n={FANOUT}: {CLIENTS} clients x {REQUESTS_EACH} requests at once, each request runs "
          f"{FANOUT} workers at once")
    print("   Does every worker see its own request's id (in g, the ContextVar and the header)?\n")
    print(f"   {'':<17}{'own request':<14}{'missing':<10}another request")
    ok = True
    for label, propagate in MODES:
        counts = {"right": 0, "missing": 0, "wrong": 0}

        def one_client(number: int, url: str = urls[propagate]) -> list[str]:
            verdicts = []
            with _client(url) as client:
                for i in range(REQUESTS_EACH):
                    sent = f"c{number}-r{i}"
                    body = client.get(f"/fanout?n={FANOUT}", headers={"X-Request-Id": sent}).json()
                    verdicts += [_verdict((w["g"], w["var"], w["header"]), sent) for w in body["workers"]]
            return verdicts

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as clients:
            for verdicts in clients.map(one_client, range(CLIENTS), timeout=TIMEOUT):
                for verdict in verdicts:
                    counts[verdict] += 1
        print(f"   {label:<17}{counts['right']:>4} / {total:<7}{counts['missing']:<10}{counts['wrong']}")
        if propagate:
            ok &= counts["right"] == total
    print("   (Quart's run_sync does carry the request to its worker; what differs is whose g it writes, 1.)\n")
    return ok


def show_websocket(urls: dict[bool, str]) -> bool:
    total = SOCKETS * MESSAGES * 2
    print(f"3. websocket /ws: {SOCKETS} clients at once, {MESSAGES} messages each; the handler puts each "
          "message's id")
    print("   in g and the ContextVar, and two workers report what they see (a real wsproto client over TCP).\n")
    print(f"   {'':<17}{'own message':<14}{'missing':<10}another message")
    ok = True
    for label, propagate in MODES:
        counts = {"right": 0, "missing": 0, "wrong": 0}

        def one_socket(number: int, url: str = urls[propagate]) -> list[str]:
            verdicts = []
            with quart_app.WebSocketClient(url, "/ws", timeout=TIMEOUT) as ws:
                for i in range(MESSAGES):
                    sent = f"s{number}-m{i}"
                    ws.send(sent)
                    answer = json.loads(ws.receive())
                    verdicts += [_verdict((w["g"], w["var"]), sent) for w in answer["workers"]]
            return verdicts

        with concurrent.futures.ThreadPoolExecutor(SOCKETS) as sockets:
            for verdicts in sockets.map(one_socket, range(SOCKETS), timeout=TIMEOUT):
                for verdict in verdicts:
                    counts[verdict] += 1
        print(f"   {label:<17}{counts['right']:>4} / {total:<7}{counts['missing']:<10}{counts['wrong']}")
        if propagate:
            ok &= counts["right"] == total
    print()
    return ok


def demo() -> None:
    """Print the Quart section of the demo."""
    apps = {propagate: quart_app.create_app(propagate=propagate) for _, propagate in MODES}
    print(f"=== Quart {version('quart')}: Hypercorn {version('hypercorn')} on 127.0.0.1, real HTTP and websocket "
          "clients ===\n")
    with quart_app.serve(apps[True]) as with_url, quart_app.serve(apps[False]) as without_url:
        urls = {True: with_url, False: without_url}
        ok = show_index(urls)
        ok &= show_fanout(urls)
        ok &= show_websocket(urls)
    if ok:
        print("Quart: with ctxsnap every worker saw its own request and wrote only to its own g; without it, a")
        print("plain thread saw nothing and run_sync workers wrote into the request's g.\n")
    else:
        print("Quart: FAILED: some ctxsnap worker did not see its own request or leaked into g (see above).\n")


if __name__ == "__main__":
    demo()
