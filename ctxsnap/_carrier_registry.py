"""Carriers by name, so that a worker process finds the carrier a payload or a pickle names.

A carrier travels by name, never by value (its secret key and its app must not cross): a worker process finds it
by importing the module that defines it, which creates and registers it. Names are therefore unique per
process, and a carrier created anywhere but at the top level of a module cannot be found by a worker.
"""

from __future__ import annotations

import importlib
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._carrier import Carrier

__all__ = ["carrier_named", "caller_module", "register"]

# Weak: a carrier that is gone frees its name. A plain dict of references rather than a WeakValueDictionary,
# whose get() is Python code: a process-pool child looks its carrier up for every task it runs.
_carriers: Final[dict[str, weakref.ref[Carrier]]] = {}
_carriers_lock: Final = threading.Lock()


def _known(name: str) -> Carrier | None:
    reference = _carriers.get(name)
    return None if reference is None else reference()


def carrier_named(name: str, module: str) -> Carrier:
    """The carrier called ``name``, importing ``module`` (where it was defined) when it is not known yet."""
    reference = _carriers.get(name)
    carrier = None if reference is None else reference()
    if carrier is None:
        importlib.import_module(module)
        carrier = _known(name)
    if carrier is None:
        raise LookupError(
            f"No ctxsnap carrier named {name!r} in this process. "
            f"Define it at the top level of {module!r}, so that importing the module creates it."
        )
    return carrier


def register(carrier: Carrier) -> None:
    with _carriers_lock:
        existing = _known(carrier.name)
        if existing is not None:
            raise ValueError(
                f"A ctxsnap carrier named {carrier.name!r} already exists, in {existing._module!r}. "
                "Give each carrier a name of its own: workers find carriers by name."
            )
        _carriers[carrier.name] = weakref.ref(carrier)


def caller_module() -> str:
    frame = sys._getframe(2)
    name = frame.f_globals.get("__name__", "__main__")
    # Under spawn and forkserver, multiprocessing runs the parent's __main__ as __mp_main__.
    return "__main__" if name == "__mp_main__" else str(name)
