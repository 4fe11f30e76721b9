"""The wrapper ``instrument()`` puts on ``anyio.to_thread.run_sync``, on asyncio and trio alike.

Apart from the standard library's wrappers because anyio is optional: this module is imported only once anyio
is, and hands the work over exactly as ``ctxsnap.adapters.anyio.in_snapshot`` does for explicit callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import anyio as ctxsnap_anyio
from . import _state
from ._passthrough import runs_in_snapshot


def wrap_run_sync(call: Callable[..., Any]) -> Callable[..., Any]:
    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        settings = _state.active("anyio")
        if settings is None or not runs_in_snapshot(func):
            return await call(func, *args, **kwargs)
        handed, handed_args = ctxsnap_anyio.in_snapshot(settings.capture(), func, args)
        # limiter, abandon_on_cancel (and anyio's deprecated cancellable) reach anyio exactly as given.
        return await call(handed, *handed_args, **kwargs)

    return run_sync
