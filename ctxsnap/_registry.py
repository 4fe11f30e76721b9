"""The provider registry: the active providers, and the framework providers and plug-ins waiting to load.

The registry is a copy-on-write tuple behind a lock: registering is rare, reading happens on every capture, so
readers take the current tuple without locking. Providers arrive three ways:

* built in: the contextvars provider, registered when ctxsnap is imported;
* the framework providers (``ctxsnap.providers.flask``, ``ctxsnap.providers.quart``), loaded the first time a
  capture happens while their framework is in ``sys.modules``, so an app that never imports
  ``ctxsnap.adapters.flask`` still gets Flask semantics;
* third-party packages, through the ``ctxsnap.providers`` entry-point group, imported at ``import ctxsnap``
  and registered at the first capture (a capture, perhaps on an event loop, never reads package metadata);
  finding and loading them is :mod:`ctxsnap._plugins`' job.

Every provider is checked (:mod:`ctxsnap._provider_checks`) before the registry changes.

Capture planning reads it through its public attributes and methods only (``version``, ``providers``,
``released_vars``, ``settled``, ``modules_seen``, ``load_pending``): what is private here may change freely.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final

from ._errors import ProviderError
from ._plugins import ENTRY_POINT_GROUP, find_plugins
from ._provider_checks import validate

__all__ = ["BASE_PROVIDER_NAME", "ENTRY_POINT_GROUP", "Registry", "registry"]

#: Built-in providers that load themselves as soon as their framework is in use: a table of module names, so the
#: core names the modules but never imports a framework (each module is imported only once its framework
#: already is). Not the ``ctxsnap.providers`` entry-point group that third-party providers use: entry points are
#: loaded at ``import ctxsnap``, which would import Flask and Quart into every process that has them installed.
_FRAMEWORK_PROVIDERS: Final = (("flask", "ctxsnap.providers.flask"), ("quart", "ctxsnap.providers.quart"))
#: The contextvars provider is the base layer of every snapshot (each run enters a copy of its context), so it
#: can be left out of one capture with ``exclude=["contextvars"]`` but never unregistered or replaced.
BASE_PROVIDER_NAME: Final = "contextvars"


class Registry:
    """The registered providers, plus the framework providers and plug-ins still waiting to be loaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.providers: tuple[Any, ...] = ()
        #: Bumped on every change so that cached capture plans know when they are stale.
        self.version = 0
        self._pending_frameworks = list(_FRAMEWORK_PROVIDERS)
        #: Third-party providers imported by ``discover_plugins`` (at ``import ctxsnap``), each with its entry
        #: point's name, registered at the first capture: a provider registered by hand before then wins.
        self._plugins: list[tuple[str, Any]] = []
        self._plugin_lock = threading.Lock()
        #: Rebuilds the error of a plug-in that failed to load; raised by every capture until it is fixed.
        self._plugin_failure: Callable[[], ProviderError] | None = None
        #: ``len(sys.modules)`` when the pending frameworks were last looked for. Capture is a hot path: while
        #: no module was imported since, no framework can have appeared, and one ``len`` call says so.
        self.modules_seen = -1
        #: True once every framework provider module and the entry points are loaded: nothing is left to look for.
        self.settled = False
        #: The owned variables of providers that were unregistered or replaced and that no registered provider
        #: owns now: every capture leaves them out, as it leaves out those of an excluded provider.
        self.released_vars: frozenset[ContextVar[Any]] = frozenset()
        self._ever_owned: set[ContextVar[Any]] = set()

    def register(self, provider: Any, *, replace: bool = False) -> None:
        if not isinstance(replace, bool):
            raise TypeError(f"register_provider(replace=...) got {replace!r}. Pass True or False.")
        validate(provider)
        with self._lock:
            names = [p.name for p in self.providers]
            if provider.name in names:
                if provider.name == BASE_PROVIDER_NAME:
                    raise ValueError(
                        "The built-in 'contextvars' provider cannot be replaced. Register your provider under a "
                        "name of its own: every snapshot runs in a copy of its context."
                    )
                if not replace:
                    raise ValueError(
                        f"A provider named {provider.name!r} is already registered. Unregister it first with "
                        f"ctxsnap.unregister_provider({provider.name!r}), or pass replace=True."
                    )
                current = list(self.providers)
                current[names.index(provider.name)] = provider
                self.providers = tuple(current)
            else:
                self.providers = (*self.providers, provider)
            self._update_released_vars(provider)
            # Readers take ``version`` before ``providers`` (see ``_plan_for``), so the version moves last: a
            # reader that sees the old version may hold the new providers, and only rebuilds its plan once more.
            self.version += 1

    def unregister(self, name: str) -> Any:
        if not isinstance(name, str):
            raise TypeError(
                f"unregister_provider() got {type(name).__name__}, not a provider name. Pass the name as a str."
            )
        if name == BASE_PROVIDER_NAME:
            raise ValueError(
                "The built-in 'contextvars' provider cannot be unregistered. To leave ContextVars out of one "
                "capture, use ctxsnap.capture(exclude=['contextvars'])."
            )
        with self._lock:
            for provider in self.providers:
                if provider.name == name:
                    self.providers = tuple(p for p in self.providers if p is not provider)
                    self._update_released_vars()
                    self.version += 1
                    return provider
            known = ", ".join(repr(p.name) for p in self.providers) or "none"
        raise LookupError(f"No provider named {name!r} is registered. Pass one of the registered names: {known}.")

    def _update_released_vars(self, added: Any = None) -> None:
        # Called with the lock held, before ``version`` moves: a plan built from the new version sees these.
        if added is not None:
            self._ever_owned.update(getattr(added, "owned_vars", ()))
        owned = {var for p in self.providers for var in getattr(p, "owned_vars", ())}
        self.released_vars = frozenset(self._ever_owned - owned)

    def load_pending(self) -> None:
        """Register the plug-ins discovered at import and load framework providers that became relevant.

        This runs on the capturing thread, possibly on an event loop, so it reads no file: package metadata was
        read, and plug-ins imported, by :meth:`discover_plugins` at ``import ctxsnap``. The one import left is
        that of a framework's provider module, a module of ctxsnap itself, once, when its framework was imported
        after ctxsnap. Imports happen outside the lock: a provider module registers its providers while it is
        being imported, and holding our lock across an import could deadlock against a thread importing that
        module directly.
        """
        if self._plugin_failure is not None:
            raise self._plugin_failure()
        if self._plugins:
            self._register_plugins()
        if not self._pending_frameworks or len(sys.modules) == self.modules_seen:
            self.settled = not self._pending_frameworks and not self._plugins
            return
        seen = len(sys.modules)
        for framework, module in list(self._pending_frameworks):
            # None in sys.modules is how an import is blocked on purpose: that framework is not in use.
            if sys.modules.get(framework) is not None:
                importlib.import_module(module)
                with self._lock:
                    if (framework, module) in self._pending_frameworks:
                        self._pending_frameworks.remove((framework, module))
        # Recorded only once everything loaded: when a provider module fails to load, the next capture must try
        # again (and fail again) rather than go ahead without its context.
        self.modules_seen = seen
        self.settled = not self._pending_frameworks and not self._plugins

    def _register_plugins(self) -> None:
        # One thread registers while the others wait: a capture must not go ahead without a plug-in that another
        # thread is registering at that moment.
        with self._plugin_lock:
            for name, provider in self._plugins:
                if not any(p.name == name for p in self.providers):  # registered by hand first: that one wins
                    self.register(provider)
            self._plugins = []

    def discover_plugins(self) -> None:
        """Import the providers of the ``ctxsnap.providers`` entry points; called once, by ``import ctxsnap``.

        Not at the first capture: that read package metadata on the capturing thread and stalled its event loop
        (issue 11). Registering them waits for the first capture (see :mod:`ctxsnap._plugins`).
        """
        self._plugins, self._plugin_failure = find_plugins()


registry: Final = Registry()
