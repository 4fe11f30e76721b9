"""A Hypothesis state machine: random interleavings of set, capture, wrap, run and seal across threads.

The model is the semantics table of the design, reduced to what can be checked at every step:

* a snapshot holds the parent's ContextVars and ``g`` attributes as they were at capture; later parent writes
  are not seen;
* each run starts from exactly that view, whatever other runs of the same wrapper (in flight at the same moment,
  in other threads) or the parent wrote meanwhile; its own writes are visible to itself only;
* nothing a run writes reaches the parent, and after a run the worker thread's context is as it was before;
* a sealed snapshot refuses ``wrap`` and ``run``; what was wrapped before sealing still runs.

Runs are held open across steps: a run enters its context, writes, and then waits until a later step lets it
finish, so parent writes, new captures, seals and other runs genuinely interleave with it.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

import ctxsnap
from tests.support import TIMEOUT

from ._flask_support import make_app

VARIABLES = [contextvars.ContextVar[str](f"reliability_stateful_{i}") for i in range(3)]
G_ATTRIBUTES = ["a", "b", "c"]
WORKERS = 3
MISSING = "<missing>"

View = tuple[dict[str, str], dict[str, str]]

values = st.sampled_from(["v1", "v2", "v3", "v4"])
variable_indexes = st.integers(0, len(VARIABLES) - 1)
attributes = st.sampled_from(G_ATTRIBUTES)


def read_view() -> View:
    """The ContextVars and ``g`` attributes as the calling code sees them."""
    g_values = {name: getattr(flask.g, name, MISSING) for name in G_ATTRIBUTES} if flask.has_app_context() else {}
    return {var.name: var.get(MISSING) for var in VARIABLES}, g_values


def write_everything(token: str) -> None:
    for var in VARIABLES:
        var.set(token)
    for name in G_ATTRIBUTES:
        setattr(flask.g, name, token)


def written_view(token: str) -> View:
    return {var.name: token for var in VARIABLES}, {name: token for name in G_ATTRIBUTES}


def worker_thread_state() -> tuple[dict[Any, Any], bool]:
    return dict(contextvars.copy_context()), flask.has_app_context()


@dataclass
class ModelSnapshot:
    snapshot: ctxsnap.Snapshot
    view: View
    sealed: bool = False


@dataclass
class ModelWrapper:
    wrapped: Callable[..., None]
    view: View


@dataclass
class Job:
    """One run held open in a worker: it has read its view and written its own values, and waits."""

    token: str
    expected: View
    worker: int
    release: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    seen_on_entry: View | None = None
    seen_at_exit: View | None = None
    future: concurrent.futures.Future[None] | None = None

    def body(self) -> None:
        try:
            self.seen_on_entry = read_view()
            write_everything(self.token)
        finally:
            self.entered.set()
        self.release.wait(timeout=TIMEOUT)
        self.seen_at_exit = read_view()


class SnapshotMachine(RuleBasedStateMachine):
    snapshots = Bundle("snapshots")
    wrappers = Bundle("wrappers")

    def __init__(self) -> None:
        super().__init__()
        self.app, _ = make_app()
        self.request_context = self.app.test_request_context("/stateful")
        self.request_context.push()
        # Each run of the machine starts from a context of its own, as a request would.
        self.tokens = [var.set(MISSING) for var in VARIABLES]
        self.parent: View = ({var.name: MISSING for var in VARIABLES}, {name: MISSING for name in G_ATTRIBUTES})
        self.workers = [
            concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stateful-{i}")
            for i in range(WORKERS)
        ]
        self.clean_worker = self.workers[0].submit(worker_thread_state).result(timeout=TIMEOUT)
        self.jobs: list[Job] = []
        self.counter = itertools.count()

    # -- the parent ------------------------------------------------------------------------------------------

    @rule(index=variable_indexes, value=values)
    def parent_sets_a_variable(self, index: int, value: str) -> None:
        VARIABLES[index].set(value)
        self.parent[0][VARIABLES[index].name] = value

    @rule(name=attributes, value=values)
    def parent_sets_g(self, name: str, value: str) -> None:
        setattr(flask.g, name, value)
        self.parent[1][name] = value

    @rule(target=snapshots)
    def capture(self) -> ModelSnapshot:
        return ModelSnapshot(ctxsnap.capture(), _copy(self.parent))

    @rule(target=wrappers)
    def capture_in_a_with_block_and_wrap(self) -> ModelWrapper:
        with ctxsnap.capture() as snapshot:
            wrapped = snapshot.wrap(_run_job)
        with pytest.raises(ctxsnap.SnapshotClosedError):
            snapshot.wrap(_run_job)
        return ModelWrapper(wrapped, _copy(self.parent))

    @rule(target=wrappers, model=snapshots)
    def wrap(self, model: ModelSnapshot) -> ModelWrapper:
        if model.sealed:
            with pytest.raises(ctxsnap.SnapshotClosedError):
                model.snapshot.wrap(_run_job)
            return ModelWrapper(ctxsnap.wrap(_run_job), _copy(self.parent))
        return ModelWrapper(model.snapshot.wrap(_run_job), model.view)

    @rule(model=snapshots)
    def seal(self, model: ModelSnapshot) -> None:
        model.snapshot.close()
        model.sealed = True

    @rule(model=snapshots)
    def run_here(self, model: ModelSnapshot) -> None:
        """``snap.run`` in the parent's own thread, possibly while runs of the same snapshot are in flight."""
        token = f"here-{next(self.counter)}"

        def body() -> tuple[View, View]:
            on_entry = read_view()
            write_everything(token)
            return on_entry, read_view()

        if model.sealed:
            with pytest.raises(ctxsnap.SnapshotClosedError):
                model.snapshot.run(body)
            return
        on_entry, after_writes = model.snapshot.run(body)
        assert on_entry == model.view
        assert after_writes == written_view(token)

    # -- runs in worker threads, held open across steps -----------------------------------------------------

    @precondition(lambda self: len(self.jobs) < WORKERS)
    @rule(model=wrappers)
    def start_run_in_a_worker(self, model: ModelWrapper) -> None:
        busy = {job.worker for job in self.jobs}
        worker = next(i for i in range(WORKERS) if i not in busy)
        job = Job(f"job-{next(self.counter)}", model.view, worker)
        job.future = self.workers[worker].submit(model.wrapped, job)
        # A run that fails before its body starts must not leave this step waiting.
        job.future.add_done_callback(lambda _: job.entered.set())
        self.jobs.append(job)
        assert job.entered.wait(timeout=TIMEOUT), "a run did not start"
        if job.future.done():
            self.jobs.remove(job)
            job.future.result()
            raise AssertionError("a run ended before it was released")

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def finish_a_run(self, data: st.DataObject) -> None:
        job = self.jobs.pop(data.draw(st.integers(0, len(self.jobs) - 1), label="job"))
        self._finish(job)

    def _finish(self, job: Job) -> None:
        job.release.set()
        assert job.future is not None
        job.future.result(timeout=TIMEOUT)
        assert job.seen_on_entry == job.expected, "a run did not start from its snapshot's view"
        assert job.seen_at_exit == written_view(job.token), "a run saw writes that were not its own"
        state = self.workers[job.worker].submit(worker_thread_state).result(timeout=TIMEOUT)
        assert state == self.clean_worker, "the worker thread kept something of the run"

    # -- checked after every step ------------------------------------------------------------------------------

    @invariant()
    def parent_sees_only_its_own_writes(self) -> None:
        assert read_view() == self.parent

    def teardown(self) -> None:
        try:
            for job in self.jobs:
                self._finish(job)
        finally:
            for job in self.jobs:
                job.release.set()
            for worker in self.workers:
                worker.shutdown(wait=True)
            for var, token in zip(VARIABLES, self.tokens, strict=False):
                var.reset(token)
            self.request_context.pop()


def _run_job(job: Job) -> None:
    job.body()


def _copy(view: View) -> View:
    return dict(view[0]), dict(view[1])


SnapshotMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_snapshot_semantics_hold_under_random_interleavings = SnapshotMachine.TestCase
