"""Third-party providers: finding and loading those of the ``ctxsnap.providers`` entry-point group.

Reading entry points scans every installed distribution's metadata (tens of milliseconds of file I/O), and
importing a plug-in reads its modules: at ``import ctxsnap`` that is expected, while on the first capture it
stalled the event loop that captured (issue 11). So ``import ctxsnap`` calls :func:`find_plugins` once, and the
registry registers what it found at the first capture. A plug-in that fails to load does not fail the import:
what is returned instead is a factory of the ``ProviderError`` that every capture raises until it is fixed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Final

from ._errors import ProviderError
from ._provider_checks import validate

__all__ = ["ENTRY_POINT_GROUP", "find_plugins"]

ENTRY_POINT_GROUP: Final = "ctxsnap.providers"


def find_plugins() -> tuple[list[tuple[str, Any]], Callable[[], ProviderError] | None]:
    """The providers of the entry points, each with its entry point's name; or none, and the failure to raise.

    ``CTXSNAP_DISABLE_ENTRY_POINTS`` set to anything non-empty loads none.
    """
    if os.environ.get("CTXSNAP_DISABLE_ENTRY_POINTS"):
        return [], None
    from importlib.metadata import entry_points

    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # unreadable metadata of some installed package: fail captures, not the import
        return [], functools.partial(_discovery_failure, exc)
    plugins = []
    for entry_point in found:
        try:
            plugins.append((entry_point.name, _load_entry_point(entry_point)))
        except Exception as exc:
            return [], functools.partial(_load_failure, entry_point, exc)
    return plugins, None


def _load_entry_point(entry_point: Any) -> Any:
    loaded = entry_point.load()
    # The entry point may name a Provider subclass or a factory (called with no arguments), or an instance.
    provider = loaded() if isinstance(loaded, type) or not hasattr(loaded, "capture") else loaded
    validate(provider)
    if provider.name != entry_point.name:
        raise ValueError(
            f"Entry point {entry_point.name!r} loads a provider named {provider.name!r}. Give the two the "
            "same name."
        )
    return provider


def _discovery_failure(cause: Exception) -> ProviderError:
    error = ProviderError(
        ENTRY_POINT_GROUP,
        "load",
        cause,
        hint="Reading the entry points of the installed packages failed: repair or reinstall the package whose "
        "metadata is broken, or set CTXSNAP_DISABLE_ENTRY_POINTS=1 to load no third-party provider.",
    )
    error.__cause__ = cause
    return error


def _load_failure(entry_point: Any, cause: Exception) -> ProviderError:
    error = ProviderError(
        entry_point.name,
        "load",
        cause,
        hint=f"It comes from the entry point {entry_point.name} = {entry_point.value} in the group "
        f"{ENTRY_POINT_GROUP!r}: fix or uninstall the package that declares it, or set "
        "CTXSNAP_DISABLE_ENTRY_POINTS=1 to load no third-party provider.",
    )
    error.__cause__ = cause
    return error
