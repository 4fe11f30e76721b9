"""The active providers, in the order they capture and apply; also the package of the built-in providers.

Called, ``ctxsnap.providers()`` returns the registered providers (the built-in ones of a framework in use are
loaded first). As a package it holds one module per kind of context a snapshot carries:
``ctxsnap.providers.flask`` (Flask's app context with a private ``g``, and the request context) and
``ctxsnap.providers.quart`` (Quart's app, request and websocket contexts), which load by themselves the first
time a snapshot is captured while their framework is imported. They share one ``g``/teardown policy
(``_policy``) and one way to fork an app context (``_appcontext``). The places where work runs are the
adapters' business (``ctxsnap.adapters``). Third-party providers register through the ``ctxsnap.providers``
entry-point group or :func:`ctxsnap.register_provider`.
"""

from __future__ import annotations

import sys
import types

from .._provider import Provider
from .._provider import providers as _providers

__all__: list[str] = []


class _ProvidersModule(types.ModuleType):
    """This package, callable as :func:`ctxsnap.providers`.

    ``ctxsnap.providers()`` was a function of the public API before this package existed, and importing a
    submodule (``import ctxsnap.providers.flask``, which the core does itself as soon as Flask is in use) sets
    the attribute ``ctxsnap.providers`` to the package, which would shadow the function. Making the package
    callable keeps both working, whatever was imported first; ``ctxsnap/__init__.py`` imports this package, so
    ``ctxsnap.providers`` is this same object from the start.
    """

    def __call__(self) -> tuple[Provider, ...]:
        return _providers()

    __call__.__doc__ = _providers.__doc__


sys.modules[__name__].__class__ = _ProvidersModule
