"""The checks on what a ``Carrier(...)`` call declares, each raising at declaration with the way out.

A carrier is declared once, at import time, in every process; a mistake found there (a name used twice, a
credential-looking name, a codec for something not carried) fails at start-up on the developer's machine, not
as a dropped value in a worker in production. Each check returns the argument in the form the carrier keeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Final

from ._codec import Codec, UnportableValueError, check_codec
from ._payload import G_SECTION, VARS_SECTION

__all__ = [
    "carried_attributes",
    "carried_variables",
    "checked_codecs",
    "checked_limit",
    "checked_name",
    "checked_secret_key",
    "refuse_credentials",
]

#: Names that look like credentials. A carried value travels in clear text through a broker and its logs, so
#: such a name must be allowed by name (``allow_sensitive=``), never by accident.
_SENSITIVE: Final = re.compile(
    r"authori[sz]ation|cookie|passw(or)?d|secret|token|session|api[\W_]?key", re.IGNORECASE
)
_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def checked_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TypeError(
            "Carrier() needs a short name such as 'myapp'. Use 1 to 100 letters, digits, '.', '_', ':' or '-'."
        )
    return name


def carried_variables(carrier: str, variables: object) -> dict[str, ContextVar[Any]]:
    """The ContextVars by the names they travel under, which must differ."""
    given = tuple(_iterate("vars", variables))
    for var in given:
        if not isinstance(var, ContextVar):
            raise TypeError(
                f"Carrier(vars=...) takes ContextVar objects, got {type(var).__name__}. "
                "Pass the variables themselves, such as vars=[request_id]."
            )
    by_name: dict[str, ContextVar[Any]] = {}
    for var in given:
        if by_name.setdefault(var.name, var) is not var:
            raise ValueError(
                f"Carrier {carrier!r} has two ContextVars named {var.name!r}. "
                "Give each a name of its own: payloads carry variables by name."
            )
    return by_name


def carried_attributes(attributes: object) -> tuple[str, ...]:
    given = tuple(_iterate("g", attributes))
    for attribute in given:
        if not isinstance(attribute, str) or not attribute.isidentifier():
            shown = repr(attribute)[:40] if isinstance(attribute, str) else type(attribute).__name__
            raise TypeError(
                f"Carrier(g=...) takes attribute names, got {shown}. Pass identifiers such as g=['user_id']."
            )
    return given


def refuse_credentials(carrier: str, variables: Iterable[str], attributes: Iterable[str], allowed: object) -> None:
    """Refuse a carried name that looks like a credential, unless ``allowed`` (``allow_sensitive=``) lists it."""
    exempt = _allowed_names(allowed)
    named = [*(("ContextVar", name) for name in variables), *(("g attribute", name) for name in attributes)]
    for kind, name in named:
        if _SENSITIVE.search(name) and name not in exempt:
            raise UnportableValueError(
                f"Carrier {carrier!r}: the {kind} {name!r} looks like a credential. If it is not one, pass "
                f"allow_sensitive=[{name!r}]: carried values cross brokers in clear text.",
                carrier=carrier,
                variable=name,
            )


def _allowed_names(allowed: object) -> set[str]:
    names = set()
    for entry in _iterate("allow_sensitive", allowed):
        if not isinstance(entry, str | ContextVar):
            raise TypeError(
                f"Carrier(allow_sensitive=...) takes names or ContextVars, got {type(entry).__name__}. "
                "List what you mean to carry, such as allow_sensitive=['session_country']."
            )
        names.add(entry.name if isinstance(entry, ContextVar) else entry)
    return names


def checked_limit(argument: str, value: object, example: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"Carrier({argument}=...) takes a positive int. Pass one such as {argument}={example}.")
    return value


def checked_secret_key(secret_key: object) -> bytes | None:
    if isinstance(secret_key, str):
        secret_key = secret_key.encode()
    if secret_key is not None and (not isinstance(secret_key, bytes) or not secret_key):
        raise TypeError(
            f"Carrier(secret_key=...) takes a non-empty str or bytes, got {type(secret_key).__name__}. "
            "Pass the same secret to the carrier in every process."
        )
    return secret_key


def checked_codecs(
    variables: Mapping[str, ContextVar[Any]],
    attributes: tuple[str, ...],
    codecs: Mapping[ContextVar[Any] | str, Codec] | None,
) -> dict[tuple[str, str], Codec]:
    """The codecs by ``(section, name)``, each for something the carrier carries."""
    checked: dict[tuple[str, str], Codec] = {}
    for key, codec in (codecs or {}).items():
        pair = check_codec(key, codec)  # the pair first, then what it is for: the order Carrier() always had
        checked[_codec_key(variables, attributes, key)] = pair
    return checked


def _codec_key(
    variables: Mapping[str, ContextVar[Any]], attributes: tuple[str, ...], key: ContextVar[Any] | str
) -> tuple[str, str]:
    if isinstance(key, ContextVar):
        if variables.get(key.name) is not key:
            raise ValueError(
                f"Carrier(codecs=...) names the ContextVar {key.name!r}, which it does not carry. "
                "Add it to vars=, or drop its codec."
            )
        return VARS_SECTION, key.name
    if key not in attributes:
        raise ValueError(
            f"Carrier(codecs=...) names {key!r}, not one of its g attributes. "
            "Add it to g=, or key the codec by the ContextVar object."
        )
    return G_SECTION, key


def _iterate(argument: str, value: object) -> Iterable[Any]:
    if isinstance(value, str | bytes | ContextVar) or not isinstance(value, Iterable):
        raise TypeError(
            f"Carrier({argument}=...) takes a list, got {type(value).__name__}. "
            f"Wrap a single item in a list: {argument}=[...]."
        )
    return value
