"""What the Flask and Quart extensions share: one ``init_app`` body and one per-capture policy override.

Both frameworks read the same ``app.config`` keys through the same :class:`~ctxsnap.providers._policy.Policy`
(each framework has its own instance), so the two adapter modules keep only what differs: the app type they
accept and their own helpers.
"""

from __future__ import annotations

from typing import Any

from .._capture import capture
from .._planning import Selection
from .._snapshot import Snapshot
from ..providers._policy import CONFIG_G, CONFIG_TEARDOWN, EXTENSION_KEY, GPolicy, Policy
from .instrument import CONFIG_INSTRUMENT, instrument_for_app

__all__ = ["capture_with_policy", "init_extension"]


def init_extension(extension: object, app: Any, policy: Policy) -> None:
    """Register ``extension`` on ``app`` with the policy's defaults, checking the app's settings now."""
    app.config.setdefault(CONFIG_G, "copy")
    app.config.setdefault(CONFIG_TEARDOWN, False)
    policy.config_mode(app)  # a bad setting fails at start-up, not in the first request that hands off work
    # CTXSNAP_INSTRUMENT = True: process-wide instrumentation (docs/instrument.md); read once, at start-up.
    instrument_for_app(app.config.get(CONFIG_INSTRUMENT, False), f"app.config[{CONFIG_INSTRUMENT!r}]")
    app.extensions[EXTENSION_KEY] = extension


def capture_with_policy(
    policy: Policy, g: GPolicy | None, teardown: bool | None, include: Selection, exclude: Selection
) -> Snapshot:
    """:func:`ctxsnap.capture`, with ``g``/``teardown`` overriding the app's settings for this capture only."""
    if g is None and teardown is None:
        return capture(include=include, exclude=exclude)
    with policy.overriding(g, teardown):
        return capture(include=include, exclude=exclude)
