"""The payload: the one ``str`` a :class:`~ctxsnap.Carrier` sends across a process boundary, and its checks.

Every transport (Celery headers, process pools, ``multiprocessing``) moves the same envelope,
``{"v":1,"c":"<carrier>","d":{"vars":{...},"g":{...}},"s":"<hmac>"}``, so its format, its version and its
signature are decided here once. ``d`` has one section per kind of context: ``vars`` for ContextVars (by their
names) and one per provider that exports a part of its context (Flask's and Quart's ``g`` export ``g``).

A worker checks the envelope before anything runs (format, carrier, version, signature) and raises
:class:`PayloadError`, so a rolling deploy that changes the format, or a forged payload, fails loudly instead of
running a task with silently dropped or altered values.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ._errors import SnapshotError

__all__ = ["PAYLOAD_VERSION", "Payload", "PayloadError", "envelope_head", "label", "open_envelope", "seal"]

#: The payload format this ctxsnap writes and reads. A worker meeting another version refuses it by name, so a
#: rolling deploy that changes the format shows up as an error, never as silently dropped values.
PAYLOAD_VERSION: Final = 1

VARS_SECTION: Final = "vars"
G_SECTION: Final = "g"

_EXPORTED: Final = "Pass the str that Carrier.export() returned, unchanged."

# Built once: json.dumps/json.loads with options build a new encoder or decoder per call, a cost every task paid.
# No circular check (a dict per call): every carried value passed unportable_reason, whose depth limit a cycle
# cannot get past.
encode_json: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":")
).encode
_canonical_json: Final = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, check_circular=False, separators=(",", ":"), sort_keys=True
).encode


class PayloadError(SnapshotError, ValueError):
    """A payload was refused in the worker: not a ctxsnap payload, another carrier's, an unknown version,
    unsigned or tampered with. The task does not run."""

    def __init__(self, message: str, *, carrier: str = "") -> None:
        super().__init__(message)
        self.carrier = carrier

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args, self.__dict__)


class Payload(str):
    """The ``str`` that :meth:`Carrier.export` returns; its ``repr`` names variables, never values."""

    __slots__ = ()

    def __repr__(self) -> str:
        try:
            data = json.loads(self)
            names = [
                f"{section}.{name}" if section != VARS_SECTION else name
                for section, values in data["d"].items()
                for name in values
            ]
            signed = " signed" if "s" in data else ""
            return f"<ctxsnap payload v{data['v']} of {data['c']!r}{signed}: {', '.join(names) or 'nothing'}>"
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"<ctxsnap payload, unreadable, {len(self)} characters>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries as a plain str: the receiving side needs nothing of ctxsnap to hold it.
        return (str, (str(self),))


def label(section: str, name: str) -> str:
    """How messages name a carried value: ``the ContextVar 'x'`` or ``the g attribute 'x'``, never its value."""
    return f"the ContextVar {name!r}" if section == VARS_SECTION else f"the {section} attribute {name!r}"


# -- the parent side --------------------------------------------------------------------------------------------


def envelope_head(carrier: str) -> str:
    """The text every envelope of ``carrier`` starts with, up to its data; a carrier builds it once."""
    return f'{{"v":{PAYLOAD_VERSION},"c":{encode_json(carrier)},"d":'


def seal(head: str, carrier: str, data: dict[str, dict[str, Any]], key: bytes | None) -> str:
    """The envelope of ``data`` as JSON text, signed when ``key`` is given (``head``: :func:`envelope_head`)."""
    # Only the data is encoded per payload: the same text as encoding the whole envelope, one level less.
    text = head + encode_json(data)
    if key is None:
        return text + "}"
    return f'{text},"s":"{sign(key, carrier, data)}"}}'


def sign(key: bytes, carrier: str, data: Any) -> str:
    """HMAC-SHA256 over the version, the carrier name and a canonical form of ``data``."""
    # Imported here: hashlib loads OpenSSL, a cost that only signing carriers should pay at import. The one-shot
    # hmac.digest runs in OpenSSL; hmac.new builds two Python-level hash objects per payload.
    import hmac

    message = f"{PAYLOAD_VERSION}\n{carrier}\n{_canonical_json(data)}".encode()
    return hmac.digest(key, message, "sha256").hex()


# -- the worker side --------------------------------------------------------------------------------------------


def open_envelope(carrier: str, payload: object, key: bytes | None) -> dict[str, Any]:
    """The ``d`` part of ``payload`` once format, version, carrier and signature are checked."""
    envelope = _parse(carrier, payload)
    _check_version(carrier, envelope["v"])
    if envelope.get("c") != carrier:
        raise PayloadError(
            f"Carrier {carrier!r} got a payload of the carrier {envelope.get('c')!r}. "
            "Run it with the carrier that exported it.",
            carrier=carrier,
        )
    data: dict[str, Any] = envelope["d"]
    if key is not None:
        _check_signature(carrier, key, envelope.get("s"), data)
    return data


def malformed_section(carrier: str, section: str) -> PayloadError:
    return PayloadError(
        f"Carrier {carrier!r} got a payload with a malformed section {section!r}. {_EXPORTED}", carrier=carrier
    )


def _parse(carrier: str, payload: object) -> dict[str, Any]:
    if not isinstance(payload, str):
        raise PayloadError(
            f"Carrier {carrier!r} takes a payload str, got {type(payload).__name__}. "
            "Pass the str that Carrier.export() returned.",
            carrier=carrier,
        )
    try:
        envelope = _decode_json(payload)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("d"), dict) or "v" not in envelope:
        raise PayloadError(
            f"Carrier {carrier!r} got a str that is not a ctxsnap payload. {_EXPORTED}", carrier=carrier
        )
    return envelope


def _check_version(carrier: str, version: object) -> None:
    if version != PAYLOAD_VERSION:
        raise PayloadError(
            f"Carrier {carrier!r} cannot read payload version {version!r}, only {PAYLOAD_VERSION}. "
            "Run the same ctxsnap version on both sides of the deploy.",
            carrier=carrier,
        )


def _check_signature(carrier: str, key: bytes, signature: object, data: Any) -> None:
    if not isinstance(signature, str):
        raise PayloadError(
            f"Carrier {carrier!r} refused an unsigned payload. Give the exporting carrier the same secret_key.",
            carrier=carrier,
        )
    import hmac

    if not hmac.compare_digest(signature, sign(key, carrier, data)):
        raise PayloadError(
            f"Carrier {carrier!r} refused a payload whose signature does not match. "
            "Use one secret_key on both sides, and pass payloads on unchanged.",
            carrier=carrier,
        )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not portable")


# NaN and infinity are refused on the way in as on the way out (json accepts them by default).
_decode_json: Final = json.JSONDecoder(parse_constant=_refuse_constant).decode
