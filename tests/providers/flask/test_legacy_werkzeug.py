"""Werkzeug below 2.0 keeps Flask's contexts per thread id: ctxsnap refuses them clearly, never carries nothing.

This is the only file the ``flask-1.1-werkzeug-1.0`` cell runs. Every other cell runs it too, where the same
user actions must carry the Flask context instead. Which of the two applies is decided from Werkzeug's
installed version, independently of the adapter's own feature detection, which the first test checks.
"""

from __future__ import annotations

import importlib.metadata
import os
from concurrent.futures import ThreadPoolExecutor

import flask
import pytest

import ctxsnap
from ctxsnap.adapters import flask as ctxsnap_flask
from ctxsnap.providers import flask as flask_providers
from tests.flask_support import FLASK_VERSION, flask_context_seen, request_id
from tests.support import TIMEOUT

PER_THREAD = int(importlib.metadata.version("werkzeug").split(".")[0]) < 2
UPGRADE = r"Upgrade Werkzeug to >= 2\.0"


def test_the_adapter_detects_how_this_werkzeug_keeps_contexts() -> None:
    # The oracle is the installed versions, which the adapter itself never reads.
    if PER_THREAD:
        expected = "per-thread"
    elif FLASK_VERSION < (2, 2):
        expected = "localstack"
    elif FLASK_VERSION < (3, 2):
        expected = "contextvars"
    else:  # Flask main (3.2.0.dev): the request context merged into the app context, pallets/flask#5812
        expected = "contextvars-merged"
    assert expected == flask_providers.LAYOUT
    cell = os.environ.get("CTXSNAP_CELL")
    if cell is not None:  # under dev.py: the legacy cell really runs the legacy Werkzeug
        assert PER_THREAD is cell.endswith("werkzeug-1.0")


def _carried() -> dict[str, object]:
    return {**flask_context_seen(), "g": flask.g.get("user"), "var": request_id.get()}


def test_capture_inside_a_request_context(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    with app.test_request_context("/"):
        flask.g.user = "ann"
        request_id.set("req-1")
        if PER_THREAD:
            with pytest.raises(ctxsnap.ProviderError, match=UPGRADE) as caught:
                ctxsnap.capture()
            assert caught.value.provider == "flask.app"
            assert isinstance(caught.value.__cause__, RuntimeError)
            assert "exclude=['flask']" in str(caught.value)
        else:
            seen = pool.submit(ctxsnap.wrap(_carried)).result(TIMEOUT)
            assert seen == {"app": True, "request": True, "g": "ann", "var": "req-1"}


def test_capture_inside_an_app_context_only(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    with app.app_context():
        flask.g.user = "cli"
        request_id.set("job-1")
        if PER_THREAD:
            with pytest.raises(ctxsnap.ProviderError, match=UPGRADE):
                ctxsnap.capture()
        else:
            seen = pool.submit(ctxsnap.wrap(_carried)).result(TIMEOUT)
            assert seen == {"app": True, "request": False, "g": "cli", "var": "job-1"}


def test_submitting_to_a_ctxsnap_pool_inside_a_request(app: flask.Flask) -> None:
    with app.test_request_context("/"), ctxsnap.ThreadPoolExecutor(max_workers=1) as executor:
        flask.g.user = "ann"
        request_id.set("req-2")
        if PER_THREAD:
            # Refused in the request thread, at submit, where the user can see it.
            with pytest.raises(ctxsnap.ProviderError, match=UPGRADE):
                executor.submit(_carried)
        else:
            assert executor.submit(_carried).result(TIMEOUT)["g"] == "ann"


def test_the_drop_in_and_the_extension(app: flask.Flask, pool: ThreadPoolExecutor) -> None:
    if PER_THREAD:
        with pytest.raises(RuntimeError, match=UPGRADE):
            ctxsnap_flask.CtxSnap(app)
        assert "ctxsnap" not in app.extensions
        with app.test_request_context("/"), pytest.raises(RuntimeError, match=UPGRADE):
            ctxsnap_flask.copy_current_request_context(_carried)
    else:
        ctxsnap_flask.CtxSnap(app)
        with app.test_request_context("/"):
            flask.g.user = "ann"
            request_id.set("req-3")
            task = ctxsnap_flask.copy_current_request_context(_carried)
            assert pool.submit(task).result(TIMEOUT) == {"app": True, "request": True, "g": "ann", "var": "req-3"}


def test_without_a_flask_context_capture_carries_contextvars(pool: ThreadPoolExecutor) -> None:
    # Refusal is only for a context ctxsnap would otherwise drop: a capture outside Flask works everywhere.
    request_id.set("outside")
    snapshot = ctxsnap.capture()

    assert pool.submit(snapshot.wrap(lambda: (flask_context_seen(), request_id.get()))).result(TIMEOUT) == (
        {"app": False, "request": False},
        "outside",
    )


def test_excluding_flask_carries_contextvars_from_inside_a_request(
    app: flask.Flask, pool: ThreadPoolExecutor
) -> None:
    with app.test_request_context("/"):
        request_id.set("req-4")
        snapshot = ctxsnap.capture(exclude=["flask"])

    assert pool.submit(snapshot.wrap(lambda: (flask_context_seen(), request_id.get()))).result(TIMEOUT) == (
        {"app": False, "request": False},
        "req-4",
    )
