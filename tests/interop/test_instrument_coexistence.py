"""``ctxsnap.instrument()`` beside OpenTelemetry's ThreadingInstrumentor and Sentry's ThreadingIntegration.

The real packages, installed in either order, each scenario in a fresh interpreter (``coexistence.py``: both
tools patch process-wide state, and Sentry cannot be uninstalled). In every order: the tool's value and the
request (with a private ``g``) arrive in a plain Thread, a Timer, a pool task and a ``ctxsnap.Thread``; no
wrapper is stacked twice; removing one leaves the other working; and once ctxsnap is uninstrumented its
wrappers, wherever they were left, carry nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import PROCESS_TIMEOUT

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).with_name("coexistence.py")
ROOT = SCRIPT.parent.parent.parent
HAND_OFFS = ("thread", "timer", "ctxsnap.Thread", "submit")
CARRIED = {"tool": True, "path": "/items/7", "user": "alice", "private_g": True}


def scenario(tool: str, order: str, removed: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), tool, order, removed],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr  # a failure inside a worker thread is only printed
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("order", ["tool-first", "ctxsnap-first"])
@pytest.mark.parametrize("tool", ["otel", "sentry"])
def test_both_carry_their_values_and_neither_is_wrapped_twice(tool: str, order: str) -> None:
    report = scenario(tool, order, removed="tool")
    for attribute, chain in report["chains"].items():
        assert chain.count("ctxsnap") == 1, (attribute, chain)
        assert tool in chain, (attribute, chain)
        if attribute != "Timer.start":  # OpenTelemetry itself wraps Timer.start twice (its copy of a wrapped one)
            assert chain.count(tool) == 1, (attribute, chain)
    assert report["both"] == {hand_off: CARRIED for hand_off in HAND_OFFS}


@pytest.mark.parametrize("order", ["tool-first", "ctxsnap-first"])
@pytest.mark.parametrize("tool", ["otel", "sentry"])
def test_removing_the_tool_leaves_ctxsnap_working(tool: str, order: str) -> None:
    report = scenario(tool, order, removed="tool")
    for hand_off in HAND_OFFS:
        seen = report["after"][hand_off]
        assert (seen["path"], seen["user"], seen["private_g"]) == ("/items/7", "alice", True), hand_off


@pytest.mark.parametrize("order", ["tool-first", "ctxsnap-first"])
@pytest.mark.parametrize("tool", ["otel", "sentry"])
def test_uninstrumenting_ctxsnap_leaves_the_tool_working_and_ctxsnaps_wrappers_inert(
    tool: str, order: str
) -> None:
    report = scenario(tool, order, removed="ctxsnap")
    assert report["instrumentation"] == []
    nothing = {"tool": True, "path": None, "user": None, "private_g": False}
    # Only the tool carries its value now; the request does not travel: ctxsnap's wrappers, also one left under
    # the tool's or in Timer's class, do nothing.
    assert {hand_off: report["after"][hand_off] for hand_off in ("thread", "timer", "submit")} == {
        hand_off: nothing for hand_off in ("thread", "timer", "submit")
    }
    assert report["after"]["ctxsnap.Thread"] == CARRIED  # explicit ctxsnap keeps working, under the tool too
    for attribute, chain in report["chains_after"].items():
        if order == "tool-first":
            # ctxsnap was on top: the attribute is exactly what it was before instrument().
            assert chain == [tool, "original"], (attribute, chain)
        else:
            assert chain == [tool, "ctxsnap", "original"], (attribute, chain)
