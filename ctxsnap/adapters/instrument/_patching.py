"""Putting a wrapper on an attribute and taking it out again, next to other tools that do the same.

OpenTelemetry's and Sentry's threading instrumentations wrap the same attributes, in either order, and wrap
ctxsnap's wrapper as often as ctxsnap wraps theirs (``tests/interop/test_instrument_coexistence.py`` runs them
together). So ctxsnap recognises its own wrapper anywhere along an attribute's ``__wrapped__`` chain, never
stacks a second layer, and only ever removes a wrapper that is still on top: one under another tool's wrapper
stays in that chain, inert, until it is on top again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any

from ._state import ABSENT

Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True)
class Target:
    """One attribute a hand-off kind patches, and how to wrap what is there."""

    kind: str
    owner: type | ModuleType
    name: str
    label: str
    wrap: Wrap


@dataclass
class Patch:
    """One attribute ctxsnap replaced: what was there before, and the wrapper it put there."""

    target: Target
    original: Any  # ABSENT when the class only inherited the attribute (ThreadPoolExecutor.map)
    wrapper: Any

    def on_top(self) -> bool:
        return current(self.target) is self.wrapper

    def restore(self) -> None:
        owner, name = self.target.owner, self.target.name
        if self.original is ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, self.original)


#: Every wrapper ctxsnap put in place and has not taken out yet, by target label. One that another tool wrapped
#: on top of stays here after uninstrument() (inert), so that a later call can take it out once it is on top.
patches: dict[str, Patch] = {}


def current(target: Target) -> Any:
    """The attribute as the owner itself defines it; ABSENT when it only inherits it."""
    return vars(target.owner).get(target.name, ABSENT)


def is_live(target: Target) -> bool:
    """Whether ctxsnap's wrapper is reachable from the attribute: on top, or under another tool's wrapper."""
    value = current(target)
    return value is not ABSENT and _ours_in_chain(value, target)


def _ours_in_chain(value: object, target: Target) -> bool:
    # Recognised by code object, never by an attribute: other tools' functools.wraps copies a wrapper's __dict__
    # onto their own wrapper, and a wrapt proxy forwards attribute reads to what it wraps.
    code = _wrapper_code(target.wrap)
    for _ in range(64):  # a cycle of __wrapped__ must not hang instrument()
        if value is None:
            return False
        if getattr(value, "__code__", None) is code:
            return True
        value = getattr(value, "__wrapped__", None)
    return False


@functools.cache
def _wrapper_code(wrap: Wrap) -> Any:
    return getattr(wrap(print), "__code__", None)


def _callable(target: Target, original: Any) -> Callable[..., Any]:
    if isinstance(target.owner, type) and type(original) is not FunctionType:
        # A wrapt FunctionWrapper (OpenTelemetry's) must be bound to the instance, as attribute access would; it
        # passes isinstance(..., FunctionType), as a proxy reports the class of what it wraps.
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return original.__get__(self, type(self))(*args, **kwargs)

        return call
    return original  # type: ignore[no-any-return]


def install(target: Target) -> Patch | None:
    """Wrap the attribute; None when ctxsnap's wrapper is live there already (never a second layer)."""
    if is_live(target):
        return None
    defined = current(target)
    original = getattr(target.owner, target.name) if defined is ABSENT else defined
    wrapper = target.wrap(_callable(target, original))
    functools.update_wrapper(wrapper, original)
    setattr(target.owner, target.name, wrapper)
    return Patch(target, defined, wrapper)


def release(kinds: frozenset[str]) -> None:
    """Take out every wrapper of these kinds that is still on top; leave the others inert."""
    for label, patch in list(patches.items()):
        if patch.target.kind not in kinds:
            continue
        if patch.on_top():
            patch.restore()
            del patches[label]
        elif not is_live(patch.target):
            del patches[label]  # replaced wholesale by someone: nothing left to restore or to reactivate
