"""``CarriedCall``: a function bound to a payload, the picklable unit a process-based runner ships.

A process pool pickles the callable it is given; a carrier's values must travel with it as a payload, and the
child must run it in an empty context (a forked child inherits its parent's variables, which were not declared).
Kept apart from the carrier so that the carrier module holds only the declaration and its two sides.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Context
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ._payload import Payload

if TYPE_CHECKING:
    from ._carrier import Carrier

__all__ = ["CarriedCall", "run_carried"]

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
        return (CarriedCall, (self.carrier, self.payload, self.fn))

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", self.fn)
        return f"<ctxsnap.CarriedCall of {name!r} with {Payload(self.payload)!r}>"


def run_carried(
    carrier: Carrier, payload: str, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    """What a process-pool child runs: ``fn`` in an empty context holding the carried values."""
    return carrier.run_in(Context(), payload, fn, args, kwargs)
