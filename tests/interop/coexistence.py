"""One coexistence scenario of ``ctxsnap.instrument()`` with a real thread instrumentation, in its own process.

``python tests/interop/coexistence.py TOOL ORDER REMOVED`` installs TOOL (``otel``: OpenTelemetry's
ThreadingInstrumentor; ``sentry``: sentry-sdk's ThreadingIntegration, no DSN) and ctxsnap in ORDER
(``tool-first`` or ``ctxsnap-first``), hands work to a plain ``threading.Thread``, a ``threading.Timer`` and a
``ThreadPoolExecutor`` from inside a Flask request, removes one of the two (REMOVED: ``tool`` or ``ctxsnap``) and
hands work off again. It prints one JSON object of what the workers saw and how the patched attributes are
chained. Both tools patch process-wide state that cannot be fully undone (Sentry has no uninstall at all), so
each scenario gets a fresh interpreter; ``test_instrument_coexistence.py`` runs them and checks the output.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask

import ctxsnap
from tests.support import TIMEOUT


class Tool:
    """The instrumentation beside ctxsnap: install, remove, set its value in the parent, read it in a worker."""

    def install(self) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError

    def set_value(self) -> Any:
        """Set the tool's value in the calling context; return what the worker should read back."""
        raise NotImplementedError

    def value(self) -> Any:
        raise NotImplementedError


class OpenTelemetry(Tool):
    def __init__(self) -> None:
        from opentelemetry.instrumentation.threading import ThreadingInstrumentor
        from opentelemetry.sdk.trace import TracerProvider

        self.instrumentor = ThreadingInstrumentor()
        self.tracer = TracerProvider().get_tracer("ctxsnap-coexistence")

    def install(self) -> None:
        self.instrumentor.instrument()

    def remove(self) -> None:
        self.instrumentor.uninstrument()

    def set_value(self) -> Any:
        from opentelemetry import context, trace

        span = self.tracer.start_span("request")
        context.attach(trace.set_span_in_context(span))
        return span.get_span_context().span_id

    def value(self) -> Any:
        from opentelemetry import trace

        span_id = trace.get_current_span().get_span_context().span_id
        return span_id or None


class Sentry(Tool):
    def install(self) -> None:
        import sentry_sdk
        from sentry_sdk.integrations.threading import ThreadingIntegration

        # No DSN: nothing is sent anywhere; the integration is set up and active all the same.
        sentry_sdk.init(integrations=[ThreadingIntegration()], default_integrations=False)

    def remove(self) -> None:
        import sentry_sdk

        # Sentry has no uninstall: its patches stay and pass through once no client has the integration.
        sentry_sdk.get_global_scope().set_client(None)

    def set_value(self) -> Any:
        import sentry_sdk

        # A fresh isolation scope per request, as Sentry's Flask integration does.
        scope = sentry_sdk.get_isolation_scope().fork()
        from sentry_sdk.scope import _isolation_scope

        _isolation_scope.set(scope)
        sentry_sdk.set_tag("request", "r-42")
        return "r-42"

    def value(self) -> Any:
        import sentry_sdk

        return sentry_sdk.get_isolation_scope()._tags.get("request")


def chain(attribute: Any) -> list[str]:
    """Who wraps whom on a patched attribute, outermost first."""
    import wrapt

    names = []
    for _ in range(20):
        if isinstance(attribute, wrapt.BaseObjectProxy):
            names.append("otel")  # checked first: a wrapt proxy forwards every other attribute to what it wraps
        elif Path(attribute.__code__.co_filename).parent.name == "instrument":  # ctxsnap/adapters/instrument/
            names.append("ctxsnap")
        elif getattr(attribute, "__code__", None) is not None and "sentry" in attribute.__code__.co_name:
            names.append("sentry")
        else:
            names.append("original")
            break
        attribute = attribute.__wrapped__
    return names


def hand_offs(app: flask.Flask, tool: Tool) -> dict[str, Any]:
    """What a plain Thread, Timer, pool task and ctxsnap.Thread see when started inside a request."""

    def seen() -> dict[str, Any]:
        return {
            "tool": tool.value() == expected[0],
            "path": flask.request.path if flask.has_request_context() else None,
            "user": flask.g.get("user") if flask.has_app_context() else None,
            "private_g": flask.has_app_context() and flask.g._get_current_object() is not parent_g[0],
        }

    expected: list[Any] = []
    parent_g: list[Any] = []
    results: dict[str, Any] = {}
    with app.test_request_context("/items/7"):
        expected.append(tool.set_value())
        flask.g.user = "alice"
        parent_g.append(flask.g._get_current_object())
        makers: list[tuple[str, Callable[[list[Any]], threading.Thread]]] = [
            ("thread", lambda box: threading.Thread(target=lambda: box.append(seen()))),
            ("timer", lambda box: threading.Timer(0, lambda: box.append(seen()))),
            ("ctxsnap.Thread", lambda box: ctxsnap.Thread(target=lambda: box.append(seen()))),
        ]
        for name, make in makers:
            box: list[Any] = []
            thread = make(box)
            thread.start()
            thread.join(TIMEOUT)
            results[name] = box[0] if box else "the thread failed"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            results["submit"] = pool.submit(seen).result(TIMEOUT)
    return results


def main(tool_name: str, order: str, removed: str) -> dict[str, Any]:
    tool: Tool = OpenTelemetry() if tool_name == "otel" else Sentry()
    app = flask.Flask("coexistence")
    steps = [tool.install, ctxsnap.instrument] if order == "tool-first" else [ctxsnap.instrument, tool.install]
    for step in steps:
        step()
    ctxsnap.instrument()  # again, after the tool: still one ctxsnap layer
    report: dict[str, Any] = {
        "chains": {
            "Thread.start": chain(vars(threading.Thread)["start"]),
            "Timer.start": chain(threading.Timer.start),
            "submit": chain(vars(concurrent.futures.ThreadPoolExecutor)["submit"]),
        },
        "both": hand_offs(app, tool),
    }
    if removed == "tool":
        tool.remove()
    else:
        ctxsnap.uninstrument()
        report["instrumentation"] = list(ctxsnap.instrumentation())
    report["chains_after"] = {
        "Thread.start": chain(vars(threading.Thread)["start"]),
        "submit": chain(vars(concurrent.futures.ThreadPoolExecutor)["submit"]),
    }
    report["after"] = hand_offs(app, tool)
    return report


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
