"""The ``g`` and teardown policy of the Flask and Quart providers, written once for both.

Flask and Quart offer the same choice with the same rules (docs/flask.md, "Choosing the g policy"): the child
gets a private copy of ``g`` (the default) or shares the parent's, and nothing of the app's lifecycle runs in
the child unless teardown mode asks for its own app context per run. The app's settings (``CTXSNAP_G``,
``CTXSNAP_TEARDOWN``) count once the adapter's ``CtxSnap`` extension is installed, a per-call override
(``ctxsnap.adapters.flask.capture(g=..., teardown=...)``) beats them, and ``"share"`` cannot be combined with
teardown. The two providers used to carry a copy each, which had drifted apart (different mode types, different
messages); one :class:`Policy` per framework now holds that framework's override, and everything else is shared.

The providers read the policy on every capture, so the common case (no extension, no override) is decided with
one attribute read and one dict lookup. This module names no framework: it reads ``app.extensions``,
``app.config`` and ``app.name``, which both frameworks' apps have.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal

from ._appcontext import g_values

__all__ = [
    "CONFIG_G",
    "CONFIG_TEARDOWN",
    "COPY",
    "EXTENSION_KEY",
    "GPolicy",
    "NO_VALUES",
    "Policy",
    "SHARE",
    "TEARDOWN",
    "mode_from",
]

GPolicy = Literal["copy", "share"]

#: The key of the extension in ``app.extensions`` and the names of its settings in ``app.config``.
EXTENSION_KEY: Final = "ctxsnap"
CONFIG_G: Final = "CTXSNAP_G"
CONFIG_TEARDOWN: Final = "CTXSNAP_TEARDOWN"

# What the app provider does in the child; the first item of its state tuple. Ints, compared with ==: the
# Quart provider once used strings compared with `is`, which only worked because they were interned.
COPY: Final = 0  # a fork of the app context with a private g holding a copy of the parent's attributes
SHARE: Final = 1  # a fork of the app context holding the parent's own g object
TEARDOWN: Final = 2  # like COPY, and the app's teardown_appcontext runs once per run, in the child

_MODES: Final[dict[tuple[object, object], int]] = {
    ("copy", False): COPY,
    ("share", False): SHARE,
    ("copy", True): TEARDOWN,
}

#: The values of ``g`` carried under ``SHARE`` (none: the child uses the parent's ``g`` itself).
NO_VALUES: Final[dict[str, Any]] = {}


def mode_from(g: object, teardown: object, where: str) -> int:
    """The mode for a ``g`` policy and a teardown flag, or the error that says what to use instead."""
    mode = _MODES.get((g, teardown))
    if mode is not None and isinstance(teardown, bool):
        return mode
    # No final full stop in these three: a capture wraps them in ProviderError, which adds its own sentence.
    if g not in ("copy", "share"):
        raise ValueError(f"Unknown g policy {g!r}, in {where}. It must be 'copy' (the default) or 'share'")
    if not isinstance(teardown, bool):
        raise TypeError(
            f"teardown got {teardown!r} ({type(teardown).__name__}), in {where}. It must be True or False"
        )
    raise ValueError(
        f"g='share' cannot be combined with teardown mode, in {where}. Use g='copy' with teardown, or share "
        "without it: the child's teardown_appcontext functions would clean up the parent's own g (a close_db "
        "teardown would close the request's database connection)"
    )


class _Override(threading.local):
    """The policy asked for by an adapter's ``capture()`` in this thread while it runs the core capture.

    A thread-local, not a ContextVar: a ContextVar set here would be copied into the very snapshot being taken,
    so a capture made later inside the child would inherit the parent's override. The class attribute is the
    default every thread sees, so reading it never raises (a missing attribute behind ``getattr(..., None)``
    costs an exception per capture).
    """

    policy: tuple[GPolicy | None, bool | None] | None = None


class Policy:
    """One framework's policy: its per-call override, and how a capture in one of its apps reads the settings.

    One instance per framework, so that a Flask ``capture(g="share")`` never changes what a Quart app context
    captured alongside it does. ``adapter`` is the module users call ``capture()`` from, named in errors.
    """

    def __init__(self, adapter: str) -> None:
        self._adapter = adapter
        self._override = _Override()
        #: How many threads are inside an ``overriding()`` block right now. Every capture reads this plain
        #: attribute first and the thread-local only when it is not zero: a thread-local read on each capture
        #: cost more than the rest of the policy check (issue 14). Changed under the lock; a stale read in
        #: another thread only sends that thread to the thread-local, which holds its own answer.
        self.overrides_active = 0
        self._overrides_lock = threading.Lock()

    def config_mode(self, app: Any) -> int:
        """The mode the app's settings ask for; raises if they are bad (the extension checks at start-up)."""
        config = app.config
        return mode_from(
            config.get(CONFIG_G, "copy"),
            config.get(CONFIG_TEARDOWN, False),
            f"app.config[{CONFIG_G!r}]/[{CONFIG_TEARDOWN!r}] of {app.name!r}",
        )

    def mode_for(self, app: Any) -> int:
        """The policy of a capture in ``app``: the per-call override, over the app's config, over the defaults."""
        override = self._override.policy
        if EXTENSION_KEY in app.extensions:
            if override is None:
                return self.config_mode(app)
            g, teardown = override
            config = app.config
            return mode_from(
                config.get(CONFIG_G, "copy") if g is None else g,
                config.get(CONFIG_TEARDOWN, False) if teardown is None else teardown,
                f"{self._adapter}.capture() together with the app's config",
            )
        if override is None:
            return COPY
        g, teardown = override
        return mode_from(
            "copy" if g is None else g, False if teardown is None else teardown, f"{self._adapter}.capture()"
        )

    def app_state(self, app_context: Any) -> tuple[int, Any, dict[str, Any]]:
        """What the app provider captures: the mode, the parent's app context, and the values of ``g`` to copy.

        Under ``COPY`` the values are taken now, at capture: a parent write after capture is not seen.
        """
        app = app_context.app
        if not self.overrides_active and EXTENSION_KEY not in app.extensions:
            return COPY, app_context, g_values(app_context)  # the common case, on every capture: no policy to read
        mode = self.mode_for(app)
        return mode, app_context, NO_VALUES if mode == SHARE else g_values(app_context)

    @contextmanager
    def overriding(self, g: GPolicy | None, teardown: bool | None) -> Iterator[None]:
        """Within the block, captures in this thread use ``g``/``teardown`` (``None`` keeps the app's setting).

        A bad value is refused here, before anything is captured.
        """
        mode_from("copy" if g is None else g, False if teardown is None else teardown, "capture()")
        previous = self._override.policy
        self._override.policy = (g, teardown)
        with self._overrides_lock:
            self.overrides_active += 1
        try:
            yield
        finally:
            self._override.policy = previous
            with self._overrides_lock:
                self.overrides_active -= 1
