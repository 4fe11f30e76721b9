"""Refusing, at registration, what cannot serve as a provider.

A provider is duck-typed (subclassing :class:`ctxsnap.Provider` is optional), so a wrong object would otherwise
fail much later, in the middle of a capture or in a worker thread, far from the line that registered it. The
registry runs these checks before it changes anything, for providers registered by hand and for those that
third-party entry points load, and each error names the attribute that is wrong.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Final

__all__ = ["validate"]

_NAME_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")


def validate(provider: object) -> None:
    """Refuse what cannot serve as a provider, naming the attribute that is wrong."""
    if isinstance(provider, type):
        raise TypeError(
            f"register_provider() got the class {provider.__qualname__}, not an instance. Create one first: "
            f"register_provider({provider.__qualname__}())."
        )
    name = getattr(provider, "name", None)
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise TypeError(
            f"Provider {type(provider).__qualname__} has no valid name: got {name!r}. Set 'name' to "
            "dot-separated identifiers, such as 'mylib.span'."
        )
    _validate_methods(provider, name)
    owned = getattr(provider, "owned_vars", ())
    if not isinstance(owned, tuple) or not all(isinstance(v, ContextVar) for v in owned):
        raise TypeError(
            f"Provider {name!r} has an invalid 'owned_vars': {owned!r}. Make it a tuple of ContextVar objects."
        )


def _validate_methods(provider: object, name: str) -> None:
    missing = [m for m in ("capture", "apply") if not callable(getattr(provider, m, None))]
    if missing:
        raise TypeError(
            f"Provider {name!r} lacks the method(s) {', '.join(missing)}. Subclass ctxsnap.Provider and "
            "implement capture() and apply(state)."
        )
    for optional in ("undo", "needs_undo"):
        method = getattr(provider, optional, None)
        if method is not None and not callable(method):
            raise TypeError(
                f"Provider {name!r} has an {optional!r} attribute that is not callable. Make it a method, or "
                "remove it."
            )
