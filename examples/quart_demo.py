"""The Quart part of ``python dev.py demo``: what worker threads of an async app see, with and without ctxsnap.

It starts ``examples/quart_app.py`` twice on Hypercorn on loopback (ephemeral ports), once with ctxsnap and once
with Quart's own ``run_sync`` and a plain ``threading.Thread``, sends real HTTP requests and websocket messages,
and prints one small table per question. ``examples/demo.py`` calls :func:`demo` after the Flask part; run alone
with ``python examples/quart_demo.py``.
"""

from __future__ import annotations

import json
import sys
import uuid
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Running as "python examples/quart_demo.py" puts examples/ on the path, not the repository root.
    sys.path.insert(0, str(ROOT))

from examples import quart_app  # noqa: E402
from examples._report import MODES, TIMEOUT, client, print_counts, print_counts_header, show, tally, verdict  # noqa: E402

__all__ = ["demo"]

CLIENTS, REQUESTS_EACH, FANOUT = 8, 5, 4
SOCKETS, MESSAGES = 4, 5
SEEN = ("g", "var", "header")


def show_index(urls: dict[bool, str]) -> bool:
    request_id = f"demo-{uuid.uuid4().hex[:6]}"
    print(f"1. GET /  with header X-Request-Id: {request_id}")
    print("   before_request stores it in g and in a ContextVar; a to_thread worker and a thread report what they")
    print("   see, then the to_thread worker writes g.note.\n")
    print(f"   {'':<17}{'worker':<20}{'g.request_id':<18}{'ContextVar':<18}request header")
    ok = True
    for label, propagate in MODES:
        with client(urls[propagate]) as http:
            body = http.get("/", headers={"X-Request-Id": request_id}).json()
        helper = "to_thread" if propagate else "quart run_sync"
        for i, (kind, name) in enumerate((("to_thread", helper), ("thread", "threading.Thread"))):
            seen = body["workers"][kind]
            cells = "".join(f"{show(seen[key], request_id):<18}" for key in SEEN)
            print(f"   {label if i == 0 else '':<17}{name:<20}{cells}".rstrip())
            if propagate:
                ok &= verdict((seen[key] for key in SEEN), request_id) == "right"
        leaked = body["g_note_leaked_into_request"]
        outcome = "LEAKED into the request's g" if leaked else "stayed in the worker"
        print(f"   {'':<37}the worker's g.note {outcome}")
        if propagate:
            ok &= not leaked
    print("   (Quart's run_sync copies the ContextVars, and with them the request's own g object.)\n")
    return ok


def show_fanout(urls: dict[bool, str]) -> bool:
    total = CLIENTS * REQUESTS_EACH * FANOUT
    print(
        f"2. GET /fanout?n={FANOUT}: {CLIENTS} clients x {REQUESTS_EACH} requests at once, each request runs "
        f"{FANOUT} workers at once"
    )
    print("   Does every worker see its own request's id (in g, the ContextVar and the header)?\n")
    print_counts_header("own request", "another request")
    ok = True
    for label, propagate in MODES:

        def one_client(number: int, url: str = urls[propagate]) -> list[str]:
            verdicts = []
            with client(url) as http:
                for i in range(REQUESTS_EACH):
                    sent = f"c{number}-r{i}"
                    body = http.get(f"/fanout?n={FANOUT}", headers={"X-Request-Id": sent}).json()
                    verdicts += [verdict((w[key] for key in SEEN), sent) for w in body["workers"]]
            return verdicts

        counts = tally(one_client, CLIENTS)
        print_counts(label, counts, total)
        if propagate:
            ok &= counts["right"] == total
    print("   (Quart's run_sync does carry the request to its worker; what differs is whose g it writes, 1.)\n")
    return ok


def show_websocket(urls: dict[bool, str]) -> bool:
    total = SOCKETS * MESSAGES * 2
    print(
        f"3. websocket /ws: {SOCKETS} clients at once, {MESSAGES} messages each; the handler puts each "
        "message's id"
    )
    print("   in g and the ContextVar, and two workers report what they see (a real wsproto client over TCP).\n")
    print_counts_header("own message", "another message")
    ok = True
    for label, propagate in MODES:

        def one_socket(number: int, url: str = urls[propagate]) -> list[str]:
            verdicts = []
            with quart_app.WebSocketClient(url, "/ws", timeout=TIMEOUT) as ws:
                for i in range(MESSAGES):
                    sent = f"s{number}-m{i}"
                    ws.send(sent)
                    answer = json.loads(ws.receive())
                    verdicts += [verdict((w["g"], w["var"]), sent) for w in answer["workers"]]
            return verdicts

        counts = tally(one_socket, SOCKETS)
        print_counts(label, counts, total)
        if propagate:
            ok &= counts["right"] == total
    print()
    return ok


def demo() -> bool:
    """Print the Quart section of the demo; True when every ctxsnap worker saw its own request."""
    apps = {propagate: quart_app.create_app(propagate=propagate) for _, propagate in MODES}
    print(
        f"=== Quart {version('quart')}: Hypercorn {version('hypercorn')} on 127.0.0.1, real HTTP and websocket "
        "clients ===\n"
    )
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
    return ok


if __name__ == "__main__":
    sys.exit(0 if demo() else 1)
