"""The Flask part of the README's demo tells the truth on every Flask in the matrix, and cleans up after itself.

The Quart part is the async engineer's and needs Quart; ``main()`` as a whole runs in ``python dev.py demo``.
"""

from __future__ import annotations

import threading

import pytest

from examples import demo


def test_flask_demo_reports_success_and_leaves_no_server_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.flask_demo() is True

    output = capsys.readouterr().out
    total = demo.CLIENTS * demo.REQUESTS_EACH * demo.FANOUT
    assert f"with ctxsnap      {total} / {total}" in output
    assert f"without ctxsnap     0 / {total}" in output
    assert "FAILED" not in output
    assert not [t for t in threading.enumerate() if t.name == "example-wsgi-server"]


def test_worker_verdicts_tell_missing_from_wrong() -> None:
    assert demo._verdict({"g": "a", "var": "a", "header": "a"}, "a") == "right"
    assert demo._verdict({"g": None, "var": "a", "header": None}, "a") == "missing"
    assert demo._verdict({"g": "b", "var": None, "header": "a"}, "a") == "wrong"
