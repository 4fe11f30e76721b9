"""The provider plug-in point: what a provider is, and the functions that register one.

A *provider* knows one kind of context (contextvars, Flask's app context, Quart's websocket context, a tracing
library's span...). It captures that context in the parent and installs it in the child. Providers never know
where the child runs; that is the adapters' business. The registry that holds the active ones, and loads the
framework providers and third-party plug-ins, is ``ctxsnap._registry``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, Final

from ._plugins import ENTRY_POINT_GROUP
from ._registry import registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Provider",
    "has_own_undo",
    "known_name",
    "needs_undo_check",
    "providers",
    "register_provider",
    "select",
    "unregister_provider",
]

#: The names those modules register (the shared API contract). ``include``/``exclude`` accept them even while
#: the framework is not in use, so ``exclude=["quart"]`` works in a Flask-only app, while a misspelt
#: ``"flask.requets"`` is still refused instead of silently selecting nothing.
_FRAMEWORK_PROVIDER_NAMES: Final = ("flask.app", "flask.request", "quart.app", "quart.request", "quart.websocket")


class Provider(abc.ABC):
    """One kind of context that a snapshot carries from the parent to the child.

    Subclass it (or write any object with the same attributes; the registry checks them) and register an
    instance with :func:`ctxsnap.register_provider`.

    * ``capture()`` runs in the parent when a snapshot is taken. It returns the state to carry, or ``None``
      when there is nothing to carry (for example, no request is active); a provider that returns ``None`` is
      not called in the child.
    * ``apply(state)`` runs in the child for every run of the snapshot, inside a fresh copy of the captured
      ``contextvars.Context``; whatever it sets in a ContextVar disappears with that copy, so a provider that
      only sets ContextVars needs no undo. Its return value is handed to ``undo``. An ``apply`` that raises
      must leave nothing behind itself: like ``__exit__`` after a failed ``__enter__``, ``undo`` is called only
      for providers whose ``apply`` returned (in reverse order), never for the one that failed.
    * ``undo(state, token, exc)`` runs after the work, also when the work or a later provider raised. ``exc``
      is the exception the work raised, or ``None``.
    * ``needs_undo(state)`` (optional) is asked once per capture, for providers with an ``undo``: return
      ``False`` when this state's ``apply`` leaves nothing to undo, and every run of the snapshot skips the undo
      step. Without it, ``undo`` always runs.
    * ``owned_vars`` names the ContextVars the provider installs itself. When the provider is excluded from a
      capture, those variables are removed from the carried context too, so that excluding ``"flask"`` really
      leaves Flask's context behind. They stay removed after the provider is unregistered, or replaced by one
      that does not name them: a variable whose provider installs a private copy (Flask's and Quart's app
      context) must never fall back to travelling as the parent's own object.
    * ``portable``, ``export(names)`` and ``restore(app, values)`` (optional) let a :class:`ctxsnap.Carrier`
      carry a declared part of this context to another process. ``portable`` names the payload section
      (``"g"`` for Flask's and Quart's ``g``); ``export`` returns the declared ``names`` present in the current
      context as a dict, or ``None`` when this provider's context is not active; ``restore`` returns a context
      manager that installs ``values`` in ``app`` for the duration of a task, or ``None`` when ``app`` is not
      this provider's kind of app.
    """

    #: A unique dotted name, such as ``"flask.request"``; ``include``/``exclude`` also accept its prefix.
    name: str = ""
    owned_vars: tuple[ContextVar[Any], ...] = ()
    #: The carrier payload section this provider exports and restores; empty for none (see the hooks above).
    portable: str = ""

    @abc.abstractmethod
    def capture(self) -> Any:
        """Return the state to carry to the child, or ``None`` for nothing."""

    @abc.abstractmethod
    def apply(self, state: Any) -> Any:
        """Install ``state`` in the child; return a token for :meth:`undo`."""

    def needs_undo(self, state: Any) -> bool:
        """Whether runs of a snapshot holding ``state`` need :meth:`undo`. The default: always."""
        return True

    def undo(self, state: Any, token: Any, exc: BaseException | None) -> None:  # noqa: B027 - optional hook
        """Remove what :meth:`apply` installed outside ContextVars. The default does nothing."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def needs_undo_check(provider: Any) -> Callable[[Any], bool] | None:
    """The provider's ``needs_undo``, or ``None`` when it has none (undo is then always needed)."""
    check = getattr(provider, "needs_undo", None)
    if check is None or getattr(check, "__func__", check) is Provider.needs_undo:
        return None
    if not callable(check):
        raise TypeError(
            f"Provider {provider.name!r} has a 'needs_undo' attribute that is not callable. Make it a method, or "
            "remove it."
        )
    return check  # type: ignore[no-any-return]


def register_provider(provider: Provider, *, replace: bool = False) -> None:
    """Add ``provider`` to the end of the active providers. Thread-safe.

    Raises :class:`TypeError` if it lacks ``name``/``capture``/``apply`` and :class:`ValueError` if its name is
    taken (unless ``replace=True``, which swaps it in at the old position).
    """
    registry.register(provider, replace=replace)


def unregister_provider(name: str) -> Provider:
    """Remove the provider called ``name`` and return it. Raises :class:`LookupError` if there is none."""
    removed: Provider = registry.unregister(name)
    return removed


def providers() -> tuple[Provider, ...]:
    """The active providers, in the order they capture and apply."""
    registry.load_pending()
    return registry.providers


def has_own_undo(provider: Any) -> bool:
    """Whether ``provider`` overrides :meth:`Provider.undo` (on its class or as an instance attribute)."""
    # Looked up on the instance, not its type: a duck-typed provider may carry undo as an instance attribute.
    undo = getattr(provider, "undo", None)
    return undo is not None and getattr(undo, "__func__", undo) is not Provider.undo


def known_name(name: str) -> bool:
    """Whether ``name`` selects something: a registered provider, a prefix of one, or a framework provider.

    Framework names are always known, so ``exclude=["quart"]`` works in a Flask-only app.
    """
    return any(_selects(name, known) for known in _FRAMEWORK_PROVIDER_NAMES) or any(
        _selects(name, p.name) for p in registry.providers
    )


def _selects(selector: str, provider_name: str) -> bool:
    return provider_name == selector or provider_name.startswith(selector + ".")


def select(selectors: Iterable[str], provider_name: str) -> bool:
    """Whether any of ``selectors`` (names or dotted prefixes) selects the provider called ``provider_name``."""
    return any(_selects(s, provider_name) for s in selectors)
