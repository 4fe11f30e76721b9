"""Isolation under load: the example apps on real servers, many concurrent clients, zero mismatches.

Every request carries its own id in ``g``, a ContextVar and a header, and fans out to one pool shared by all
requests; every worker reports what it saw (see ``_load``). The default run sends a few thousand requests; the
``stress`` run (``python dev.py stress``) sends 50,000 per server and prints the figures that
``docs/reliability.md`` quotes.

The control test runs the same load against the app built without ctxsnap: the checker must see mismatches
there, or a zero from the real run would prove nothing.
"""

from __future__ import annotations

import pytest

from examples import flask_app

from ._load import LoadResult, assert_isolated, run_load, run_websocket_load

DEFAULT_REQUESTS = 2_000
STRESS_REQUESTS = 50_000
CLIENTS = 16
#: Guards against a hang, far above what the counts need on a loaded two-core machine.
DEFAULT_DEADLINE = 300.0
STRESS_DEADLINE = 3_600.0


def _flask_run(total: int, deadline: float, *, propagate: bool = True) -> LoadResult:
    with flask_app.serve(flask_app.create_app(propagate=propagate)) as base_url:
        return run_load(base_url, total=total, clients=CLIENTS, deadline=deadline)


def test_flask_example_under_a_threaded_wsgi_server_keeps_every_request_to_itself() -> None:
    result = _flask_run(DEFAULT_REQUESTS, DEFAULT_DEADLINE)
    print(result.summary("flask"))
    assert_isolated(result, DEFAULT_REQUESTS)
    # The shared pool's threads served many requests each: isolation held on reused workers, not fresh ones.
    assert len(result.worker_threads) < result.requests


def test_flask_control_without_ctxsnap_the_checker_sees_mismatches() -> None:
    result = _flask_run(100, DEFAULT_DEADLINE, propagate=False)
    assert result.errors == 0, result.examples
    assert result.mismatches == result.reports > 0


@pytest.mark.stress
def test_flask_stress() -> None:
    result = _flask_run(STRESS_REQUESTS, STRESS_DEADLINE)
    print("\n" + result.summary("flask (stress)"))
    assert_isolated(result, STRESS_REQUESTS)


# -- Quart under Hypercorn -------------------------------------------------------------------------------------


def _quart_run(total: int, deadline: float, *, propagate: bool = True) -> LoadResult:
    from examples import quart_app

    with quart_app.serve(quart_app.create_app(propagate=propagate)) as base_url:
        return run_load(base_url, total=total, clients=CLIENTS, deadline=deadline)


def _quart_websocket_run(connections: int, messages: int, deadline: float) -> LoadResult:
    from examples import quart_app

    with quart_app.serve(quart_app.create_app()) as base_url:
        return run_websocket_load(
            base_url, quart_app.WebSocketClient, connections=connections, messages=messages, deadline=deadline
        )


@pytest.mark.quart
def test_quart_example_under_hypercorn_keeps_every_request_to_itself() -> None:
    result = _quart_run(DEFAULT_REQUESTS, DEFAULT_DEADLINE)
    print(result.summary("quart"))
    assert_isolated(result, DEFAULT_REQUESTS)


@pytest.mark.quart
def test_quart_websockets_keep_every_message_to_itself() -> None:
    connections, messages = 8, 50
    result = _quart_websocket_run(connections, messages, DEFAULT_DEADLINE)
    print(result.summary("quart websocket", "messages"))
    assert_isolated(result, connections * messages)


@pytest.mark.quart
def test_quart_control_without_ctxsnap_the_checker_sees_mismatches() -> None:
    result = _quart_run(100, DEFAULT_DEADLINE, propagate=False)
    assert result.errors == 0, result.examples
    # Quart's own run_sync carries ContextVars, so only the plain thread's reports and the g write that lands
    # in the request give it away: some, not all, reports mismatch.
    assert result.mismatches > 0


@pytest.mark.quart
@pytest.mark.stress
def test_quart_stress() -> None:
    result = _quart_run(STRESS_REQUESTS, STRESS_DEADLINE)
    print("\n" + result.summary("quart (stress)"))
    assert_isolated(result, STRESS_REQUESTS)


@pytest.mark.quart
@pytest.mark.stress
def test_quart_websocket_stress() -> None:
    connections, messages = 16, 1_000
    result = _quart_websocket_run(connections, messages, STRESS_DEADLINE)
    print("\n" + result.summary("quart websocket (stress)", "messages"))
    assert_isolated(result, connections * messages)
