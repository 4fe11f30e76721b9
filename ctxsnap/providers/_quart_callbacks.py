"""Running Quart's lifecycle callbacks in the worker thread, whether they are sync or async.

Under ``teardown=True`` the ``quart.app`` provider runs an app's ``teardown_appcontext`` functions and its
``appcontext_*`` signals after each run. Quart itself would await them on its event loop, or send a sync one to
its executor (``app.ensure_async``), that is to another thread; a teardown that closes a per-thread resource
(a database session) must run in the thread that opened it, which is the worker's.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["call_here", "send"]


def call_here(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a Quart callback in *this* thread: a sync one directly, an async one on a private event loop."""
    if inspect.iscoroutinefunction(function):
        return asyncio.run(function(*args, **kwargs))
    return function(*args, **kwargs)


def send(signal: Any, sender: Any, **kwargs: Any) -> None:
    """Send a blinker ``signal`` to its receivers, each called in this thread by :func:`call_here`."""
    # blinker's send(_async_wrapper=) only exists from blinker 1.7, and Quart 0.19 allows 1.6: call the
    # receivers ourselves.
    for receiver in signal.receivers_for(sender):
        call_here(receiver, sender, **kwargs)
