"""The Celery part of ``python dev.py demo``: a Flask request enqueues a task; the worker logs what it carried.

With ``redis-server`` installed, the demo starts one on a free loopback port (persistence off) and a real
``celery worker`` process (threads pool) against it, and stops both afterwards. Without it, it uses Celery's
in-process memory broker and an in-process worker thread, and says so: the values still go through the
carrier's codec, but no process boundary is crossed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools.redis_server import redis_server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0


@contextlib.contextmanager
def _worker_process(broker: str) -> Iterator[Path]:
    log = Path(tempfile.mkstemp(prefix="ctxsnap-demo-worker-", suffix=".log")[1])
    env = {**os.environ, "CTXSNAP_DEMO_BROKER": broker, "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "examples.celery_example",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        log.unlink(missing_ok=True)


def _enqueue_and_wait(module: Any, request_id: str, user_id: str) -> dict[str, Any]:
    from examples._report import client
    from examples.flask_app import serve

    with serve(module.create_app()) as url, client(url) as http:
        task_id = http.get(
            "/enqueue?what=invoice",
            headers={"X-Request-Id": request_id, "X-User-Id": user_id, "Authorization": "Bearer secret"},
        ).json()["task_id"]
    seen: dict[str, Any] = module.celery_app.AsyncResult(task_id).get(timeout=TIMEOUT)
    return seen


def demo() -> bool:
    request_id, user_id = f"demo-{uuid.uuid4().hex[:6]}", "user-42"
    binary = shutil.which("redis-server")
    print(
        "=== Celery: a Flask request enqueues a task; the worker logs the request id and user id it carried ===\n"
    )
    with contextlib.ExitStack() as stack:
        if binary is not None:
            broker = stack.enter_context(redis_server(binary, prefix="ctxsnap-demo-redis-"))
            os.environ["CTXSNAP_DEMO_BROKER"] = broker
            print(
                f"   broker: redis-server started on {broker} (persistence off); a real `celery worker` process,"
            )
            print("   threads pool, consumes it.\n")
        else:
            os.environ.pop("CTXSNAP_DEMO_BROKER", None)
            print("   broker: Celery's in-process memory broker (redis-server is not installed; apt-get install")
            print("   redis-server to see a real worker process). An in-process worker thread consumes it.\n")
        from examples import celery_example as module

        if binary is not None:
            log = stack.enter_context(_worker_process(broker))
        else:
            from celery.contrib.testing.worker import start_worker

            log = None
            stack.enter_context(
                start_worker(module.celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING")
            )
        print(f"   GET /enqueue  X-Request-Id: {request_id}  X-User-Id: {user_id}  Authorization: Bearer ...")
        seen = _enqueue_and_wait(module, request_id, user_id)
        logged = ""
        if log is not None:
            deadline = time.monotonic() + TIMEOUT
            while request_id not in logged and time.monotonic() < deadline:
                logged = log.read_text(errors="replace")
                time.sleep(0.05)
            lines = [line for line in logged.splitlines() if request_id in line]
            print(f"   worker log:   {lines[0].strip() if lines else '(no line logged)'}")
        print(
            f"   task saw:     request_id={seen['request_id']}  user_id={seen['user_id']}  "
            f"Authorization={seen['auth_header']} (not declared)"
        )
    ok = seen["request_id"] == request_id and seen["user_id"] == user_id and seen["auth_header"] is None
    if log is not None:
        ok &= request_id in logged
    print(
        "\nCelery: the task carried exactly the declared values.\n"
        if ok
        else "\nCelery: FAILED: the task did not see the declared values (see above).\n"
    )
    return ok


if __name__ == "__main__":
    sys.exit(0 if demo() else 1)
