"""Reusing a carrier's last payload while nothing in it changed: JSON is most of what a carried task costs.

A request that hands several tasks to a process pool exports the same values for each, and the pool's worker
decodes the same payload for each; encoding and decoding the JSON envelope were most of what a carried task added
to a pool round trip (issue 12 sets that at most 1.2x a plain one). So a carrier keeps the last payload it
exported and the last one it decoded, and reuses them when nothing changed.

A reused result is exactly what recomputing would give. Only payloads made of immutable leaves (``str``,
``int``, ``bool``, ``None``) are kept: a task cannot change them, and a value compared by identity cannot have
changed inside. The parent compares the current values with the kept ones by identity (setting a ContextVar,
even to an equal value, makes a new entry); the worker compares the payload's text, which was checked in full
(format, version, carrier, signature) when it was first decoded. A carrier with codecs (user code) never
reuses, nor does a payload with names the worker does not declare (its warning is given every time).
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Final

__all__ = ["reusable", "same_objects"]

_IMMUTABLE: Final = frozenset({str, int, bool, type(None)})


def same_objects(values: dict[str, Any], kept: dict[str, Any]) -> bool:
    """Whether ``values`` holds the very objects ``kept`` holds, under the same names, in the same order."""
    if len(values) != len(kept):
        return False
    for (name, value), (kept_name, kept_value) in zip(values.items(), kept.items(), strict=True):
        if value is not kept_value or name != kept_name:
            return False
    return True


def reusable(*sections: dict[str, Any]) -> bool:
    """Whether every value in ``sections`` is an immutable leaf, so that a payload of them may be reused."""
    # All of it in C: this is paid at every export and decode that reuses nothing.
    return _IMMUTABLE.issuperset(map(type, chain.from_iterable(map(dict.values, sections))))
