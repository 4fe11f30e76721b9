"""The measuring machinery: interleaved batches, medians, min-max and paired ratios.

The machine these numbers come from is shared and noisy, so an absolute time measured a minute before another
one says little. What survives the noise is a *ratio taken in the same moment*: every round times one batch of
each alternative, back to back, in a rotating order, and the ratio of an alternative to the reference is taken
inside each round. The report gives the median of those per-round ratios (with their min-max) next to the
median per-call times. This is ``timeit``'s repeated-batch method (gc off during a batch, per-call time =
batch time / loop count), interleaved across alternatives so that drift hits all of them alike.
"""

from __future__ import annotations

import gc
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Alternative",
    "Row",
    "Settings",
    "calibrate",
    "compare",
    "describe_error",
    "pin_if_allowed",
    "pin_to_one_cpu",
    "ratio_between",
    "summarise",
    "sync_batch",
]

#: A batch runner: ``batch(number)`` performs the operation ``number`` times and returns the elapsed seconds.
Batch = Callable[[int], float]


@dataclass(frozen=True)
class Settings:
    """How long to measure. ``quick`` is a smoke run: right shape, meaningless numbers."""

    rounds: int = 31
    batch_seconds: float = 0.025
    quick: bool = False
    #: Whether scenarios that ask for it pin the process to one CPU (a test running a scenario in-process
    #: must not pin the whole test session).
    pin: bool = True

    @classmethod
    def for_mode(cls, quick: bool) -> Settings:
        return cls(rounds=3, batch_seconds=0.002, quick=True) if quick else cls()


@dataclass
class Alternative:
    """One way of doing the operation under test, and what a single run of it needs.

    ``batch`` times ``number`` operations. ``check`` (optional) runs once before timing; if it raises, the
    alternative is recorded as failing with that error instead of being timed, so one broken competitor never
    stops the run.
    """

    name: str
    batch: Batch
    check: Callable[[], Any] | None = None
    note: str = ""


def sync_batch(operation: Callable[[], Any]) -> Batch:
    """A batch runner for a plain zero-argument callable."""

    def batch(number: int) -> float:
        loop = range(number)
        start = time.perf_counter()
        for _ in loop:
            operation()
        return time.perf_counter() - start

    return batch


@dataclass
class Row:
    """One line of a result table. Times are seconds per operation; ``ratio`` is relative to the reference."""

    name: str
    median: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    ratio: float | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    number: int = 0
    samples: int = 0
    error: str | None = None
    note: str = ""
    #: Per-round seconds per operation, in round order: what paired ratios between any two rows use.
    per_round: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items()}


def calibrate(batch: Batch, target_seconds: float, limit: int = 10_000_000) -> int:
    """The loop count that makes one batch last about ``target_seconds`` (the ``timeit.autorange`` idea).

    One untimed call comes first: a first call that pays one-time costs (an import, loading entry points)
    would otherwise size every later batch to a single call, and single calls measure the timer, not the code.
    """
    batch(1)
    number = 1
    while True:
        elapsed = batch(number)
        if elapsed >= target_seconds / 5 or number >= limit:
            break
        number *= 10 if elapsed < target_seconds / 50 else 2
    if elapsed <= 0:
        return min(number, limit)
    return max(1, min(limit, int(number * target_seconds / elapsed)))


def summarise(per_call: Sequence[float]) -> tuple[float, float, float]:
    """Median, minimum and maximum of per-operation times."""
    if not per_call:
        raise ValueError("summarise() needs at least one sample")
    return statistics.median(per_call), min(per_call), max(per_call)


def paired_ratios(times: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Per-round ratios ``times[i] / reference[i]``: the drift-proof comparison."""
    if len(times) != len(reference):
        raise ValueError(f"paired_ratios() needs one sample per round each, got {len(times)} and {len(reference)}")
    return [t / r for t, r in zip(times, reference, strict=True) if r > 0]


def ratio_between(row: Row, other: Row) -> float | None:
    """Median of the per-round ratios ``row / other`` (both from the same :func:`compare` call), or None."""
    if not row.per_round or len(row.per_round) != len(other.per_round):
        return None
    ratios = paired_ratios(row.per_round, other.per_round)
    return statistics.median(ratios) if ratios else None


def compare(
    alternatives: Sequence[Alternative],
    *,
    reference: str,
    settings: Settings,
    calibrate_with: Callable[[Batch, float], int] = calibrate,
) -> list[Row]:
    """Time every alternative in interleaved batches; return one :class:`Row` each, ratios to ``reference``.

    An alternative whose ``check`` or whose batch raises becomes a row with ``error`` set (its text is data for
    the table), and takes no further part. If the reference itself fails, no ratios are given.
    """
    names = [a.name for a in alternatives]
    if reference not in names:
        raise ValueError(f"compare(): reference {reference!r} is not one of the alternatives {names}")
    rows = {a.name: Row(a.name, note=a.note) for a in alternatives}
    live: list[Alternative] = []
    numbers: dict[str, int] = {}
    for alt in alternatives:
        try:
            if alt.check is not None:
                alt.check()
            numbers[alt.name] = calibrate_with(alt.batch, settings.batch_seconds)
        except Exception as exc:  # a failing competitor is a finding, not a crash
            rows[alt.name].error = describe_error(exc)
            continue
        live.append(alt)
        rows[alt.name].number = numbers[alt.name]

    samples: dict[str, list[float]] = {a.name: [] for a in live}
    gc_was_enabled = gc.isenabled()
    try:
        for round_index in range(settings.rounds):
            # Rotate the order each round: no alternative always runs first (cold) or right after another.
            shift = round_index % len(live) if live else 0
            order = live[shift:] + live[:shift]
            for alt in order:
                number = numbers[alt.name]
                gc.disable()
                try:
                    elapsed = alt.batch(number)
                except Exception as exc:
                    rows[alt.name].error = describe_error(exc)
                    samples[alt.name].clear()
                    continue
                finally:
                    if gc_was_enabled:
                        gc.enable()
                samples[alt.name].append(elapsed / number)
            live = [a for a in live if rows[a.name].error is None]
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()

    reference_samples = samples.get(reference, [])
    for alt in alternatives:
        row = rows[alt.name]
        got = samples.get(alt.name, [])
        if row.error is not None or not got:
            continue
        row.median, row.minimum, row.maximum = summarise(got)
        row.samples = len(got)
        row.per_round = list(got)
        if reference_samples and len(reference_samples) == len(got):
            ratios = paired_ratios(got, reference_samples)
            if ratios:
                row.ratio, row.ratio_min, row.ratio_max = summarise(ratios)
    return [rows[a.name] for a in alternatives]


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message``, object addresses elided: what a table cell shows of a failure."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


def pin_if_allowed(settings: Settings) -> str:
    """:func:`pin_to_one_cpu` unless ``settings.pin`` is off; say what happened."""
    return pin_to_one_cpu() if settings.pin else "not pinned (pinning turned off for this run)"


def pin_to_one_cpu() -> str:
    """Pin this process (and the threads it starts from now on) to one CPU; say what happened.

    A thread hop costs tens of microseconds and, unpinned, the OS scheduler moving the two threads between
    cores adds noise of the same size. Threads inherit the affinity of the thread that starts them, so this is
    called before any pool is built.
    """
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned: os.sched_setaffinity is not available on this platform"
    try:
        allowed = sorted(os.sched_getaffinity(0))
        cpu = allowed[-1]
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return f"not pinned: {exc}"
    return f"pinned to CPU {cpu} (of {len(allowed)} allowed)"
