"""``python -m ctxsnap``: a short diagnostic to paste into a bug report.

It imports the frameworks it finds (so that their providers load) and prints versions and the active
providers; it prints no context values.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys

_FRAMEWORKS = ("flask", "werkzeug", "quart", "hypercorn", "anyio", "trio")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def report() -> str:
    """The whole report, one fact a line; a failing section says so on its own line and the rest still prints."""
    lines = [
        f"ctxsnap {_version('ctxsnap') or '(not installed; running from source)'}",
        f"python {platform.python_version()} ({platform.python_implementation()}, {sys.platform})",
        _implementation(),
        _thread_inheritance(),
    ]
    for name in _FRAMEWORKS:
        lines.extend(_framework(name))
    # Before the providers: their line (with any broken plug-in) stays the last one of the report.
    try:
        lines.extend(_instrumentation())
    except Exception as exc:
        lines.append(f"instrumentation state unavailable: {type(exc).__name__}: {exc}")
    lines.extend(_providers())
    return "\n".join(lines)


def _implementation() -> str:
    # Which hot path answers a bug report's timings and tracebacks: the C accelerator or the Python one.
    from ctxsnap import _compiled

    if _compiled.speedups is not None:
        return "implementation: compiled (ctxsnap._speedups; CTXSNAP_PURE_PYTHON=1 selects the Python one)"
    if os.environ.get("CTXSNAP_PURE_PYTHON", "") not in ("", "0"):
        return "implementation: python (CTXSNAP_PURE_PYTHON is set)"
    return "implementation: python (the C accelerator is not built here, or does not import)"


def _thread_inheritance() -> str:
    inherit = getattr(sys.flags, "thread_inherit_context", None)
    if inherit is None:
        return "sys.flags.thread_inherit_context: absent (threads start with an empty context)"
    state = "on: new threads start in a copy of the caller's context" if inherit else "off"
    return f"sys.flags.thread_inherit_context: {state}"


def _framework(name: str) -> list[str]:
    version = _version(name)
    lines = [f"{name}: {version or 'not installed'}"]
    if version is not None and name in ("flask", "quart"):
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken install is exactly what this report is for
            lines.append(f"  import {name} failed: {type(exc).__name__}: {exc}")
    return lines


def _providers() -> list[str]:
    lines = []
    if os.environ.get("CTXSNAP_DISABLE_ENTRY_POINTS"):
        lines.append("third-party providers: not loaded (CTXSNAP_DISABLE_ENTRY_POINTS is set)")
    try:
        import ctxsnap

        names = ", ".join(p.name for p in ctxsnap.providers())
        lines.append(f"active providers: {names}")
    except Exception as exc:
        lines.append(f"loading providers failed: {type(exc).__name__}: {exc}")
    return lines


def _instrumentation() -> list[str]:
    # In this process instrumentation is on only if something imported here turned it on; the lines say how an
    # application turns it on, which is what a user reading this report usually needs.
    from ctxsnap.adapters.instrument import instrumentation

    patched = instrumentation()
    state = ["instrumentation: on for " + ", ".join(patched)] if patched else ["instrumentation: off"]
    return [
        *state,
        "  turn it on with ctxsnap.instrument() (or app.config['CTXSNAP_INSTRUMENT'] = True with the Flask or "
        "Quart extension); ctxsnap.instrumentation() lists what is patched; see docs/instrument.md",
    ]


if __name__ == "__main__":
    print(report())
