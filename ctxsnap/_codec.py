"""The codec: the strict JSON subset a carried value must fit, its limits, and the per-value custom codecs.

One codec for every transport, so that a value one transport would mangle (a tuple that arrives as a list, a
datetime that arrives as a string, a live object that Celery's memory broker passes as it is) is refused
everywhere, before anything is sent, instead of arriving changed on one transport only. Messages name the
variable and what kind of value it holds, never the value: carried values are often identities.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from contextvars import ContextVar
from typing import Any, Final

from ._errors import SnapshotError
from ._payload import VARS_SECTION, PayloadError, encode_json, label, malformed_section

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "Codec",
    "UnportableValueError",
    "decode_sections",
    "encode_section",
    "unportable_reason",
    "warn_undeclared",
    "within_limit",
]

DEFAULT_MAX_BYTES: Final = 8 * 1024
DEFAULT_MAX_DEPTH: Final = 16

Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]

_LEAVES: Final = (str, bool, int, type(None))
_NOTHING: Final[frozenset[str]] = frozenset()
_PORTABLE_KINDS: Final = "str, int, finite float, bool, None, list or str-keyed dict"


class UnportableValueError(SnapshotError, TypeError):
    """A declared value (or name) cannot cross a process boundary.

    Raised at :meth:`Carrier.export` (and so at ``delay()``/``submit()``) before anything is sent, and at
    declaration for a name that looks like a credential. ``carrier`` and ``variable`` name what was refused;
    the message never shows the value.
    """

    # The keywords have defaults because Celery and pickle rebuild a raised exception as ``cls(message)``.
    def __init__(self, message: str, *, carrier: str = "", variable: str = "") -> None:
        super().__init__(message)
        self.carrier = carrier
        self.variable = variable

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args, self.__dict__)


def unportable_reason(value: Any, max_depth: int) -> str | None:
    """Why ``value`` is outside the JSON subset, without showing it; ``None`` when it is inside."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if type(item) in _LEAVES:
            continue
        if type(item) is float:
            if not math.isfinite(item):
                return "it holds NaN or infinity"
            continue
        if depth >= max_depth:
            return f"nested deeper than max_depth={max_depth}"
        children, problem = _children(item)
        if problem is not None:
            return problem
        stack.extend((child, depth + 1) for child in children)
    return None


def _children(item: Any) -> tuple[Iterable[Any], str | None]:
    kind = type(item)
    if kind is list or kind is tuple:
        return item, None
    if kind is not dict:
        return (), f"a {kind.__module__}.{kind.__qualname__} is not portable"
    for key in item:
        if type(key) is not str:
            return (), f"dict key of type {type(key).__name__}"
    return item.values(), None


# -- applying a carrier's codecs --------------------------------------------------------------------------------


def encode_section(
    carrier: str, section: str, values: dict[str, Any], codecs: dict[tuple[str, str], Codec], max_depth: int
) -> dict[str, Any]:
    """The values of ``section`` as they travel; a plain ``str``, ``int``, ``bool`` or ``None`` passes as it is."""
    encoded: dict[str, Any] = {}
    for name, value in values.items():
        codec = codecs.get((section, name)) if codecs else None
        # Most carried values are ids and names: nothing to walk, so no calls per value on every submit.
        if codec is None and type(value) in _LEAVES:
            encoded[name] = value
        else:
            encoded[name] = encode_value(carrier, section, name, value, codec, max_depth)
    return encoded


def encode_value(carrier: str, section: str, name: str, value: Any, codec: Codec | None, max_depth: int) -> Any:
    """``value`` as it travels: through its custom codec if it has one, then checked against the subset."""
    if codec is not None:
        value = _run_encode(carrier, section, name, value, codec)
    problem = unportable_reason(value, max_depth)
    if problem is not None:
        raise UnportableValueError(
            f"Cannot carry {label(section, name)}: {problem}. {_way_out(section, name, codec)}",
            carrier=carrier,
            variable=label(section, name),
        )
    return value


def _run_encode(carrier: str, section: str, name: str, value: Any, codec: Codec) -> Any:
    try:
        return codec[0](value)
    except Exception as exc:
        raise UnportableValueError(
            f"Could not encode {label(section, name)}: its codec raised {type(exc).__name__}. "
            "Fix the codec's encode function.",
            carrier=carrier,
            variable=label(section, name),
        ) from None


def _way_out(section: str, name: str, codec: Codec | None) -> str:
    if codec is not None:
        return f"Make its codec's encode return {_PORTABLE_KINDS}."
    hint = name if section == VARS_SECTION else repr(name)
    return f"Declare a codec for it (Carrier(codecs={{{hint}: (encode, decode)}})), or carry {_PORTABLE_KINDS}."


def decode_sections(
    carrier: str,
    data: dict[str, Any],
    declared: Mapping[str, AbstractSet[str]],
    codecs: dict[tuple[str, str], Codec],
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The sections of a checked payload, decoded, with the names ``declared``; the others' labels in a list."""
    decoded: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    for section, values in data.items():
        if not isinstance(values, dict):
            raise malformed_section(carrier, section)
        names = declared.get(section, _NOTHING)
        if not codecs and values.keys() <= names:
            known = values  # every name declared and nothing to decode: the common case, in one step
        else:
            known = _decode_section(carrier, section, values, names, codecs, unknown)
        if known:
            decoded[section] = known
    return decoded, unknown


def warn_undeclared(carrier: str, unknown: list[str]) -> None:
    # A rolling deploy: the sender declares more than this worker. The rest is still carried. The stack level
    # names the frame it named when the carrier warned itself (Carrier.run, or the caller of Carrier.decode).
    warnings.warn(
        f"Carrier {carrier!r} ignored names it does not declare. Deploy the same carrier declaration "
        f"everywhere to carry them: {', '.join(sorted(unknown))}.",
        RuntimeWarning,
        stacklevel=5,
    )


def _decode_section(
    carrier: str,
    section: str,
    values: dict[str, Any],
    names: AbstractSet[str],
    codecs: dict[tuple[str, str], Codec],
    unknown: list[str],
) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for name, value in values.items():
        if name not in names:
            unknown.append(label(section, name))
            continue
        codec = codecs.get((section, name))
        known[name] = value if codec is None else decode_value(carrier, section, name, value, codec)
    return known


def decode_value(carrier: str, section: str, name: str, value: Any, codec: Codec) -> Any:
    """``value`` as the worker's code sees it, through the ``decode`` half of its codec."""
    try:
        return codec[1](value)
    except Exception as exc:
        raise PayloadError(
            f"Could not decode {label(section, name)}: its codec raised {type(exc).__name__}. "
            "Fix the codec's decode function, or deploy matching codecs.",
            carrier=carrier,
        ) from None


def within_limit(carrier: str, data: dict[str, dict[str, Any]], text: str, max_bytes: int) -> str:
    """``text``, the payload of ``data``, if within ``max_bytes`` (UTF-8); else refused by its largest value."""
    size = len(text.encode())
    if size > max_bytes:
        refuse_oversize(carrier, data, size, max_bytes)
    return text


def refuse_oversize(carrier: str, data: dict[str, dict[str, Any]], size: int, max_bytes: int) -> None:
    """Refuse a payload over ``max_bytes``, naming its largest value (by size, never by content)."""
    sizes = [
        (len(encode_json(value).encode()), label(section, name))
        for section, values in data.items()
        for name, value in values.items()
    ]
    largest_size, largest = max(sizes, default=(0, "nothing"))
    raise UnportableValueError(
        f"The payload is {size} bytes, over max_bytes={max_bytes}. "
        f"Shrink the largest value, {largest} ({largest_size} bytes), or raise max_bytes.",
        carrier=carrier,
        variable=largest,
    )


def check_codec(key: object, codec: object) -> Codec:
    """``codec`` if it is a pair of callables ``(encode, decode)``."""
    if not isinstance(codec, tuple) or len(codec) != 2 or not all(callable(part) for part in codec):
        name = key.name if isinstance(key, ContextVar) else key
        raise TypeError(
            f"The codec for {name!r} must be a pair (encode, decode). "
            "Pass two functions, such as (str, uuid.UUID)."
        )
    return codec
