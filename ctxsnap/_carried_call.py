"""``CarriedCall`` and ``run_carried``: a function bound to a payload, the picklable unit a process pool ships.

A process pool pickles the callable it is given; a carrier's values must travel with it as a payload, and the
child must run it in an empty context (a forked child inherits its parent's variables, which were not declared).
Kept apart from the carrier so that the carrier module holds only the declaration and its two sides.

Both travel lean, because a pool pays for the pickle on every task, twice: the carrier as its name and module
(two short ``str``), the payload as a plain ``str``, one module-level function to call. Each further global in a
pickle is an import lookup on both sides, and they were most of what a carried task added to a pool round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Context
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ._carrier_registry import carrier_named
from ._payload import Payload

if TYPE_CHECKING:
    from ._carrier import Carrier

__all__ = ["CarriedCall", "carried_call", "run_carried", "submission"]

P = ParamSpec("P")
R = TypeVar("R")


class CarriedCall(Generic[P, R]):
    """``fn`` with a payload, as :meth:`Carrier.wrap` returns it: picklable when ``fn`` is.

    A call runs in a new, empty context (a forked child inherits its parent's variables, which were not
    declared) holding the carried values, with ``g`` in the carrier's app context.
    """

    __slots__ = ("carrier", "fn", "payload")

    def __init__(self, carrier: Carrier, payload: str, fn: Callable[P, R]) -> None:
        self.carrier = carrier
        self.payload = str(payload)
        self.fn = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.carrier.run_in(Context(), self.payload, self.fn, args, kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (carried_call, (self.carrier.name, self.carrier._module, self.payload, self.fn))

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", self.fn)
        return f"<ctxsnap.CarriedCall of {name!r} with {Payload(self.payload)!r}>"


def carried_call(carrier: str, module: str, payload: str, fn: Callable[..., R]) -> CarriedCall[..., R]:
    """A :class:`CarriedCall` unpickled in a worker: the carrier found by name, importing its module if needed."""
    return CarriedCall(carrier_named(carrier, module), payload, fn)


def submission(carrier: Carrier, fn: Callable[..., Any]) -> tuple[Any, ...]:
    """What a pool's ``submit`` passes to :func:`run_carried` ahead of the task's own arguments; exports now."""
    return (carrier.name, carrier._module, str(carrier.export()), fn)


def run_carried(carrier: str, module: str, payload: str, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """What a process-pool child runs: ``fn`` in an empty context holding the carried values."""
    return carrier_named(carrier, module).run_in(Context(), payload, fn, args, kwargs)
