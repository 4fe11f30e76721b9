"""The README's demo tells the truth on every Flask in the matrix (and Quart where installed), and cleans up.

``main()`` as a whole runs in ``python dev.py demo``; its exit status is 1 when either part fails.
"""

from __future__ import annotations

import threading

import pytest

from examples import demo
from examples._report import verdict


def test_flask_demo_reports_success_and_leaves_no_server_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.flask_demo() is True

    output = capsys.readouterr().out
    total = demo.CLIENTS * demo.REQUESTS_EACH * demo.FANOUT
    assert f"with ctxsnap      {total} / {total}" in output
    assert f"without ctxsnap     0 / {total}" in output
    assert "FAILED" not in output
    assert not [t for t in threading.enumerate() if t.name == "example-wsgi-server"]


def test_worker_verdicts_tell_missing_from_wrong() -> None:
    assert verdict(("a", "a", "a"), "a") == "right"
    assert verdict((None, "a", None), "a") == "missing"
    assert verdict(("b", None, "a"), "a") == "wrong"


@pytest.mark.quart
def test_quart_demo_reports_success_so_the_demo_exit_status_covers_it(capsys: pytest.CaptureFixture[str]) -> None:
    from examples import quart_demo

    assert quart_demo.demo() is True
    output = capsys.readouterr().out
    assert "FAILED" not in output and "LEAKED into the request's g" in output


@pytest.mark.celery
def test_celery_demo_carries_the_declared_values_and_says_which_broker(capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from examples import celery_demo

    assert celery_demo.demo() is True
    output = capsys.readouterr().out
    if shutil.which("redis-server"):
        assert "broker: redis-server started on redis://127.0.0.1:" in output
        assert "worker log:" in output and "user_id=user-42" in output
    else:
        assert "broker: Celery's in-process memory broker (redis-server is not installed" in output
    assert "Authorization=None (not declared)" in output
    assert "FAILED" not in output
