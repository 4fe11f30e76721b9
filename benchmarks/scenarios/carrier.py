"""The carrier across process boundaries: export + restore cost, and Celery and process-pool round trips.

Three scenarios, each comparing side by side in one run:

* ``carrier-codec``: ``carrier.export()`` and ``carrier.run(payload, task)`` for a carrier of 5 values, against
  ``copy_context().run(task)`` (what a thread hop pays) and a hand-written ``json.dumps``/``loads`` of the same
  values (the floor of any JSON transport);
* ``carrier-celery``: ``task.delay().get()`` through a real Redis and a real ``celery worker`` (threads pool, one
  thread), a carrying task against a plain one with the same body (target: at most 1.05x);
* ``carrier-process-pool``: ``submit(task).result()`` through a one-process pool, ``ctxsnap.ProcessPoolExecutor``
  against the standard one (target: at most 1.2x).

The Celery scenario starts ``redis-server`` itself on a free loopback port (persistence off) unless
``CTXSNAP_REDIS_URL`` names one, and stops it by its pid afterwards.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ctxsnap
from tools.redis_server import redis_server

from .._harness import Alternative, Settings, compare, sync_batch
from .._report import find, target, timing_table

ROOT = Path(__file__).resolve().parents[2]


def _in_values(fn: Callable[[], Any]) -> Any:
    from .. import _celery_app

    def body() -> Any:
        _celery_app.set_values()
        return fn()

    return contextvars.Context().run(body)


def codec(settings: Settings) -> dict[str, Any]:
    return _in_values(lambda: _codec(settings))


def _codec(settings: Settings) -> dict[str, Any]:
    from .. import _celery_app as bench

    carrier = bench.carrier
    payload = carrier.export()
    variables = bench.VARIABLES
    copy_context = contextvars.copy_context

    def task() -> Any:
        return variables[0].get()

    def forget() -> None:
        # The carrier reuses its last export and decode while nothing changed (ctxsnap._last_payload); the rows
        # that time the work itself forget them first, which costs about what the tuple around the call costs.
        carrier._last_export = carrier._last_decode = None

    def by_hand() -> Any:
        text = json.dumps({var.name: var.get() for var in variables})
        return json.loads(text)

    alternatives = [
        Alternative(
            "copy_context().run(task)",
            sync_batch(lambda: copy_context().run(task)),
            note="a thread hop's cost; nothing leaves the process",
        ),
        Alternative("json.dumps + json.loads by hand", sync_batch(by_hand), note="5 values, no checks"),
        Alternative(
            "carrier.export()",
            sync_batch(lambda: (forget(), carrier.export())),
            note="checks and encodes every value, 5 values (the kept payload forgotten first)",
        ),
        Alternative(
            "carrier.export(), nothing changed",
            sync_batch(carrier.export),
            note="the last payload reused: 5 values compared by identity",
        ),
        Alternative(
            "carrier.run(payload, task)",
            sync_batch(lambda: (forget(), carrier.run(payload, task))),
            note="decode, set 5 ContextVars in a context copy, run (the kept decode forgotten first)",
        ),
        Alternative(
            "carrier.run(payload, task), same payload",
            sync_batch(lambda: carrier.run(payload, task)),
            note="the last decode reused: set 5 ContextVars in a context copy, run",
        ),
        Alternative("export + run", sync_batch(lambda: (forget(), carrier.run(carrier.export(), task)))),
    ]
    rows = compare(alternatives, reference="copy_context().run(task)", settings=settings)
    return {
        "title": "Carrier export and restore, 5 values",
        "notes": [f"Payload: {len(payload)} bytes."],
        "tables": [timing_table("per call", rows, "copy_context().run(task)")],
        "targets": [],
        "plots": [],
    }


@contextmanager
def _redis() -> Iterator[str]:
    url = os.environ.get("CTXSNAP_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("the Celery benchmark needs redis-server (apt-get install -y redis-server)")
    with redis_server(binary, prefix="ctxsnap-bench-redis-") as url:
        yield url


def celery_round_trip(settings: Settings) -> dict[str, Any]:
    with _redis() as url:
        os.environ["CTXSNAP_BENCH_REDIS_URL"] = url
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "benchmarks._celery_app",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "1",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "ERROR",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return _in_values(lambda: _celery(settings))
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()


def _celery(settings: Settings) -> dict[str, Any]:
    from .. import _celery_app as bench

    expected = bench.VALUES[0]
    assert bench.carried.delay().get(timeout=120) == expected, "the carrying task did not see its value"
    assert bench.plain.delay().get(timeout=60) is None
    alternatives = [
        Alternative(
            "plain task .delay().get()",
            sync_batch(lambda: bench.plain.delay().get(timeout=60)),
            note="celery.Task base, nothing carried",
        ),
        Alternative(
            "carrying task .delay().get()",
            sync_batch(lambda: bench.carried.delay().get(timeout=60)),
            note="install(celery_app, carrier), 5 values; the worker saw them",
        ),
    ]
    rows = compare(alternatives, reference="plain task .delay().get()", settings=settings)
    return {
        "title": "Celery round trip over Redis, threads pool, with and without a carrier",
        "notes": ["A real redis-server and a real `celery worker --pool threads --concurrency 1` process."],
        "tables": [timing_table("delay() + get(), per task", rows, "plain task .delay().get()")],
        "targets": [
            target(
                "Celery round trip with a carrier ≤ 1.05× without",
                1.05,
                find(rows, "carrying task .delay().get()").ratio,
                why_missed="export in the caller and decode + restore in the worker on top of the broker hop",
            ),
        ],
        "plots": [],
    }


def process_pool(settings: Settings) -> dict[str, Any]:
    return _in_values(lambda: _process_pool(settings))


def _process_pool(settings: Settings) -> dict[str, Any]:
    import itertools
    import multiprocessing

    from .. import _celery_app as bench

    fork = multiprocessing.get_context("fork")
    plain = concurrent.futures.ProcessPoolExecutor(1, mp_context=fork)
    carried = ctxsnap.ProcessPoolExecutor(1, carrier=bench.carrier, mp_context=fork)
    # A second pool for the changing values, so that neither carried alternative meets the other's payload in
    # its worker: the carrier reuses its last export and its worker its last decode while nothing changed.
    changing = ctxsnap.ProcessPoolExecutor(1, carrier=bench.carrier, mp_context=fork)
    request_ids = (f"req-{n:08x}" for n in itertools.count())

    def new_request_id() -> Any:
        bench.VARIABLES[0].set(next(request_ids))
        return changing.submit(bench.read_first).result()

    # Each alternative in a context of its own, entered the same way: the changing one sets a value in its own.
    def in_context(operation: Callable[[], Any]) -> Callable[[], Any]:
        context = contextvars.copy_context()
        return lambda: context.run(operation)

    try:
        assert carried.submit(bench.read_first).result() == bench.VALUES[0]
        assert in_context(new_request_id)() != bench.VALUES[0]
        alternatives = [
            Alternative(
                "concurrent.futures.ProcessPoolExecutor",
                sync_batch(in_context(lambda: plain.submit(bench.read_first).result())),
                note="nothing carried",
            ),
            Alternative(
                "ctxsnap.ProcessPoolExecutor(carrier=...)",
                sync_batch(in_context(lambda: carried.submit(bench.read_first).result())),
                note="5 values, empty context in the child; the same values for every task, as in one request",
            ),
            Alternative(
                "ctxsnap.ProcessPoolExecutor(carrier=...), a new value every task",
                sync_batch(in_context(new_request_id)),
                note="one of the 5 values set anew before each submit: nothing is reused, either side",
            ),
        ]
        # Batches of about 0.1 s (not the default 25 ms, a few dozen hops): one hop costs hundreds of µs and
        # a batch of a few dozen moved with every scheduling hiccup of the shared machine.
        longer = settings if settings.quick else dataclasses.replace(settings, batch_seconds=0.1)
        rows = compare(alternatives, reference="concurrent.futures.ProcessPoolExecutor", settings=longer)
        cpu = _cpu_per_task(plain, carried, changing, new_request_id, bench.read_first, settings)
    finally:
        plain.shutdown()
        carried.shutdown()
        changing.shutdown()
    return {
        "title": "Process pool round trip, one worker process (fork), with and without a carrier",
        "notes": [cpu],
        "tables": [timing_table("submit + result, per task", rows, "concurrent.futures.ProcessPoolExecutor")],
        "targets": [
            target(
                "process pool round trip with a carrier ≤ 1.2× without",
                1.2,
                find(rows, "ctxsnap.ProcessPoolExecutor(carrier=...)").ratio,
                why_missed="export in the parent, decode and restore in the child",
            ),
        ],
        "plots": [],
    }


def _child_cpu() -> float:
    return time.process_time()


def _cpu_per_task(
    plain: concurrent.futures.ProcessPoolExecutor,
    carried: concurrent.futures.ProcessPoolExecutor,
    changing: concurrent.futures.ProcessPoolExecutor,
    new_request_id: Callable[[], Any],
    task: Callable[[], Any],
    settings: Settings,
) -> str:
    """Median CPU time per task in the parent (all its threads) and the worker, in interleaved rounds.

    CPU time moves less with the machine's load than wall time does: it is what each side spends, not how
    long it waited for a core.
    """
    base_submit = concurrent.futures.ProcessPoolExecutor.submit  # the probe itself carries nothing
    cases = [
        ("plain", plain, lambda: plain.submit(task).result()),
        ("carrier", carried, lambda: carried.submit(task).result()),
        ("carrier, a new value every task", changing, new_request_id),
    ]
    tasks = 20 if settings.quick else 200
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _, _ in cases}
    for round_index in range(3 if settings.quick else 15):
        shift = round_index % len(cases)
        for name, pool, operation in cases[shift:] + cases[:shift]:
            context = contextvars.copy_context()
            child_start = base_submit(pool, _child_cpu).result()
            start = time.process_time()
            for _ in range(tasks):
                context.run(operation)
            samples[name][0].append((time.process_time() - start) / tasks)
            samples[name][1].append((base_submit(pool, _child_cpu).result() - child_start) / tasks)
    parts = [
        f"{name}: parent {statistics.median(parent) * 1e6:.0f} µs, worker {statistics.median(child) * 1e6:.0f} µs"
        for name, (parent, child) in samples.items()
    ]
    return f"CPU time per task (median of interleaved rounds of {tasks} tasks): " + "; ".join(parts) + "."
