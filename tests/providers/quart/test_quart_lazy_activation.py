"""The Quart providers load themselves, also when Quart is imported after ctxsnap has already captured.

A user who forgets an import must not silently get different semantics (the design brief). Without the
providers, ``copy_context()`` hands the worker Quart's app context by reference, and with it the request's own
``g``. An app that imports ctxsnap first (a logging or tracing setup module, say) and captures before Quart is
even imported must still get the Quart providers once Quart is in use. Each case runs in a fresh interpreter, so
nothing imported by the test suite can make it pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import TIMEOUT

pytestmark = pytest.mark.quart

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
import asyncio, contextvars, json, sys
from concurrent.futures import ThreadPoolExecutor

import ctxsnap

VAR = contextvars.ContextVar("lazy")
VAR.set("before quart")
early = ctxsnap.capture()
report = {{
    "quart_imported_at_first_capture": "quart" in sys.modules,
    "early_providers": list(early.providers),
}}

import quart

app = quart.Quart("lazy")


def in_the_worker():
    quart.g.user = "worker"
    return [quart.g.user, quart.request.path, quart.current_app.name]


def in_the_app_worker():
    quart.g.job = "changed by the worker"
    return [quart.g.job, quart.current_app.name, quart.has_request_context()]


async def main():
    with ThreadPoolExecutor(max_workers=1) as pool:
        async with app.test_request_context("/lazy"):
            quart.g.user = "ann"
            snapshot = ctxsnap.capture()
            report["request_providers"] = list(snapshot.providers)
            report["request_seen"] = pool.submit(snapshot.wrap(in_the_worker)).result({timeout})
            report["request_parent_g"] = quart.g.user
        async with app.app_context():
            quart.g.job = "nightly"
            snapshot = ctxsnap.capture()
            report["app_providers"] = list(snapshot.providers)
            report["app_seen"] = pool.submit(snapshot.wrap(in_the_app_worker)).result({timeout})
            report["app_parent_g"] = quart.g.job
        # The snapshot taken before Quart was imported still runs, with what it carried.
        report["early_seen"] = pool.submit(early.wrap(VAR.get)).result({timeout})
    report["providers_loaded"] = "ctxsnap.providers.quart" in sys.modules


asyncio.run(main())
print(json.dumps(report))
"""


def test_quart_imported_after_a_capture_still_gets_the_quart_providers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM).format(timeout=TIMEOUT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr

    report = json.loads(result.stdout)
    assert report["quart_imported_at_first_capture"] is False, "the test is void: Quart was imported first"
    assert report["early_providers"] == ["contextvars"]
    assert report["providers_loaded"] is True
    assert report["request_providers"] == ["contextvars", "quart.app", "quart.request"]
    assert report["request_seen"] == ["worker", "/lazy", "lazy"]
    assert report["request_parent_g"] == "ann", "the worker wrote into the request's own g"
    assert report["app_providers"] == ["contextvars", "quart.app"]
    assert report["app_seen"] == ["changed by the worker", "lazy", False]
    assert report["app_parent_g"] == "nightly", "the worker wrote into the app context's own g"
    assert report["early_seen"] == "before quart"
