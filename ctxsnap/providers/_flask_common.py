"""What every layout's Flask providers share: the policy, the child's app context fork, and their base classes.

``ctxsnap.providers.flask`` picks one pair of providers for the layout it detects (``_flask_contextvars``,
``_flask_merged``, ``_flask_localstack``); each builds the child's app context with the helpers here, so a fix
to how a fork is made or popped reaches every Flask at once.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Final

from .._provider import Provider
from ._appcontext import fork_app_context, fork_request_context, inherited_values_kept
from ._policy import SHARE, TEARDOWN, Policy
from ._portable_flask import PortableFlaskG

#: The g/teardown policy of captures in a Flask app; ``ctxsnap.adapters.flask`` sets its per-call override.
POLICY: Final = Policy("ctxsnap.adapters.flask")

#: What the app provider captures: the mode, the parent's app context, the values of ``g`` to copy, and
#: whether runs push (and so must pop) an app context of their own, which only teardown mode does.
AppState = tuple[int, Any, dict[str, Any], bool]


def app_state(app_context: Any) -> AppState:
    mode, app_context, values = POLICY.app_state(app_context)
    return mode, app_context, values, mode == TEARDOWN


#: ``after_this_request`` appends to this list of the request context; the worker's view refuses it.
AFTER_REQUEST: Final = ("_after_request_functions",)


def fork_for(mode: int, app_context: Any, values: dict[str, Any]) -> Any:
    fork = fork_app_context(app_context, values)
    if mode == SHARE:
        # Still a fork, never the parent's object: extensions key per-context state on the app context's
        # identity (Flask-SQLAlchemy scopes its session by it), and the worker must not get the request's.
        vars(fork)["g"] = app_context.g
    return fork


def fork_to_push(app_context: Any, values: dict[str, Any]) -> Any:
    fork = fork_app_context(app_context, values)
    state = vars(fork)
    # Flask < 2.2 counts pushes in _refcnt and runs teardown only when it drops to zero; the parent's count
    # travels with the copied attributes.
    if "_refcnt" in state:
        state["_refcnt"] = 0
    return fork


def pop_child(fork: Any, inherited: dict[str, Any], exc: BaseException | None) -> None:
    """Pop the child's own app context, which runs teardown_appcontext once, for the child.

    Its handlers read the whole ``g``; what the child inherited unchanged is not handed out by ``g.pop`` (see
    ``ctxsnap.providers._appcontext.inherited_values_kept``): it belongs to the parent, which tears it down itself.
    """
    with inherited_values_kept(fork, inherited):
        fork.pop(exc)


def worker_request_context(request_context: Any) -> Any:
    return fork_request_context(request_context, AFTER_REQUEST)


class AppProvider(PortableFlaskG, Provider):
    name = "flask.app"

    # Asked once per capture: the state's last item, read in C. Only teardown mode pushes something to pop, and
    # every other run skips the undo step; a method here cost a Python frame per capture (issue 14).
    needs_undo = itemgetter(3)  # type: ignore[assignment]

    def undo(self, state: Any, token: Any, exc: BaseException | None) -> None:
        if token is not None:
            pop_child(token, state[2], exc)


class RequestProvider(Provider):
    name = "flask.request"
