"""The semantics table of DESIGN.md, row by row, for every adapter.

Each test is one scenario played by the parent (see ``runners.py``) and is parametrized over every entry of
``catalog.ENTRIES`` it applies to: sync adapters from inside a Flask request, async ones from a coroutine inside
a Flask or a Quart request. A test's name starts with the row it checks (``test_g__...``); the README's matrix
is rendered from these names and their outcomes by ``render.py``. Quart entries carry the ``quart`` marker, so
the Flask-only cells of the version matrix deselect them instead of skipping.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Generator
from contextvars import ContextVar
from typing import Any

import pytest

import ctxsnap
from tests.support import TIMEOUT

from .catalog import ENTRIES, property_of
from .runners import RUNNERS, UPLOAD, Parent, Runner, play, registered

REQUEST_ID: ContextVar[str] = ContextVar("conformance_request_id")

Play = Generator[Any, Any, None]


def conformance(applies: Callable[[Runner], bool] = lambda runner: True) -> Callable[[Any], Any]:
    """Parametrize a test over every adapter entry it applies to; its name says which row it checks."""

    def decorate(test: Any) -> Any:
        property_of(test.__name__)  # fails at import if the name does not start with a known row
        params = [
            pytest.param(entry.id, id=entry.id, marks=[pytest.mark.quart] if entry.host == "quart" else [])
            for entry in ENTRIES
            if applies(RUNNERS[entry.id])
        ]
        test.conformance_entries = tuple(p.values[0] for p in params)
        return pytest.mark.parametrize("entry", params)(test)

    return decorate


def in_a_pool(runner: Runner) -> bool:
    return runner.has_worker


def works_without_request(runner: Runner) -> bool:
    return not runner.needs_request


def follows_policy(runner: Runner) -> bool:
    return runner.follows_policy


def quart_host(runner: Runner) -> bool:
    return runner.entry.host == "quart"


def wait(event: threading.Event) -> None:
    """A child's wait for the parent; a bounded one, so that a broken adapter fails instead of hanging."""
    if not event.wait(TIMEOUT):
        raise AssertionError("the parent never released this child")


# -- contextvars ------------------------------------------------------------------------------------------------


@conformance()
def test_contextvars__child_sees_every_variable_as_it_was_at_capture(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        REQUEST_ID.set("at-capture")
        release = threading.Event()

        def child() -> str:
            wait(release)
            return REQUEST_ID.get()

        handle = yield p.start(child)
        REQUEST_ID.set("set-by-the-parent-after-capture")
        release.set()
        assert (yield p.result(handle)) == "at-capture"

    play(entry, scenario)


@conformance()
def test_contextvars__a_child_set_reaches_neither_the_parent_nor_a_sibling(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        REQUEST_ID.set("parent")
        first_has_set = threading.Event()

        def first() -> str:
            REQUEST_ID.set("first child")
            first_has_set.set()
            return REQUEST_ID.get()

        def sibling() -> str:
            wait(first_has_set)
            return REQUEST_ID.get()

        sibling_handle = yield p.start(sibling)
        first_handle = yield p.start(first)
        assert (yield p.result(first_handle)) == "first child"
        assert (yield p.result(sibling_handle)) == "parent"
        assert REQUEST_ID.get() == "parent"

    play(entry, scenario)


# -- g --------------------------------------------------------------------------------------------------------


@conformance()
def test_g__child_gets_its_own_g_holding_a_shallow_copy(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        g = p.fw.g
        g.user = "alice"
        g.roles = ["admin"]

        def child() -> tuple[Any, str, list[str]]:
            return g._get_current_object(), g.user, g.roles

        child_g, user, roles = yield p.result((yield p.start(child)))
        assert child_g is not g._get_current_object()
        assert user == "alice"
        assert roles is g.roles  # shallow: the same list object, not a deep copy

    play(entry, scenario)


@conformance()
def test_g__child_writes_stay_in_the_child(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        g = p.fw.g
        g.user = "alice"

        def writer() -> None:
            g.user = "mallory"
            g.written_by_child = True
            del g.user

        def later_sibling() -> tuple[Any, Any]:
            return g.get("user"), g.get("written_by_child")

        yield p.result((yield p.start(writer)))
        assert g.user == "alice"
        assert "written_by_child" not in g
        assert (yield p.result((yield p.start(later_sibling)))) == ("alice", None)

    play(entry, scenario)


@conformance()
def test_g__a_parent_write_after_capture_is_not_seen(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        g = p.fw.g
        g.user = "alice"
        release = threading.Event()

        def child() -> tuple[Any, Any]:
            wait(release)
            return g.get("user"), g.get("late")

        handle = yield p.start(child)
        g.user = "bob"
        g.late = "written after capture"
        release.set()
        assert (yield p.result(handle)) == ("alice", None)

    play(entry, scenario)


@conformance(follows_policy)
def test_g__the_share_policy_lets_the_child_write_the_parents_g(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        g = p.fw.g
        g.user = "alice"

        def child() -> Any:
            g.written_by_child = "shared"
            return g.user

        assert (yield p.result((yield p.start(child)))) == "alice"
        assert g.written_by_child == "shared"

    play(entry, scenario, policy={"CTXSNAP_G": "share"})


# -- request, session, websocket ----------------------------------------------------------------------------------


@conformance()
def test_request__request_and_session_are_the_parents_objects(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        request, session = p.fw.request, p.fw.session
        session["user"] = "alice"

        def child() -> tuple[Any, ...]:
            return (
                request._get_current_object(),
                session._get_current_object(),
                request.path,
                request.headers["X-Request-Id"],
                request.args["q"],
                session["user"],
            )

        seen = yield p.result((yield p.start(child)))
        assert seen[0] is request._get_current_object()
        assert seen[1] is session._get_current_object()
        assert seen[2:] == ("/items/7", "parent-request", "conformance", "alice")

    play(entry, scenario)


@conformance()
def test_request__url_for_works_in_the_child(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        def child() -> tuple[str, str]:
            return p.fw.url_for("item", item_id=3), p.fw.url_for("item", item_id=4, _external=True)

        relative, external = yield p.result((yield p.start(child)))
        assert relative == "/items/3"
        assert external.startswith("http://") and external.endswith("/items/4")

    play(entry, scenario)


@conformance(quart_host)
def test_request__the_websocket_is_the_parents_object(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        websocket = p.fw.websocket
        p.fw.g.user = "alice"

        def child() -> tuple[Any, ...]:
            return (
                websocket._get_current_object(),
                websocket.path,
                websocket.headers["X-Request-Id"],
                p.fw.has_websocket_context(),
                p.fw.has_request_context(),
                p.fw.g.user,
            )

        seen = yield p.result((yield p.start(child)))
        assert seen[0] is websocket._get_current_object()
        assert seen[1:] == ("/scenario", "parent-socket", True, False, "alice")

    play(entry, scenario, where="websocket")


# -- current_app ----------------------------------------------------------------------------------------------


@conformance()
def test_current_app__is_available_in_a_request_snapshot(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        def child() -> Any:
            return p.fw.current_app._get_current_object()

        assert (yield p.result((yield p.start(child)))) is p.app

    play(entry, scenario)


@conformance(works_without_request)
def test_current_app__is_available_with_an_app_context_and_no_request(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        p.fw.g.job = "nightly"

        def child() -> tuple[Any, ...]:
            return p.fw.current_app._get_current_object(), p.fw.has_request_context(), p.fw.g.job

        assert (yield p.result((yield p.start(child)))) == (p.app, False, "nightly")

    play(entry, scenario, where="app")


# -- no context at all --------------------------------------------------------------------------------------------


@conformance(works_without_request)
def test_no_context__capture_works_and_carries_contextvars(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        assert not p.fw.has_app_context()
        REQUEST_ID.set("from a script")

        def child() -> tuple[str, bool]:
            return REQUEST_ID.get(), p.fw.has_app_context()

        assert (yield p.result((yield p.start(child)))) == ("from a script", False)

    play(entry, scenario, where="none")


# -- teardown ---------------------------------------------------------------------------------------------------

#: What the parent's own context runs when it ends, once each, by where the parent is.
PARENT_TEARDOWN = {
    "request": ["teardown_appcontext", "teardown_request"],
    "websocket": ["teardown_appcontext", "teardown_websocket"],
}


def _spy_on_close(request: Any, calls: list[int]) -> None:
    """Record every call of this Quart request's ``close()`` and its thread; the call itself goes on unchanged.

    Quart's request context calls it when it is popped (closing the uploaded files); a child that popped a
    context of its own would call it in the child, as Flask's decorator does with Flask's request.
    """
    close = request.close

    def spy() -> Any:
        calls.append(threading.get_ident())
        return close()

    request.close = spy


def _nothing_of_the_lifecycle_in_the_child(entry: str, where: str) -> None:
    children: list[int] = []
    closes: list[int] = []
    quart_request = RUNNERS[entry].entry.host == "quart" and where == "request"

    def scenario(p: Parent) -> Play:
        request = p.fw.request
        if p.fw.uploads:
            upload = request.files["upload"]
        if quart_request:
            _spy_on_close(request._get_current_object(), closes)

        def child() -> int:
            if p.fw.uploads:
                assert request.files["upload"].filename == "upload.txt"
            return threading.get_ident()

        for _ in range(2):
            children.append((yield p.result((yield p.start(child)))))
        # Flask's own decorator closes the parent's uploaded file when its copy of the context is popped
        # (pallets/flask#5399): the parent must still be able to read it.
        if p.fw.uploads:
            assert not upload.stream.closed
            assert upload.read() == UPLOAD
        assert closes == [], "a child called request.close()"
        assert p.lifecycle.events == []

    parent = play(entry, scenario, where=where)
    events = parent.lifecycle.steps()
    assert sorted(name for name, _ in events) == PARENT_TEARDOWN[where], events  # the parent's own, once each
    assert not {thread for _, thread in events} & set(children), "a teardown handler ran in a child thread"
    if quart_request:
        # Quart's pop of the parent's own request context closed it, once, outside the children.
        assert len(closes) == 1 and closes[0] not in children, closes


@conformance()
def test_teardown__nothing_of_the_lifecycle_runs_in_the_child(entry: str) -> None:
    _nothing_of_the_lifecycle_in_the_child(entry, "request")


@conformance(quart_host)
def test_teardown__nothing_of_a_websockets_lifecycle_runs_in_the_child(entry: str) -> None:
    _nothing_of_the_lifecycle_in_the_child(entry, "websocket")


def _opt_in_teardown(entry: str, where: str) -> None:
    children: list[int] = []
    own_teardown = PARENT_TEARDOWN[where][1]

    def scenario(p: Parent) -> Play:
        p.fw.g.user = "alice"
        has_context = p.fw.has_request_context if where == "request" else p.fw.has_websocket_context

        def child() -> tuple[int, Any, bool]:
            return threading.get_ident(), p.fw.g.user, has_context()

        for _ in range(2):
            thread, user, has_parents_context = yield p.result((yield p.start(child)))
            assert (user, has_parents_context) == ("alice", True)
            children.append(thread)
        assert p.lifecycle.threads(own_teardown) == []
        assert sorted(p.lifecycle.threads("teardown_appcontext")) == sorted(children)

    parent = play(entry, scenario, where=where, policy={"CTXSNAP_TEARDOWN": True})
    assert len(parent.lifecycle.threads(own_teardown)) == 1
    assert not set(parent.lifecycle.threads(own_teardown)) & set(children)
    assert len(parent.lifecycle.threads("teardown_appcontext")) == 3  # two children, then the parent


@conformance(follows_policy)
def test_teardown__the_opt_in_runs_teardown_appcontext_once_per_run_in_the_child(entry: str) -> None:
    _opt_in_teardown(entry, "request")


@conformance(lambda runner: follows_policy(runner) and quart_host(runner))
def test_teardown__in_a_websocket_the_opt_in_runs_teardown_appcontext_and_never_teardown_websocket(
    entry: str,
) -> None:
    _opt_in_teardown(entry, "websocket")


# -- reuse ------------------------------------------------------------------------------------------------------


def _reused_child(p: Parent, runs: int) -> Callable[[int], tuple[Any, ...]]:
    """A child whose runs prove each has a private copy: all are in at once, each writes before any reads."""
    g = p.fw.g
    all_in, all_written = threading.Barrier(runs, timeout=TIMEOUT), threading.Barrier(runs, timeout=TIMEOUT)

    def child(index: int) -> tuple[Any, ...]:
        all_in.wait()
        seen = REQUEST_ID.get(), g.counter
        REQUEST_ID.set(f"run {index}")
        g.counter = index
        all_written.wait()
        return seen, REQUEST_ID.get() == f"run {index}", g.counter == index

    return child


@conformance()
def test_reuse__many_runs_at_once_each_get_a_fresh_copy(entry: str) -> None:
    runs = 3

    def scenario(p: Parent) -> Play:
        REQUEST_ID.set("parent")
        p.fw.g.counter = 0
        results = yield p.result((yield p.start_many(_reused_child(p, runs), runs)))
        assert results == [(("parent", 0), True, True)] * runs
        assert (REQUEST_ID.get(), p.fw.g.counter) == ("parent", 0)

    play(entry, scenario)


@conformance()
def test_reuse__one_wrapped_callable_handed_to_several_calls_at_once_runs_in_a_fresh_copy_each_time(
    entry: str,
) -> None:
    runs = 3

    def scenario(p: Parent) -> Play:
        REQUEST_ID.set("parent")
        p.fw.g.counter = 0
        with ctxsnap.capture() as snapshot:
            wrapped = snapshot.wrap(_reused_child(p, runs))
        # The calls happen in another state than the capture: each run must start from the wrapped snapshot.
        REQUEST_ID.set("at the calls")
        p.fw.g.counter = -1
        handles = []
        for index in range(runs):
            handles.append((yield p.start(wrapped, index)))
        results = []
        for handle in handles:
            results.append((yield p.result(handle)))
        assert results == [(("parent", 0), True, True)] * runs
        assert (REQUEST_ID.get(), p.fw.g.counter) == ("at the calls", -1)

    play(entry, scenario)


@conformance()
def test_reuse__runs_one_after_another_each_start_from_the_capture(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        g = p.fw.g
        g.visits = 0

        def child(index: int) -> int:
            seen: int = g.visits
            g.visits = seen + 1
            return seen

        # One worker: the runs follow each other on the same thread.
        assert (yield p.result((yield p.start_many(child, 3)))) == [0, 0, 0]
        assert g.visits == 0

    play(entry, scenario, workers=1)


# -- worker hygiene ---------------------------------------------------------------------------------------------

LEFT_BEHIND: ContextVar[str] = ContextVar("conformance_left_behind")


class Boom(Exception):
    pass


class _Marker(ctxsnap.Provider):
    """Installs state outside any ContextVar (a thread-local), so only its undo can take it away.

    That is what a tracer keeping a span stack per thread does. No copy of a context hides it: a run that skipped
    the undo would leave it in the worker thread for every next task, on anyio too, where the probe runs in a
    copy of the caller's context and cannot see the worker's own ContextVars.
    """

    name = "conformance.marker"
    local = threading.local()
    undone_in: list[int] = []

    def capture(self) -> str:
        return "marked"

    def apply(self, state: str) -> None:
        self.local.mark = state

    def undo(self, state: str, token: Any, exc: BaseException | None) -> None:
        del self.local.mark
        self.undone_in.append(threading.get_ident())


def _marked() -> bool:
    return hasattr(_Marker.local, "mark")


def _thread_and_mark() -> tuple[int, bool]:
    return threading.get_ident(), _marked()


def _dirty_child(p: Parent, fail: bool, marks: list[tuple[int, bool]] | None = None) -> Callable[[], int]:
    def child() -> int:
        if marks is not None:
            marks.append(_thread_and_mark())
        LEFT_BEHIND.set("set by the task")
        REQUEST_ID.set("changed by the task")
        if p.fw.has_app_context():
            p.fw.g.left_behind = True
        if fail:
            raise Boom("the task failed")
        return threading.get_ident()

    return child


def _hygiene(p: Parent, child: Callable[[], Any], expect: type[BaseException] | None) -> Play:
    REQUEST_ID.set("parent")
    p.fw.g.user = "alice"
    before = yield p.probe()
    handle = yield p.start(child)
    if expect is None:
        ran_on = yield p.result(handle)
        assert ran_on == before[0], "the test is void: the task ran on another worker than the probe"
    else:
        with pytest.raises(expect):
            yield p.result(handle)
    after = yield p.probe()
    assert after[0] == before[0], "the test is void: the probe ran on another worker"
    assert after[1] == before[1], "the worker thread's context changed"
    assert after[2] == before[2], "a framework context, or a write to g, was left on the worker"


@conformance(in_a_pool)
def test_hygiene__the_worker_is_as_before_after_a_run(entry: str) -> None:
    # No provider here needs an undo step: the common path, where Context.run alone must restore the worker.
    play(entry, lambda p: _hygiene(p, _dirty_child(p, fail=False), None), workers=1)


@conformance(in_a_pool)
def test_hygiene__the_worker_is_as_before_after_the_task_raised(entry: str) -> None:
    # With a provider that keeps state in the thread itself, the undo step has to run in the worker, although
    # the task raised.
    marks: list[tuple[int, bool]] = []

    def scenario(p: Parent) -> Play:
        yield from _hygiene(p, _dirty_child(p, fail=True, marks=marks), Boom)
        thread, marked = yield p.probe(_thread_and_mark)
        assert marks == [(thread, True)], "the test is void: the task did not run inside the snapshot, there"
        assert not marked, "state a provider installed in the worker thread stayed there"

    with registered(_Marker()):
        play(entry, scenario, workers=1)


class _FailsInApply(ctxsnap.Provider):
    name = "conformance.fails-in-apply"

    def capture(self) -> str:
        return "state"

    def apply(self, state: str) -> None:
        raise OSError("the span exporter is down")


class _FailsInCapture(ctxsnap.Provider):
    name = "conformance.fails-in-capture"

    def capture(self) -> str:
        raise LookupError("no current span")

    def apply(self, state: str) -> None:
        raise AssertionError("never applied")


@conformance(in_a_pool)
def test_hygiene__the_worker_is_as_before_after_a_provider_raised(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        yield from _hygiene(p, _dirty_child(p, fail=False), ctxsnap.ProviderError)
        assert not (yield p.probe(_marked)), "state a provider installed outside ContextVars stayed on the worker"

    with registered(_Marker(), _FailsInApply()):
        play(entry, scenario, workers=1)


# -- late child -------------------------------------------------------------------------------------------------


@conformance()
def test_late_child__a_child_running_after_the_request_ended_sees_its_snapshot(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        REQUEST_ID.set("parent")
        p.fw.g.user = "alice"
        release = threading.Event()

        def child() -> tuple[Any, ...]:
            wait(release)
            return REQUEST_ID.get(), p.fw.g.user, p.fw.request.path, p.fw.current_app.name

        handle = yield p.start(child)
        yield p.end_of_request
        assert not p.fw.has_app_context(), "the test is void: the parent's request has not ended"
        assert p.lifecycle.threads("teardown_request"), "the test is void: the request's teardown did not run"
        release.set()
        assert (yield p.result(handle)) == ("parent", "alice", "/items/7", "conformance")

    play(entry, scenario)


# -- sealing ----------------------------------------------------------------------------------------------------


@conformance()
def test_sealing__a_sealed_snapshot_refuses_new_work_and_what_it_wrapped_still_runs(entry: str) -> None:
    def scenario(p: Parent) -> Play:
        REQUEST_ID.set("inside the block")
        p.fw.g.user = "alice"

        def child() -> tuple[str, Any]:
            return REQUEST_ID.get(), p.fw.g.user

        with ctxsnap.capture() as snapshot:
            wrapped = snapshot.wrap(child)
        with pytest.raises(ctxsnap.SnapshotClosedError):
            snapshot.wrap(child)
        with pytest.raises(ctxsnap.SnapshotClosedError):
            snapshot.run(child)
        REQUEST_ID.set("after the block")
        p.fw.g.user = "bob"
        assert (yield p.result((yield p.start(wrapped)))) == ("inside the block", "alice")

    play(entry, scenario)


# -- errors -----------------------------------------------------------------------------------------------------


@conformance()
def test_errors__the_tasks_exception_propagates_unchanged(entry: str) -> None:
    raised: list[Boom] = []

    def scenario(p: Parent) -> Play:
        def child() -> None:
            error = Boom("payment declined")
            raised.append(error)
            raise error

        with pytest.raises(Boom) as caught:
            yield p.result((yield p.start(child)))
        assert caught.value is raised[0]
        assert caught.value.__cause__ is None and not getattr(caught.value, "__notes__", None)

    play(entry, scenario)


@conformance()
def test_errors__a_provider_failing_in_capture_raises_provider_error(entry: str) -> None:
    ran: list[bool] = []

    def scenario(p: Parent) -> Play:
        with pytest.raises(ctxsnap.ProviderError) as caught:
            yield p.result((yield p.start(lambda: ran.append(True))))
        assert (caught.value.provider, caught.value.phase) == ("conformance.fails-in-capture", "capture")
        assert isinstance(caught.value.__cause__, LookupError)

    with registered(_FailsInCapture()):
        play(entry, scenario)
    assert ran == []


@conformance()
def test_errors__a_provider_failing_in_apply_raises_provider_error_and_undoes_the_rest(entry: str) -> None:
    ran: list[bool] = []
    _Marker.undone_in.clear()

    def scenario(p: Parent) -> Play:
        def child() -> None:
            ran.append(True)

        with pytest.raises(ctxsnap.ProviderError) as caught:
            yield p.result((yield p.start(child)))
        assert (caught.value.provider, caught.value.phase) == ("conformance.fails-in-apply", "apply")
        assert isinstance(caught.value.__cause__, OSError)

    with registered(_Marker(), _FailsInApply()):
        play(entry, scenario)
    assert ran == []
    assert len(_Marker.undone_in) == 1, "the provider applied before the failing one was not undone"


# -- privacy ----------------------------------------------------------------------------------------------------


@conformance()
def test_privacy__what_the_adapter_hands_out_neither_shows_nor_pickles_values(entry: str) -> None:
    secret = "s3cret-token-0451"

    def scenario(p: Parent) -> Play:
        REQUEST_ID.set(secret)
        p.fw.g.token = secret
        release = threading.Event()

        def child() -> str:
            wait(release)
            return REQUEST_ID.get()

        handle = yield p.start(child)
        exposed = (*p.exposed(handle), ctxsnap.capture())
        try:
            for thing in exposed:
                assert secret not in repr(thing), f"{type(thing).__name__} shows a captured value"
                try:
                    data = pickle.dumps(thing)
                except (TypeError, pickle.PicklingError, AttributeError):
                    continue
                assert secret.encode() not in data, f"{type(thing).__name__} pickles a captured value"
            with pytest.raises(TypeError, match="cannot be pickled"):
                pickle.dumps(ctxsnap.capture())
        finally:
            release.set()
        assert (yield p.result(handle)) == secret

    play(entry, scenario)
