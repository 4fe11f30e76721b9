"""The README's demo tells the truth on every Flask in the matrix (and Quart where installed), and cleans up.

``main()`` as a whole runs in ``python dev.py demo``; its exit status is 1 when either part fails.
"""

from __future__ import annotations

import threading

import flask
import pytest

from ctxsnap.adapters import flask as ctxsnap_flask
from examples import demo, flask_app, flask_handoffs
from examples._report import verdict


def test_flask_demo_reports_success_and_leaves_no_server_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.flask_demo() is True

    output = capsys.readouterr().out
    total = demo.CLIENTS * demo.REQUESTS_EACH * demo.FANOUT
    assert f"with ctxsnap      {total} / {total}" in output
    assert f"without ctxsnap     0 / {total}" in output
    assert "FAILED" not in output
    assert "4. What apps run today" in output
    assert not [t for t in threading.enumerate() if t.name == "example-wsgi-server"]
    assert not [t for t in threading.enumerate() if t.name.startswith("handoff-")]


def _handoff_table(output: str) -> dict[str, dict[str, str]]:
    """Section 4 of the demo as ``{scenario: {hand-off: cell}}``, read back from the printed fixed-width rows."""
    lines = output.splitlines()
    table = {}
    for scenario, question in flask_handoffs.SCENARIOS:
        (row,) = [line for line in lines if line.startswith(f"   {question}")]
        cells = row[3 + demo.QUESTION :]
        table[scenario] = {
            via: cells[i * demo.CELL : (i + 1) * demo.CELL].strip()
            for i, (via, _, _) in enumerate(flask_handoffs.HANDOFFS)
        }
    return table


def test_handoff_section_shows_each_failure_of_todays_handoffs_and_ctxsnap_doing_it_right(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with flask_app.serve(flask_handoffs.create_app()) as url:
        assert demo.show_handoffs(url) is True
    output = capsys.readouterr().out
    table = _handoff_table(output)

    assert all(table[scenario]["ctxsnap"] == "yes" for scenario in table), table
    # Flask's own decorator: empty g (pallets/flask#3306), teardown again in the worker, the view's upload
    # closed (#5399), one wrapper in two workers crashes (#5252, #5396).
    assert table["g-read"]["flask"] == "!! g empty"
    assert table["teardown"]["flask"] == table["teardown"]["closure"] == "!! ran twice"
    assert table["upload"]["flask"] == table["upload"]["closure"] == "!! closed"
    assert "ValueError: I/O operation on closed file" in output
    assert table["two-workers"]["flask"] == "!! crashed"
    assert "was created in a different Context" in output or "Popped wrong app context" in output
    # The hand-written closure and copy_context().run: worker writes land in the request's g, and one
    # Context entered by two threads at once.
    assert table["g-write"]["closure"] == table["g-write"]["copy_context"] == "!! leaked"
    assert table["two-workers"]["closure"] == table["two-workers"]["copy_context"] == "!! crashed"
    assert "cannot enter context" in output and "is already entered" in output
    # No propagation: the worker sees nothing of the request.
    assert table["g-read"]["none"] == table["upload"]["none"] == "!! no context"
    assert "FAILED" not in output
    assert not flask_handoffs._teardowns  # every worker's teardown record was read back, none piles up


def test_handoff_section_fails_when_ctxsnap_shows_a_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flask's decorator in ctxsnap's place: the demo (and its exit status) must say so.
    monkeypatch.setitem(flask_handoffs._WRAP, "ctxsnap", flask.copy_current_request_context)
    with flask_app.serve(flask_handoffs.create_app()) as url:
        assert demo.show_handoffs(url) is False
    output = capsys.readouterr().out
    assert "FAILED: ctxsnap, view can read upload after: the view's upload.read() raised ValueError" in output


def test_handoff_section_fails_when_a_documented_failure_does_not_show(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A claim the demo cannot show is a claim it must not make: ctxsnap in the Flask decorator's column.
    monkeypatch.setitem(flask_handoffs._WRAP, "flask", ctxsnap_flask.copy_current_request_context)
    with flask_app.serve(flask_handoffs.create_app()) as url:
        assert demo.show_handoffs(url) is False
    output = capsys.readouterr().out
    expected = "FAILED: Flask decorator, view can read upload after: did not fail as docs/flask.md says it does"
    assert expected in output


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
