"""A throwaway ``redis-server`` on a free loopback port, for the demo, the Celery tests and the benchmark.

Each of them needs a real broker when none is given (``CTXSNAP_REDIS_URL``, which ``.ci/run`` sets), and each
started one the same way: persistence off, bound to 127.0.0.1, daemonized with its pidfile in a temporary
directory, and stopped by that pid when the block ends, as ``.ci/run`` stops CI's. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "redis_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server(binary: str, *, prefix: str, timeout: float = 30) -> Iterator[str]:
    """Start ``binary`` (a redis-server), yield its URL once it answers PING, stop it by its pid afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    pidfile = workdir / "redis.pid"
    options = {"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no", "daemonize": "yes"}
    options |= {"pidfile": str(pidfile), "dir": str(workdir), "logfile": str(workdir / "redis.log")}
    subprocess.run(
        [binary, *(part for name, value in options.items() for part in (f"--{name}", value))], check=True
    )
    try:
        _wait_for_pong(port, time.monotonic() + timeout)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_pong(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not answer PING in time. Check its log in the work dir.")
