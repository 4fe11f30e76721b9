"""Flask: the helpers an app imports, over the ``flask.app`` and ``flask.request`` providers.

The providers that carry Flask's app context (with a private ``g``) and request context into threads live in
:mod:`ctxsnap.providers.flask`, and load by themselves as soon as Flask is in use: an app that never imports
this module still gets them. This module adds what an app configures or calls by hand:

* the :class:`CtxSnap` extension, with the per-app ``g``/teardown policy in ``app.config``;
* :func:`capture`, :func:`ctxsnap.capture` with a policy for one capture;
* :func:`copy_current_request_context`, a drop-in for Flask's decorator without its bugs (``docs/flask.md``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from .._extras import framework_import

with framework_import("flask", extra="flask", importer=__name__):
    import flask

from .._checks import check_callable
from .._moved import moved_names
from .._planning import Selection
from .._snapshot import Snapshot
from .._wrapping import wrap_checked
from ..providers._policy import GPolicy
from ..providers.flask import POLICY, refuse_per_thread
from ._extension import capture_with_policy, init_extension

__all__ = ["CtxSnap", "capture", "copy_current_request_context"]

P = ParamSpec("P")
R = TypeVar("R")

#: Names that moved to the provider module (issue 13): still served here, with a DeprecationWarning.
__getattr__ = moved_names(
    __name__, {name: "ctxsnap.providers.flask" for name in ("LAYOUT", "APP_PROVIDER", "REQUEST_PROVIDER")}
)


# -- the public helpers ---------------------------------------------------------------------------------------


class CtxSnap:
    """The Flask extension: per-app policy for what a snapshot does with ``g`` and with teardown.

    ``app.config["CTXSNAP_G"]`` is ``"copy"`` (the default: the worker gets its own ``g`` holding a shallow copy
    of the request's attributes) or ``"share"`` (the worker uses the request's own ``g`` object).
    ``app.config["CTXSNAP_TEARDOWN"]`` is ``False`` (the default: nothing of Flask's lifecycle runs in the
    worker) or ``True`` (each run pushes its own app context and pops it afterwards, so teardown_appcontext runs
    exactly once per run, in the worker; teardown_request never runs there). The config is read at each capture,
    so changing it later takes effect. Without the extension the defaults apply and everything else works.
    """

    def __init__(self, app: flask.Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        if not isinstance(app, flask.Flask):
            # A Quart app has extensions and config too, but its contexts live in Quart's own ContextVars: this
            # extension's settings would silently apply to nothing.
            raise TypeError(
                f"CtxSnap.init_app() takes a flask.Flask application, got {type(app).__name__}. Pass the app "
                "object (or call it from your application factory); for a Quart app, use "
                "ctxsnap.adapters.quart.CtxSnap."
            )
        refuse_per_thread("CtxSnap cannot carry this app's contexts to other threads")
        init_extension(self, app, POLICY)

    def __repr__(self) -> str:
        return "<ctxsnap.adapters.flask.CtxSnap>"


def capture(
    *,
    g: GPolicy | None = None,
    teardown: bool | None = None,
    include: Selection = None,
    exclude: Selection = None,
) -> Snapshot:
    """:func:`ctxsnap.capture` with a policy for this capture only.

    ``g`` (``"copy"`` or ``"share"``) and ``teardown`` override the app's ``CTXSNAP_G``/``CTXSNAP_TEARDOWN``
    (or the defaults, ``"copy"`` and ``False``) for this snapshot; ``None`` keeps the app's setting.
    """
    return capture_with_policy(POLICY, g, teardown, include, exclude)


@overload
def copy_current_request_context(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]: ...


@overload
def copy_current_request_context(fn: Callable[P, R]) -> Callable[P, R]: ...


def copy_current_request_context(fn: Callable[P, Any]) -> Callable[P, Any]:
    """Drop-in for :func:`flask.copy_current_request_context` without its bugs.

    Like Flask's, it must be called inside a request context and returns ``fn`` bound to that request, and an
    ``async def`` function runs through the app's ``ensure_sync`` (Flask >= 2.0, with ``flask[async]``), so the
    wrapper is a sync callable that runs the coroutine to completion in the worker. Unlike Flask's, the worker
    gets a copy of ``g`` rather than an empty one (pallets/flask#3306), the wrapper can run in many workers at
    once (#5252, #5396), and no teardown handler and no ``request.close()`` runs in the worker (#5399). It also
    carries every ContextVar, as every ctxsnap snapshot does. It always copies ``g`` and never runs teardown,
    whatever the app's config says; use :func:`capture` for the app's policy.
    """
    name = "copy_current_request_context"
    refuse_per_thread(f"{name}() cannot carry the request to another thread")
    if not flask.has_request_context():
        raise RuntimeError(
            f"{name}() was called outside a request context. Call it inside a view function; to carry only "
            "the app context (CLI commands, app.app_context()) or no Flask context at all, use ctxsnap.wrap(fn)."
        )
    target: Callable[..., Any] = fn
    if inspect.iscoroutinefunction(fn):
        # Flask's own decorator calls app.ensure_sync(f) in the worker. It is called here, once: a missing
        # asgiref then fails in the view, with Flask's own message, not in a worker nobody watches.
        ensure_sync = getattr(flask.current_app, "ensure_sync", None)
        if ensure_sync is None:
            raise TypeError(
                f"{name}() got an async function this Flask cannot run. Pass a sync function, or upgrade: "
                "Flask 2.0 and later run it through app.ensure_sync (pip install 'flask[async]')."
            )
        target = ensure_sync(fn)
    else:
        check_callable(name, fn)
    wrapper = wrap_checked(capture(g="copy", teardown=False), target)
    # The wrapper carries fn's name and docstring, not those of ensure_sync's adapter around it.
    return wrapper if target is fn else functools.update_wrapper(wrapper, fn)
