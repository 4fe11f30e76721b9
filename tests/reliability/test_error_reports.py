"""What a failed task's error hands on: no captured value in frame locals, nothing pinned by a kept Future.

Error reporters such as Sentry record the locals of every frame of a traceback by default, and a failed task's
Future keeps its exception, hence those frames, for as long as the Future lives. ctxsnap's own frames on the run
path held the snapshot, the run's context and the providers' states: a secret in ``g`` or in a ContextVar ended
up in error reports, and a kept Future kept the request's ``g`` alive (issue 11, defects 10 and 11).
"""

from __future__ import annotations

import contextvars
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import flask
import pytest

import ctxsnap
from ctxsnap._compiled import IMPLEMENTATION
from tests.support import TIMEOUT

from ._flask_support import make_app
from ._support import registered

SECRET = "sk_live_do_not_leak"
api_key: contextvars.ContextVar[object] = contextvars.ContextVar("reliability_error_reports_api_key")


class Secret:
    """A captured value: weak-referenceable, and its repr would give it away."""

    def __repr__(self) -> str:
        return f"Secret({SECRET!r})"


def render(value: Any, depth: int = 0) -> str:
    """Roughly what Sentry does with a frame local: containers recursively, anything else through repr."""
    if depth > 8:
        return "..."
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k, depth + 1)}: {render(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(render(item, depth + 1) for item in value) + "]"
    return repr(value)


def reported_locals(error: BaseException) -> str:
    """Every local of every frame in ``error``'s traceback and in those of the exceptions it chains."""
    lines: list[str] = []
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        pending += [current.__cause__, current.__context__]
        tb = current.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_name
            lines += [f"{name}: {key} = {render(value)}" for key, value in tb.tb_frame.f_locals.items()]
            tb = tb.tb_next
    return "\n".join(lines)


class FailingUndo(ctxsnap.Provider):
    """Captures something harmless; its undo fails, so the run raises ProviderError."""

    name = "test.reports.failing-undo"

    def capture(self) -> str:
        return "harmless"

    def apply(self, state: str) -> None:
        return None

    def undo(self, state: str, token: Any, exc: BaseException | None) -> None:
        raise ValueError("could not clean up")


class FailingApply(FailingUndo):
    name = "test.reports.failing-apply"

    def apply(self, state: str) -> None:
        raise RuntimeError("apply failed")


class FailingCapture(FailingUndo):
    name = "test.reports.failing-capture"

    def capture(self) -> str:
        raise RuntimeError("capture failed")


def failing_task() -> None:
    # Reads what the worker carries, as a real task would, without keeping any of it in a local.
    assert flask.g.secret is not None and api_key.get() is not None
    raise KeyError("task failed")


@pytest.fixture(params=[False, True], ids=["default", "teardown-mode"])
def request_with_secrets(request: pytest.FixtureRequest) -> Iterator[flask.Flask]:
    """A Flask request whose ``g`` and a ContextVar hold :class:`Secret` objects; yields inside it."""
    app, _ = make_app(teardown=request.param)
    with app.test_request_context("/items/1"):
        flask.g.secret = Secret()
        token = api_key.set(Secret())
        try:
            yield app
        finally:
            api_key.reset(token)


def test_a_failed_pool_task_shows_no_captured_value_in_its_frame_locals(request_with_secrets: flask.Flask) -> None:
    with ctxsnap.ThreadPoolExecutor(max_workers=1) as pool:
        error = pool.submit(failing_task).exception(timeout=TIMEOUT)
    assert isinstance(error, KeyError)
    report = reported_locals(error)
    if IMPLEMENTATION == "python":
        # The pure-Python run path is in the traceback, with its frame: only the values are kept out of it.
        assert "_run: fn = " in report
    else:
        # The compiled run path has no Python frame at all: the worker's next frame is the task's.
        assert "_run: " not in report and "failing_task: " in report
    assert SECRET not in report


def test_a_failed_run_shows_no_captured_value_in_its_frame_locals(request_with_secrets: flask.Flask) -> None:
    snapshot = ctxsnap.capture()
    with pytest.raises(KeyError) as raised:
        snapshot.run(failing_task)
    assert SECRET not in reported_locals(raised.value)


@pytest.mark.parametrize("provider", [FailingUndo, FailingApply, FailingCapture], ids=["undo", "apply", "capture"])
def test_a_provider_error_shows_no_captured_value_in_its_frame_locals(
    request_with_secrets: flask.Flask, provider: type[ctxsnap.Provider]
) -> None:
    with registered(provider()), pytest.raises(ctxsnap.ProviderError) as raised:
        ctxsnap.capture().run(len, "abc")  # the Flask providers captured g before the failing one ran
    assert raised.value.phase == provider.name.rpartition("-")[2]
    assert SECRET not in reported_locals(raised.value)


@pytest.mark.parametrize("teardown", [False, True], ids=["default", "teardown-mode"])
def test_a_kept_future_of_a_failed_task_does_not_keep_g_alive(teardown: bool) -> None:
    app, _ = make_app(teardown=teardown)
    gc.collect()
    gc.disable()  # only reference counting frees anything: a cycle shows up as an object kept alive
    try:
        pool = ctxsnap.ThreadPoolExecutor(max_workers=1)
        with app.test_request_context("/items/1"):
            flask.g.secret = Secret()
            token = api_key.set(Secret())
            in_g, in_var = weakref.ref(flask.g.secret), weakref.ref(api_key.get())
            future = pool.submit(failing_task)
            assert isinstance(future.exception(timeout=TIMEOUT), KeyError)
            api_key.reset(token)
        pool.shutdown(wait=True)  # the worker has dropped its work item too
        assert future.done()  # kept, as an application keeps a Future to report on later
        assert in_g() is None, [type(r) for r in gc.get_referrers(in_g())]
        assert in_var() is None, [type(r) for r in gc.get_referrers(in_var())]
    finally:
        gc.enable()
