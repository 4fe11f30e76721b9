"""Flask: the app context (with a private ``g``) and the request context, carried into threads.

Flask keeps the current app and request context in context-local storage, which a worker thread does not
inherit, and the tools that move it there get it wrong in different ways (see ``docs/flask.md``): Flask's own
``copy_current_request_context`` gives the worker an empty ``g`` and runs the request's teardown a second time,
``copy_context().run`` alone hands the worker the parent's ``g`` object itself, and one wrapper shared by two
workers crashes. This module registers two providers that do it once and right, on every Flask from 1.1 on:

* ``flask.app`` installs, per run, a fork of the parent's app context: same app and URL adapter, a private ``g``
  holding a shallow copy of the parent's attributes (or, by policy, the parent's own ``g``);
* ``flask.request`` installs a view of the parent's request context (the same request, session and URL
  adapter), so ``request``, ``session`` and ``url_for`` work, without pushing it: nothing of the request's
  lifecycle runs in the worker, and the view's ``after_this_request`` list refuses additions, since its
  callbacks would run on the parent's response.

Both load by themselves the first time a snapshot is captured while Flask is imported (the core imports this
module then, by name, from a table in ``ctxsnap._provider``). The helpers users import, the ``CtxSnap``
extension, ``capture()`` with a per-call policy and a drop-in ``copy_current_request_context``, are the Flask
adapter's: :mod:`ctxsnap.adapters.flask`. The ``g``/teardown policy itself is shared with Quart
(``ctxsnap/providers/_policy.py``).

This module detects the layout and registers its providers; each layout's providers live in a module of
their own (``_flask_contextvars``, ``_flask_merged``, ``_flask_localstack``), over ``_flask_common``.

Where Flask keeps its contexts is detected from what ``flask.globals`` holds, never from version numbers:

* ContextVars ``_cv_app``/``_cv_request`` (Flask >= 2.2). A release without ``_cv_request`` (the request state
  merged into the app context, pallets/flask#5812) is handled too: the child gets a fork of the merged context
  that is set, never pushed, so popping it can never run the request's teardown;
* Werkzeug ``LocalStack`` stacks whose storage is a ContextVar (Flask 1.1/2.0 on Werkzeug 2.0). A copied Context
  holds the parent's stack *list*, and ``LocalStack.pop`` on a stack of two or more pops that list in place,
  so the child always gets stack lists of its own and never pops one it inherited;
* ``LocalStack`` stacks keyed by thread id (Werkzeug < 2.0): nothing can carry them to another thread, so a capture
  inside a Flask context is refused with an error that says to upgrade Werkzeug, rather than carrying nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Final

from .._extras import framework_import

with framework_import("flask", extra="flask", importer=__name__):
    import flask
    import flask.globals

from .._provider import Provider, register_provider
from . import _flask_common
from ._flask_localstack import UPGRADE_WERKZEUG

__all__ = ["APP_PROVIDER", "LAYOUT", "POLICY", "REQUEST_PROVIDER"]

#: The g/teardown policy of captures in a Flask app; ``ctxsnap.adapters.flask`` sets its per-call override.
POLICY: Final = _flask_common.POLICY


# -- where this Flask keeps its contexts ----------------------------------------------------------------------

# vars() rather than getattr(): Flask 2.2/2.3 serve the old `_app_ctx_stack` names through a module
# __getattr__ that warns, and the ContextVars must win wherever both exist.
_GLOBALS: Final = vars(flask.globals)
_CV_APP: ContextVar[Any] | None = _GLOBALS.get("_cv_app")
_CV_REQUEST: ContextVar[Any] | None = _GLOBALS.get("_cv_request")
if not isinstance(_CV_APP, ContextVar):
    _CV_APP = None
if _CV_APP is None or not isinstance(_CV_REQUEST, ContextVar):
    _CV_REQUEST = None


def _stack_storage(stack: Any) -> ContextVar[Any] | None:
    """The ContextVar behind a Werkzeug 2.0 ``LocalStack``, or ``None`` when the stack is keyed by thread id.

    Werkzeug 2.0 falls back to a look-alike class keyed by greenlet/thread id under an unpatched gevent or
    eventlet; only a real ContextVar travels with ``contextvars``.
    """
    storage = getattr(getattr(stack, "_local", None), "_storage", None)
    return storage if isinstance(storage, ContextVar) else None


_APP_STACK: Any = None if _CV_APP is not None else _GLOBALS.get("_app_ctx_stack")
_REQUEST_STACK: Any = None if _CV_APP is not None else _GLOBALS.get("_request_ctx_stack")
_APP_STORAGE: ContextVar[Any] | None = _stack_storage(_APP_STACK)
_REQUEST_STORAGE: ContextVar[Any] | None = _stack_storage(_REQUEST_STACK)

#: Where this Flask keeps its contexts: ``"contextvars"``, ``"contextvars-merged"``, ``"localstack"`` or
#: ``"per-thread"`` (captures inside a Flask context are refused there).
LAYOUT: str
if _CV_APP is not None:
    LAYOUT = "contextvars" if _CV_REQUEST is not None else "contextvars-merged"
elif _APP_STORAGE is not None and _REQUEST_STORAGE is not None:
    LAYOUT = "localstack"
elif _APP_STACK is not None and _REQUEST_STACK is not None:
    LAYOUT = "per-thread"
else:  # pragma: no cover - a Flask none of the above describes
    raise ImportError(
        "ctxsnap.providers.flask does not recognise this Flask's contexts. Please report it with the output of "
        "'python -m ctxsnap' (flask.globals has neither the ContextVar '_cv_app' nor the LocalStack "
        "'_app_ctx_stack')."
    )


def _make_providers() -> tuple[Provider, Provider]:
    # Each layout's module is imported only on the Flask that has that layout.
    if _CV_APP is not None and _CV_REQUEST is not None:
        from ._flask_contextvars import ContextVarAppProvider, ContextVarRequestProvider

        return ContextVarAppProvider(_CV_APP), ContextVarRequestProvider(_CV_REQUEST)
    if _CV_APP is not None:
        from ._flask_merged import MergedAppProvider, MergedRequestProvider

        return MergedAppProvider(_CV_APP), MergedRequestProvider(_CV_APP)
    from ._flask_localstack import LocalStackAppProvider, LocalStackRequestProvider, PerThreadProvider

    if _APP_STORAGE is not None and _REQUEST_STORAGE is not None:
        return LocalStackAppProvider(_APP_STORAGE), LocalStackRequestProvider(_REQUEST_STORAGE)
    return PerThreadProvider("flask.app", _APP_STACK), PerThreadProvider("flask.request", _REQUEST_STACK)


#: The ``flask.app`` and ``flask.request`` providers of this Flask's layout, registered at import.
APP_PROVIDER, REQUEST_PROVIDER = _make_providers()
for _provider in (APP_PROVIDER, REQUEST_PROVIDER):
    try:
        register_provider(_provider)
    except ValueError:
        # A provider of that name is already registered (the app's own replacement, registered before the
        # first capture loaded this module): the app's choice stands.
        pass
del _provider


def refuse_per_thread(what: str) -> None:
    """Raise, saying ``what`` cannot happen, when this Werkzeug keeps Flask's contexts per thread id."""
    if LAYOUT == "per-thread":
        raise RuntimeError(f"{what}. {UPGRADE_WERKZEUG}")
