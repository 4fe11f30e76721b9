"""Quart: ``to_thread`` for sync work inside a request or websocket, and the helpers an app configures.

The providers that carry Quart's app context (with a private ``g``), request and websocket contexts live in
:mod:`ctxsnap.providers.quart` and load by themselves as soon as Quart is in use. This module adds:

* :func:`to_thread`, which runs a sync function in a worker thread inside the caller's snapshot (Quart's own
  ``run_sync`` hands the worker the parent's ``g`` itself);
* the :class:`CtxSnap` extension, with the per-app ``g``/teardown policy in ``app.config``, and :func:`capture`
  with a policy for one capture: the same surface and rules as the Flask adapter's.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from .._extras import framework_import

with framework_import("quart", extra="quart", importer=__name__):
    import quart

from .._capture import capture as _core_capture
from .._capture import is_wrapped, runner
from .._checks import check_callable
from .._moved import moved_names
from .._planning import Selection
from .._snapshot import Snapshot
from ..providers._policy import GPolicy
from ..providers.quart import POLICY
from ._extension import capture_with_policy, init_extension

__all__ = ["CtxSnap", "capture", "to_thread"]

P = ParamSpec("P")
R = TypeVar("R")

#: Names that moved to the provider module (issue 13): still served here, with a DeprecationWarning.
__getattr__ = moved_names(
    __name__,
    {name: "ctxsnap.providers.quart" for name in ("LAYOUT", "MERGED", "AppContextProvider", "_context_var")},
)


# -- the extension and the per-capture policy ---------------------------------------------------------------------


class CtxSnap:
    """The Quart extension: ``CtxSnap(app)`` or ``CtxSnap().init_app(app)``; per-app policy for ``g`` and teardown.

    ``app.config["CTXSNAP_G"]`` is ``"copy"`` (the default: the worker gets its own ``g`` holding a shallow copy
    of the parent's attributes) or ``"share"`` (the worker uses the parent's own ``g`` object).
    ``app.config["CTXSNAP_TEARDOWN"]`` is ``False`` (the default: nothing of Quart's lifecycle runs in the
    worker) or ``True`` (each run gets its own app context, and Quart's teardown_appcontext functions run once
    for it, in the worker; teardown_request/teardown_websocket never run there). The config is read at each
    capture. Without the extension the defaults apply and everything else works.
    """

    def __init__(self, app: quart.Quart | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: quart.Quart) -> None:
        if not isinstance(app, quart.Quart):
            raise TypeError(
                f"ctxsnap.adapters.quart.CtxSnap.init_app() takes a quart.Quart application, got "
                f"{type(app).__name__}. Pass the app object; for a Flask app, use ctxsnap.adapters.flask.CtxSnap."
            )
        init_extension(self, app, POLICY)

    def __repr__(self) -> str:
        return "<ctxsnap.adapters.quart.CtxSnap>"


def capture(
    *,
    g: GPolicy | None = None,
    teardown: bool | None = None,
    include: Selection = None,
    exclude: Selection = None,
) -> Snapshot:
    """:func:`ctxsnap.capture` with a ``g``/``teardown`` policy for this capture only.

    ``g="share"`` lets the child use the parent's ``g``; ``teardown=True`` gives each run its own app context
    whose ``teardown_appcontext`` functions run in the child after the work. ``None`` keeps the app's setting
    (or the default, ``"copy"`` and ``False``).
    """
    return capture_with_policy(POLICY, g, teardown, include, exclude)


# -- the thread helper ----------------------------------------------------------------------------------------


async def to_thread(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``func(*args, **kwargs)`` in a worker thread, inside the caller's snapshot; await the result.

    The worker sees the request or websocket, ``session``, ``current_app``, its own copy of ``g`` and every
    ContextVar as they were at the call. It runs in the loop's default executor, like Quart's own
    ``run_sync``. If the caller is cancelled the thread still finishes its call (a thread cannot be
    interrupted); its result is dropped and the worker's own context is left as it was.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "ctxsnap.adapters.quart.to_thread() needs a running asyncio event loop. Await it inside an async "
            "view or handler; from sync code, use ctxsnap.wrap(fn) or ctxsnap.ThreadPoolExecutor; under trio "
            "(quart-trio), use ctxsnap.adapters.anyio.run_sync."
        ) from None
    if is_wrapped(func):
        # A callable from Snapshot.wrap keeps the snapshot the user chose for it, as ContextExecutor does.
        return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))
    check_callable("to_thread", func)
    # The worker calls the snapshot's run directly: no functools.wraps wrapper and no partial per call.
    result: R = await loop.run_in_executor(None, runner(_core_capture()), func, args, kwargs)
    return result
