"""``Carrier``: the declared, portable part of a context, for work that runs in another process or machine.

A :class:`~ctxsnap.Snapshot` holds live objects (a ``contextvars.Context``, ``g``, the request) that cannot be
pickled or sent through a broker. What crosses a process boundary is therefore a *declared* subset: the
ContextVars and ``g`` attributes an application lists. This module holds the carrier: what it declares, its
parent side (export) and its worker side (run). The rest lives beside it: ``_codec`` (value rules),
``_payload`` (wire format, signature), ``_declaration``, ``_carrier_registry``, ``_carried_call``.

This module knows no framework: ``g`` is exported and restored by the providers that declare it (see the
optional ``portable``/``export``/``restore`` hooks of :class:`ctxsnap.Provider`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping
from contextvars import Context, ContextVar
from operator import is_
from typing import Any, Final, ParamSpec, TypeVar

from ._carried_call import CarriedCall, run_carried
from ._carrier_registry import caller_module, carrier_named, register
from ._codec import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    Codec,
    decode_sections,
    encode_section,
    warn_undeclared,
    within_limit,
)
from ._declaration import (
    carried_attributes,
    carried_variables,
    checked_codecs,
    checked_limit,
    checked_name,
    checked_secret_key,
    refuse_credentials,
)
from ._last_payload import reusable, same_objects
from ._payload import G_SECTION, VARS_SECTION, Payload, envelope_head, open_envelope, seal
from ._provider_sections import AppSource, export_section, restore_section

__all__ = ["CarriedCall", "Carrier", "run_carried"]

P = ParamSpec("P")
R = TypeVar("R")

_MISSING: Final = object()
_get: Final = ContextVar.get


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
        self.name: Final = checked_name(name)
        self._module = caller_module()
        self._vars: Final = carried_variables(name, vars)
        self._g: Final = carried_attributes(g)
        refuse_credentials(name, self._vars, self._g, allow_sensitive)
        self.max_bytes: Final = checked_limit("max_bytes", max_bytes, DEFAULT_MAX_BYTES)
        self.max_depth: Final = checked_limit("max_depth", max_depth, DEFAULT_MAX_DEPTH)
        self._key: Final = checked_secret_key(secret_key)
        self._codecs: Final = checked_codecs(self._vars, self._g, codecs)
        self._declared: Final = {VARS_SECTION: self._vars.keys(), G_SECTION: frozenset(self._g)}
        self._var_objects: Final = tuple(self._vars.values())
        self._head: Final = envelope_head(self.name)
        self._unset: Final = (_MISSING,) * len(self._var_objects)
        # The last payload exported and decoded, reused while nothing in it changes (ctxsnap._last_payload).
        self._last_export: tuple[tuple[Any, ...], dict[str, Any], Payload] | None = None
        self._last_decode: tuple[str, dict[str, dict[str, Any]]] | None = None
        self._app_source: Final = AppSource(app)
        register(self)

    # -- what it carries ---------------------------------------------------------------------------------------

    @property
    def vars(self) -> tuple[ContextVar[Any], ...]:
        return self._var_objects

    @property
    def g(self) -> tuple[str, ...]:
        return self._g

    @property
    def signed(self) -> bool:
        return self._key is not None

    @property
    def app(self) -> Any:
        """The app for ``g`` in a worker, as given (an app or a factory); see :meth:`resolve_app`."""
        return self._app_source.source

    def resolve_app(self, override: Any = None) -> Any:
        """The app whose app context holds the restored ``g``: a factory is called once per process."""
        return self._app_source.resolve(override)

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
        current = tuple(map(_get, self._var_objects, self._unset))  # in C: this runs at every submit
        kept = self._last_export
        g_values = None
        if kept is not None and all(map(is_, current, kept[0])):
            if not self._g:
                return kept[2]
            g_values = self._current_g()
            if same_objects(g_values, kept[1]):
                return kept[2]
        return self._export_anew(current, g_values)

    def _export_anew(self, current: tuple[Any, ...], g_values: dict[str, Any] | None) -> Payload:
        values = {name: value for name, value in zip(self._vars, current, strict=True) if value is not _MISSING}
        data: dict[str, dict[str, Any]] = {}
        if values:
            data[VARS_SECTION] = encode_section(self.name, VARS_SECTION, values, self._codecs, self.max_depth)
        if g_values is None:
            g_values = self._current_g()  # read once every ContextVar is encoded, as it always was
        if g_values:
            data[G_SECTION] = encode_section(self.name, G_SECTION, g_values, self._codecs, self.max_depth)
        text = seal(self._head, self.name, data, self._key)
        payload = Payload(within_limit(self.name, data, text, self.max_bytes))
        if not self._codecs and reusable(values, g_values):
            self._last_export = (current, g_values, payload)
        return payload

    def _current_g(self) -> dict[str, Any]:
        return export_section(G_SECTION, self._g) if self._g else {}

    # -- the worker side ---------------------------------------------------------------------------------------

    def decode(self, payload: str) -> dict[str, dict[str, Any]]:
        """Check ``payload`` (format, carrier, version, signature) and return its decoded sections."""
        return self._checked(payload)[0]

    def _decoded(self, payload: str) -> dict[str, dict[str, Any]]:
        """:meth:`decode`, reusing the last result for the same payload text (see ``ctxsnap._last_payload``)."""
        kept = self._last_decode
        if kept is not None and kept[0] == payload:
            return kept[1]
        decoded, may_keep = self._checked(payload)
        if may_keep:
            self._last_decode = (payload, decoded)
        return decoded

    def _checked(self, payload: str) -> tuple[dict[str, dict[str, Any]], bool]:
        """The decoded sections, and whether they may be reused for the same text."""
        data = open_envelope(self.name, payload, self._key)
        decoded, unknown = decode_sections(self.name, data, self._declared, self._codecs)
        if unknown:
            warn_undeclared(self.name, unknown)  # and never kept: the warning is given at every run
            return decoded, False
        return decoded, not self._codecs and reusable(*decoded.values())

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
            raise TypeError(
                f"Carrier.run() takes a callable to run, got {type(fn).__name__}. "
                "Pass the payload, then the function and its arguments."
            )
        data = self._decoded(payload)
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
        with restore_section(G_SECTION, self._app_source.required(self.name, app_override), g_values):
            return fn(*args, **kwargs)

    def wrap(self, fn: Callable[P, R]) -> CarriedCall[P, R]:
        """Export now; return a picklable callable that runs ``fn`` with the carried values in an empty context.

        For ``multiprocessing.Pool`` and other process-based runners; ``fn`` itself must be picklable.
        """
        if not callable(fn):
            raise TypeError(
                f"Carrier.wrap() takes a callable, got {type(fn).__name__}. "
                "Pass the function that the other process should run."
            )
        return CarriedCall(self, self.export(), fn)
