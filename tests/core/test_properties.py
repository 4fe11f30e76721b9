"""A property test: arbitrary interleavings of ``set``, ``capture``, ``wrap``, ``run`` and sealing, across real
threads, against a model of what each thread and each snapshot should hold.

The model is plain dictionaries: every actor thread has its own values; a snapshot is a frozen copy of its
actor's values at capture (minus what the selection leaves out). A run must see exactly the snapshot's values,
and afterwards every actor must hold exactly its own values again, whatever the run wrote.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

import ctxsnap
from tests.support import TIMEOUT

VARIABLES: list[contextvars.ContextVar[Any]] = [
    contextvars.ContextVar(f"core_property_{name}") for name in ("a", "b", "c")
]
ACTORS = 3

values = st.sampled_from(["x", "y", "z", "w"])
variable_indexes = st.integers(0, len(VARIABLES) - 1)
actors = st.integers(0, ACTORS - 1)
selections = st.one_of(
    st.just(("all", frozenset[int]())),
    st.tuples(st.just("exclude"), st.frozensets(variable_indexes)),
    st.tuples(st.just("include"), st.frozensets(variable_indexes, min_size=1)),
)


def read_all() -> tuple[str | None, ...]:
    return tuple(var.get(None) for var in VARIABLES)


def set_var(index: int, value: str) -> None:
    VARIABLES[index].set(value)


@dataclass
class Captured:
    snapshot: ctxsnap.Snapshot
    expected: tuple[str | None, ...]
    sealed: bool = False
    wrapped: list[Any] = field(default_factory=list)


class Interleavings(RuleBasedStateMachine):
    snapshots = Bundle("snapshots")
    wrapped = Bundle("wrapped")

    def __init__(self) -> None:
        super().__init__()
        # One single-worker pool per actor: every task of an actor runs on the same thread, in that thread's
        # own context, the way an application thread or a pool worker does.
        self.pools = [ThreadPoolExecutor(1, thread_name_prefix=f"actor{i}") for i in range(ACTORS)]
        self.model: list[list[str | None]] = [[None] * len(VARIABLES) for _ in range(ACTORS)]

    def on(self, actor: int, fn: Any, *args: Any) -> Any:
        return self.pools[actor].submit(fn, *args).result(timeout=TIMEOUT)

    def teardown(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True)

    @rule(actor=actors, index=variable_indexes, value=values)
    def set(self, actor: int, index: int, value: str) -> None:
        self.on(actor, set_var, index, value)
        self.model[actor][index] = value

    @rule(target=snapshots, actor=actors, selection=selections)
    def capture(self, actor: int, selection: tuple[str, frozenset[int]]) -> Captured:
        kind, chosen = selection
        expected = list(self.model[actor])
        if kind == "all":
            snapshot = self.on(actor, ctxsnap.capture)
        elif kind == "exclude":
            snapshot = self.on(actor, lambda: ctxsnap.capture(exclude=[VARIABLES[i] for i in sorted(chosen)]))
            expected = [None if i in chosen else v for i, v in enumerate(expected)]
        else:
            snapshot = self.on(actor, lambda: ctxsnap.capture(include=[VARIABLES[i] for i in sorted(chosen)]))
            expected = [v if i in chosen else None for i, v in enumerate(expected)]
        return Captured(snapshot, tuple(expected))

    @rule(actor=actors, captured=snapshots, writes=st.dictionaries(variable_indexes, values))
    def run(self, actor: int, captured: Captured, writes: dict[int, str]) -> None:
        def child() -> tuple[tuple[str | None, ...], tuple[str | None, ...]]:
            before = read_all()
            for index, value in writes.items():
                set_var(index, value)
            return before, read_all()

        if captured.sealed:
            with pytest.raises(ctxsnap.SnapshotClosedError):
                self.on(actor, captured.snapshot.run, child)
            return
        before, after = self.on(actor, captured.snapshot.run, child)
        assert before == captured.expected
        assert after == tuple(writes.get(i, v) for i, v in enumerate(captured.expected))

    @rule(target=wrapped, captured=snapshots)
    def wrap(self, captured: Captured) -> tuple[Any, Captured]:
        if captured.sealed:
            with pytest.raises(ctxsnap.SnapshotClosedError):
                captured.snapshot.wrap(read_all)
            return (None, captured)
        return (captured.snapshot.wrap(read_all), captured)

    @rule(captured=snapshots)
    def seal(self, captured: Captured) -> None:
        captured.snapshot.close()
        captured.sealed = True

    @rule(actor=actors, item=wrapped)
    def run_wrapped(self, actor: int, item: tuple[Any, Captured]) -> None:
        fn, captured = item
        if fn is not None:  # sealing after wrapping does not stop the wrapped callable
            assert self.on(actor, fn) == captured.expected

    @rule(captured=snapshots, value=values)
    def run_everywhere_at_once(self, captured: Captured, value: str) -> None:
        if captured.sealed:
            return
        barrier = threading.Barrier(ACTORS, timeout=TIMEOUT)

        def child(actor: int) -> tuple[tuple[str | None, ...], str | None]:
            before = read_all()
            set_var(0, f"{value} by {actor}")
            barrier.wait()  # every actor is inside the same snapshot at the same time
            return before, VARIABLES[0].get(None)

        task = captured.snapshot.wrap(child)
        futures = [pool.submit(task, actor) for actor, pool in enumerate(self.pools)]
        for actor, future in enumerate(futures):
            assert future.result(timeout=TIMEOUT) == (captured.expected, f"{value} by {actor}")

    @invariant()
    def every_actor_holds_exactly_its_own_values(self) -> None:
        for actor in range(ACTORS):
            assert self.on(actor, read_all) == tuple(self.model[actor])


Interleavings.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_interleavings_match_the_model = Interleavings.TestCase
