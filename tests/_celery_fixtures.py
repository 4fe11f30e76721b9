"""A real Redis server and real Celery workers (threads, prefork, solo) for the Celery tests.

The root conftest imports these fixtures, so the Celery adapter's tests and the conformance suite's Celery rows
share one Redis server per session.

Redis: ``CTXSNAP_REDIS_URL`` when set (``.ci/run`` starts one); otherwise, outside CI, the fixture starts
``redis-server`` itself on a free loopback port with persistence off, when the binary is installed, and stops it
by its pid. Without either (and in CI without the URL) the tests fail with what to do: a skipped test would
read as a pass.

Celery is imported inside the fixtures: these modules are collected (then deselected by the ``celery``
marker) in matrix cells that do not install it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import PROCESS_TIMEOUT, TIMEOUT
from tools.redis_server import redis_server

ROOT = Path(__file__).resolve().parents[1]
APP_MODULE = "tests.adapters.celery.celery_app"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("CTXSNAP_REDIS_URL")
    if url:
        yield url
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            "the Celery tests need CTXSNAP_REDIS_URL in CI: .ci/run starts redis-server and sets it; "
            "run the tests through .ci/run"
        )
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "the Celery tests need a Redis server: set CTXSNAP_REDIS_URL, or install redis-server "
            "(apt-get install -y redis-server) and the tests start one themselves"
        )
    with redis_server(binary, prefix="ctxsnap-redis-") as url:
        yield url


@pytest.fixture(scope="session")
def celery_app(redis_url: str) -> Any:
    os.environ["CTXSNAP_REDIS_URL"] = redis_url
    from tests.adapters.celery import celery_app as module

    assert redis_url == module.REDIS_URL, "the Celery test app was imported before the Redis URL was known"
    return module


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Any:
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


class Worker:
    def __init__(
        self, pool: str, concurrency: int, redis_url: str, queue: str, app_module: str = APP_MODULE
    ) -> None:
        self.pool = pool
        self.log = Path(tempfile.mkstemp(prefix=f"ctxsnap-celery-{pool}-", suffix=".log")[1])
        env = {**os.environ, "CTXSNAP_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app_module,
                "worker",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--queues",
                queue,
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
                "--hostname",
                f"{pool}-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)  # a warm shutdown: running tasks finish
        try:
            self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.unlink(missing_ok=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module", params=["threads", "prefork", "solo"])
def celery_worker(
    request: pytest.FixtureRequest, celery_app: Any, redis_client: Any, redis_url: str
) -> Iterator[Worker]:
    """A real worker of each pool consuming the default queue; tests run once per pool."""
    pool = str(request.param)
    redis_client.delete("celery")  # nothing left over from a worker of another pool
    running = Worker(pool, 1 if pool == "solo" else 4, redis_url, "celery")
    try:
        result = celery_app.observe.delay()
        try:
            result.get(timeout=PROCESS_TIMEOUT)
        except Exception as exc:
            raise RuntimeError(f"the {pool} worker did not start:\n{running.output()}") from exc
        yield running
    finally:
        running.stop()
