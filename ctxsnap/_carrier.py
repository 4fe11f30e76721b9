"""``Carrier``: the declared, portable part of a context, for work that runs in another process or machine.

A :class:`~ctxsnap.Snapshot` holds live objects (a ``contextvars.Context``, ``g``, the request) that cannot be
pickled or sent through a broker. What crosses a process boundary is therefore a *declared* subset: the
ContextVars and ``g`` attributes an application lists, encoded in one strict JSON codec that every transport
(Celery, process pools, ``multiprocessing``) shares, so a value that one transport would mangle (a tuple that
arrives as a list, a datetime that arrives as a string, a live object that the memory broker passes as it is)
is refused everywhere, before anything is sent.

The payload is a ``str``: ``{"v":1,"c":"<carrier>","d":{"vars":{...},"g":{...}},"s":"<hmac>"}``. ``d`` has one
section per kind of context: ``vars`` for ContextVars (by their names) and one per provider that exports a part
of its context (Flask's and Quart's ``g`` export the section ``g``).

This module knows no framework: ``g`` is exported and restored by the providers that declare it (see the
optional ``portable``/``export``/``restore`` hooks of :class:`ctxsnap.Provider`).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import json
import math
import os
import re
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import Context, ContextVar
from typing import Any, Final, Generic, ParamSpec, TypeVar

from . import _provider
from ._errors import SnapshotError

__all__ = ["Carrier", "CarriedCall", "Payload", "PayloadError", "UnportableValueError"]

P = ParamSpec("P")
R = TypeVar("R")

#: The payload format this ctxsnap writes and reads. A worker meeting another version refuses it by name, so a
#: rolling deploy that changes the format shows up as an error, never as silently dropped values.
PAYLOAD_VERSION: Final = 1
DEFAULT_MAX_BYTES: Final = 8 * 1024
DEFAULT_MAX_DEPTH: Final = 16

VARS_SECTION: Final = "vars"
G_SECTION: Final = "g"

#: Names that look like credentials. A carried value travels in clear text through a broker and its logs, so
#: such a name must be allowed by name (``allow_sensitive=``), never by accident.
_SENSITIVE: Final = re.compile(
    r"authori[sz]ation|cookie|passw(or)?d|secret|token|session|api[\W_]?key", re.IGNORECASE
)

_JSON_ENCODE: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_CANONICAL: Final = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, separators=(",", ":"), sort_keys=True
).encode

Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]


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
            names = [f"{section}.{name}" if section != VARS_SECTION else name
                     for section, values in data["d"].items() for name in values]
            signed = " signed" if "s" in data else ""
            return f"<ctxsnap payload v{data['v']} of {data['c']!r}{signed}: {', '.join(names) or 'nothing'}>"
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"<ctxsnap payload, unreadable, {len(self)} characters>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries as a plain str: the receiving side needs nothing of ctxsnap to hold it.
        return (str, (str(self),))


# -- the carrier registry: a worker finds a carrier by name, by importing the module that defines it ----------

_carriers: Final[weakref.WeakValueDictionary[str, Carrier]] = weakref.WeakValueDictionary()
_carriers_lock: Final = threading.Lock()


def carrier_named(name: str, module: str) -> Carrier:
    """The carrier called ``name``, importing ``module`` (where it was defined) when it is not known yet."""
    carrier = _carriers.get(name)
    if carrier is None:
        importlib.import_module(module)
        carrier = _carriers.get(name)
    if carrier is None:
        raise LookupError(
            f"no ctxsnap carrier named {name!r} in this process. Define it at the top level of {module!r} "
            "so that importing the module creates it"
        )
    return carrier


def _caller_module() -> str:
    frame = sys._getframe(2)
    name = frame.f_globals.get("__name__", "__main__")
    # Under spawn and forkserver, multiprocessing runs the parent's __main__ as __mp_main__.
    return "__main__" if name == "__mp_main__" else str(name)


class Carrier:
    """The declared, portable part of a context: what may cross to another process or machine, and how.

    ``name`` identifies the carrier in payloads; a worker finds it by importing the module that defines it.
    ``vars`` are ContextVars (carried under their names, which must differ); ``g`` names attributes of Flask's
    or Quart's ``g``. ``app`` (a Flask or Quart app, or a zero-argument callable returning one, called once per
    worker process) is the app whose app context holds the restored ``g`` in the worker. ``codecs`` maps a
    ContextVar or a ``g`` attribute name to ``(encode, decode)``: ``encode`` turns the value into the JSON
    subset, ``decode`` turns it back in the worker. ``secret_key`` signs payloads; a carrier with a key refuses
    unsigned or tampered ones.
    """

    def __init__(
        self,
        name: str,
        *,
        vars: Iterable[ContextVar[Any]] = (),
        g: Iterable[str] = (),
        app: Any = None,
        codecs: Mapping[ContextVar[Any] | str, Codec] | None = None,
        secret_key: str | bytes | None = None,
        allow_sensitive: Iterable[str | ContextVar[Any]] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", name):
            raise TypeError(
                f"Carrier() needs a short name such as 'myapp', got {_describe(name)}. "
                "Use letters, digits, '.', '_', ':' or '-'."
            )
        self.name: Final = name
        self._module = _caller_module()
        variables = tuple(_iterate("vars", vars))
        for var in variables:
            if not isinstance(var, ContextVar):
                raise TypeError(
                    f"Carrier(vars=...) takes ContextVar objects, got {type(var).__name__}. "
                    "Pass the variables themselves, such as vars=[request_id]."
                )
        by_name: dict[str, ContextVar[Any]] = {}
        for var in variables:
            if var.name in by_name and by_name[var.name] is not var:
                raise ValueError(
                    f"Carrier {name!r} has two ContextVars named {var.name!r}. Payloads carry variables by "
                    "name: give each a name of its own."
                )
            by_name[var.name] = var
        attributes = tuple(_iterate("g", g))
        for attribute in attributes:
            if not isinstance(attribute, str) or not attribute.isidentifier():
                raise TypeError(
                    f"Carrier(g=...) takes attribute names, got {_describe(attribute)}. "
                    "Pass strings such as g=['user_id']."
                )
        allowed = set()
        for entry in _iterate("allow_sensitive", allow_sensitive):
            if not isinstance(entry, str | ContextVar):
                raise TypeError(
                    f"Carrier(allow_sensitive=...) takes names or ContextVars, got {type(entry).__name__}. "
                    "List what you mean to carry, such as allow_sensitive=['session_country']."
                )
            allowed.add(entry.name if isinstance(entry, ContextVar) else entry)
        for kind, label in [*(("ContextVar", v) for v in by_name), *(("g attribute", a) for a in attributes)]:
            if _SENSITIVE.search(label) and label not in allowed:
                raise UnportableValueError(
                    f"Carrier {name!r} refuses the {kind} {label!r}: it looks like a credential. Carried values "
                    f"cross brokers in clear text; if it is not one, pass allow_sensitive=[{label!r}].",
                    carrier=name,
                    variable=label,
                )
        for limit, value in (("max_bytes", max_bytes), ("max_depth", max_depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TypeError(f"Carrier({limit}=...) takes a positive int, got {_describe(value)}.")
        if isinstance(secret_key, str):
            secret_key = secret_key.encode()
        if secret_key is not None and (not isinstance(secret_key, bytes) or not secret_key):
            raise TypeError(
                f"Carrier(secret_key=...) takes a non-empty str or bytes, got {type(secret_key).__name__}. "
                "Pass the same secret to the carrier in every process."
            )
        self._vars: Final = by_name
        self._g: Final = attributes
        self._codecs: dict[tuple[str, str], Codec] = {}
        for key, codec in (codecs or {}).items():
            self._codecs[self._codec_key(key)] = _check_codec(name, key, codec)
        self._key: Final = secret_key
        self.max_bytes: Final = max_bytes
        self.max_depth: Final = max_depth
        self._app = app
        self._app_pid = -1
        self._app_lock = threading.Lock()
        self._resolved_app: Any = None
        with _carriers_lock:
            existing = _carriers.get(name)
            if existing is not None:
                raise ValueError(
                    f"a ctxsnap carrier named {name!r} already exists (defined in {existing._module!r}). Workers "
                    "find carriers by name: give each carrier a name of its own."
                )
            _carriers[name] = self

    def _codec_key(self, key: ContextVar[Any] | str) -> tuple[str, str]:
        if isinstance(key, ContextVar):
            if self._vars.get(key.name) is not key:
                raise ValueError(
                    f"Carrier {self.name!r} has a codec for the ContextVar {key.name!r}, which it does not carry. "
                    "Add it to vars=, or drop its codec."
                )
            return VARS_SECTION, key.name
        if key not in self._g:
            raise ValueError(
                f"Carrier {self.name!r} has a codec for {key!r}, which is not one of its g attributes. "
                "Add it to g=, or key the codec by the ContextVar object."
            )
        return G_SECTION, key

    # -- what it carries ---------------------------------------------------------------------------------------

    @property
    def vars(self) -> tuple[ContextVar[Any], ...]:
        return tuple(self._vars.values())

    @property
    def g(self) -> tuple[str, ...]:
        return self._g

    @property
    def signed(self) -> bool:
        return self._key is not None

    @property
    def app(self) -> Any:
        """The app for ``g`` in a worker, as given (an app or a factory); see :meth:`resolve_app`."""
        return self._app

    def resolve_app(self, override: Any = None) -> Any:
        """The app whose app context holds the restored ``g``: a factory is called once per process."""
        source = self._app if override is None else override
        if source is None or _is_app(source):
            return source
        if self._app_pid == os.getpid() and self._resolved_source is source:
            return self._resolved_app
        # Locked: the first tasks of a threads-pool worker arrive together, and the factory runs once per process.
        with self._app_lock:
            if self._app_pid != os.getpid() or self._resolved_source is not source:
                self._resolved_app = source()
                self._resolved_source = source
                self._app_pid = os.getpid()
            return self._resolved_app

    _resolved_source: Any = None

    def __repr__(self) -> str:
        parts = [f"vars={list(self._vars)}"]
        if self._g:
            parts.append(f"g={list(self._g)}")
        if self._key is not None:
            parts.append("signed")
        return f"<ctxsnap.Carrier {self.name!r} {' '.join(parts)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # By name, never by value: the secret key and the app must not travel, and a worker finds the carrier by
        # importing the module that defines it.
        return (carrier_named, (self.name, self._module))

    # -- the parent side ---------------------------------------------------------------------------------------

    def export(self) -> Payload:
        """The declared values of the current context, as a payload (``str``).

        Raises :class:`UnportableValueError` naming the variable when a value is outside the codec, or naming
        the largest value when the payload would exceed ``max_bytes``.
        """
        data: dict[str, dict[str, Any]] = {}
        carried: dict[str, Any] = {}
        for var_name, var in self._vars.items():
            value = var.get(_MISSING)
            if value is not _MISSING:
                carried[var_name] = self._encode(VARS_SECTION, var_name, value)
        if carried:
            data[VARS_SECTION] = carried
        if self._g:
            values = _export_section(G_SECTION, self._g)
            if values:
                data[G_SECTION] = {
                    name: self._encode(G_SECTION, name, value) for name, value in values.items()
                }
        envelope: dict[str, Any] = {"v": PAYLOAD_VERSION, "c": self.name, "d": data}
        if self._key is not None:
            envelope["s"] = self._sign(data)
        text = _JSON_ENCODE(envelope)
        size = len(text.encode())
        if size > self.max_bytes:
            self._refuse_oversize(data, size)
        return Payload(text)

    def _encode(self, section: str, name: str, value: Any) -> Any:
        codec = self._codecs.get((section, name))
        if codec is not None:
            try:
                value = codec[0](value)
            except Exception as exc:
                raise UnportableValueError(
                    f"Carrier {self.name!r} could not encode {_label(section, name)}: its codec raised "
                    f"{type(exc).__name__}. Fix the codec's encode function.",
                    carrier=self.name,
                    variable=_label(section, name),
                ) from None
        problem = _outside_codec(value, self.max_depth)
        if problem is not None:
            way_out = (
                "Make its codec's encode return"
                if codec is not None
                else "Declare a codec for it "
                f"(Carrier(codecs={{{_codec_hint(section, name)}: (encode, decode)}})), or carry"
            )
            raise UnportableValueError(
                f"Carrier {self.name!r} cannot carry {_label(section, name)}: {problem}. {way_out} str, int, "
                "finite float, bool, None, list or str-keyed dict.",
                carrier=self.name,
                variable=_label(section, name),
            )
        return value

    def _refuse_oversize(self, data: dict[str, dict[str, Any]], size: int) -> None:
        sizes = [
            (len(_JSON_ENCODE(value).encode()), _label(section, name))
            for section, values in data.items()
            for name, value in values.items()
        ]
        largest_size, largest = max(sizes, default=(0, "nothing"))
        raise UnportableValueError(
            f"Carrier {self.name!r} payload is {size} bytes, over max_bytes={self.max_bytes}. The largest value "
            f"is {largest} ({largest_size} bytes): carry less, or raise max_bytes.",
            carrier=self.name,
            variable=largest,
        )

    def _sign(self, data: Any) -> str:
        # Imported here: hashlib loads OpenSSL, a cost that only signing carriers should pay at import.
        import hashlib
        import hmac

        assert self._key is not None
        message = f"{PAYLOAD_VERSION}\n{self.name}\n{_CANONICAL(data)}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    # -- the worker side ---------------------------------------------------------------------------------------

    def decode(self, payload: str) -> dict[str, dict[str, Any]]:
        """Check ``payload`` (format, carrier, version, signature) and return its decoded sections."""
        if not isinstance(payload, str):
            raise PayloadError(
                f"Carrier {self.name!r} received a {type(payload).__name__}, not a payload. "
                "Pass the str that Carrier.export() returned.",
                carrier=self.name,
            )
        try:
            # NaN and infinity are refused on the way in as on the way out (json accepts them by default).
            envelope = json.loads(payload, parse_constant=_refuse_constant)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("d"), dict) or "v" not in envelope:
            raise PayloadError(
                f"Carrier {self.name!r} received a str that is not a ctxsnap payload. "
                "Pass the str that Carrier.export() returned, unchanged.",
                carrier=self.name,
            )
        version = envelope["v"]
        if version != PAYLOAD_VERSION:
            raise PayloadError(
                f"Carrier {self.name!r} received a payload of version {version!r}; this ctxsnap reads version "
                f"{PAYLOAD_VERSION}. Run the same ctxsnap version on both sides of the deploy.",
                carrier=self.name,
            )
        if envelope.get("c") != self.name:
            raise PayloadError(
                f"Carrier {self.name!r} received a payload of the carrier {envelope.get('c')!r}. "
                "Run it with the carrier that exported it.",
                carrier=self.name,
            )
        data = envelope["d"]
        if self._key is not None:
            signature = envelope.get("s")
            if not isinstance(signature, str):
                raise PayloadError(
                    f"Carrier {self.name!r} refused an unsigned payload. Sign it: give the exporting carrier the "
                    "same secret_key.",
                    carrier=self.name,
                )
            import hmac

            if not hmac.compare_digest(signature, self._sign(data)):
                raise PayloadError(
                    f"Carrier {self.name!r} refused a payload whose signature does not match. It was changed "
                    "after export, or signed with another secret_key.",
                    carrier=self.name,
                )
        decoded: dict[str, dict[str, Any]] = {}
        unknown: list[str] = []
        for section, values in data.items():
            if not isinstance(values, dict):
                raise PayloadError(
                    f"Carrier {self.name!r} received a payload whose section {section!r} is malformed. "
                    "Pass the str that Carrier.export() returned, unchanged.",
                    carrier=self.name,
                )
            known: dict[str, Any] = {}
            for name, value in values.items():
                if (section == VARS_SECTION and name in self._vars) or (section == G_SECTION and name in self._g):
                    codec = self._codecs.get((section, name))
                    known[name] = value if codec is None else self._decode_value(codec, section, name, value)
                else:
                    unknown.append(_label(section, name))
            if known:
                decoded[section] = known
        if unknown:
            # A rolling deploy: the sender declares more than this worker. The rest is still carried.
            warnings.warn(
                f"Carrier {self.name!r} ignored what it does not declare: {', '.join(sorted(unknown))}. "
                "Deploy the same carrier declaration everywhere to carry them.",
                RuntimeWarning,
                stacklevel=3,
            )
        return decoded

    def _decode_value(self, codec: Codec, section: str, name: str, value: Any) -> Any:
        try:
            return codec[1](value)
        except Exception as exc:
            raise PayloadError(
                f"Carrier {self.name!r} could not decode {_label(section, name)}: its codec raised "
                f"{type(exc).__name__}. Fix the codec's decode function, or deploy matching codecs.",
                carrier=self.name,
            ) from None

    def run(self, payload: str, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` in a copy of this thread's context holding the carried values; nothing is left behind.

        The copy keeps what the worker attached before (a tracing span, for example); the carried values are
        set in it, and it is discarded afterwards, so the next task on this worker sees none of them.
        """
        return self.run_in(contextvars.copy_context(), payload, fn, args, kwargs)

    def run_in(
        self,
        context: Context,
        payload: str,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        app: Any = None,
    ) -> R:
        """Run ``fn`` in ``context`` (which is then discarded) with the payload's values applied.

        ``app`` overrides the carrier's app for ``g`` (Celery's ``install(flask_app=...)``).
        """
        if not callable(fn):
            raise TypeError(f"Carrier.run() takes a callable to run, got {type(fn).__name__}.")
        data = self.decode(payload)
        return context.run(self._apply_and_call, data, fn, args, kwargs, app)

    def _apply_and_call(
        self,
        data: dict[str, dict[str, Any]],
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        app_override: Any,
    ) -> R:
        for name, value in data.get(VARS_SECTION, {}).items():
            self._vars[name].set(value)
        g_values = data.get(G_SECTION)
        if not g_values:
            return fn(*args, **kwargs)
        app = self.resolve_app(app_override)
        if app is None:
            raise RuntimeError(
                f"Carrier {self.name!r} carries g but has no app to restore it in. Pass app= to the Carrier "
                "(or flask_app= to ctxsnap.adapters.celery.install)."
            )
        with _restore_section(G_SECTION, app, g_values):
            return fn(*args, **kwargs)

    def wrap(self, fn: Callable[P, R]) -> CarriedCall[P, R]:
        """Export now; return a picklable callable that runs ``fn`` with the carried values in an empty context.

        For ``multiprocessing.Pool`` and other process-based runners; ``fn`` itself must be picklable.
        """
        if not callable(fn):
            raise TypeError(f"Carrier.wrap() takes a callable, got {type(fn).__name__}.")
        return CarriedCall(self, self.export(), fn)


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


def run_carried(carrier: Carrier, payload: str, fn: Callable[..., R], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> R:
    """What a process-pool child runs: ``fn`` in an empty context holding the carried values."""
    return carrier.run_in(Context(), payload, fn, args, kwargs)


# -- sections exported by providers -----------------------------------------------------------------------------


def _portable_providers(section: str) -> Iterator[Any]:
    for provider in _provider.providers():
        if getattr(provider, "portable", "") == section:
            yield provider


def _export_section(section: str, names: tuple[str, ...]) -> dict[str, Any]:
    for provider in _portable_providers(section):
        values = provider.export(names)
        if values is not None:
            return dict(values)
    return {}


def _restore_section(section: str, app: Any, values: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    for provider in _portable_providers(section):
        manager = provider.restore(app, values)
        if manager is not None:
            return manager  # type: ignore[no-any-return]
    raise TypeError(
        f"no ctxsnap provider can restore {section!r} in {type(app).__name__} {app!r:.60}. Pass a Flask or "
        "Quart app (or a factory returning one) as the carrier's app."
    )


# -- the codec --------------------------------------------------------------------------------------------------

_MISSING: Final = object()


def _outside_codec(value: Any, max_depth: int) -> str | None:
    """Why ``value`` is outside the JSON subset, without showing it; ``None`` when it is inside."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if item is None or kind is str or kind is bool or kind is int:
            continue
        if kind is float:
            if not math.isfinite(item):
                return "NaN and infinity are not portable"
            continue
        if depth >= max_depth:
            return f"it is nested deeper than max_depth={max_depth}"
        if kind is list or kind is tuple:
            stack.extend((element, depth + 1) for element in item)
        elif kind is dict:
            for key, element in item.items():
                if type(key) is not str:
                    return f"a dict key of type {type(key).__name__} is not portable (keys must be str)"
                stack.append((element, depth + 1))
        else:
            return f"a {kind.__module__}.{kind.__qualname__} is not portable"
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not portable")


def _check_codec(carrier: str, key: object, codec: object) -> Codec:
    if (
        not isinstance(codec, tuple)
        or len(codec) != 2
        or not all(callable(part) for part in codec)
    ):
        label = key.name if isinstance(key, ContextVar) else key
        raise TypeError(
            f"Carrier {carrier!r}: the codec for {label!r} must be a pair (encode, decode). "
            "Pass two functions, such as (str, uuid.UUID)."
        )
    return codec


def _label(section: str, name: str) -> str:
    return f"the ContextVar {name!r}" if section == VARS_SECTION else f"the {section} attribute {name!r}"


def _codec_hint(section: str, name: str) -> str:
    return name if section == VARS_SECTION else repr(name)


def _iterate(argument: str, value: object) -> Iterable[Any]:
    if isinstance(value, str | bytes | ContextVar) or not isinstance(value, Iterable):
        raise TypeError(
            f"Carrier({argument}=...) takes a list, got {type(value).__name__}. "
            f"Wrap a single item in a list: {argument}=[...]."
        )
    return value


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _is_app(value: object) -> bool:
    # An app object is callable too (a WSGI/ASGI app): told apart from a factory by the attributes every Flask
    # and Quart app has.
    return hasattr(value, "app_context") and hasattr(value, "config")
