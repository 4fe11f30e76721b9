"""``ctxsnap.Thread``: a ``threading.Thread`` that captures the context when it is started.

Capturing at ``start()`` rather than at construction matters: a thread object built at import time or in a
pool set-up (Flask-Threads captures at pool construction) would otherwise carry whatever context happened to be
current then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._snapshot import PlannedCapture, Selection

__all__ = ["Thread"]


class Thread(threading.Thread):
    """Drop-in for :class:`threading.Thread` whose ``run()`` executes inside a snapshot taken at ``start()``.

    Subclasses that override ``run()`` are covered too. ``include``/``exclude`` are passed to
    :func:`ctxsnap.capture`.
    """

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
        include: Selection = None,
        exclude: Selection = None,
    ) -> None:
        if target is not None and not callable(target):
            raise TypeError(
                f"Thread(target=...) expects a callable, got {type(target).__name__} {target!r}; "
                "pass the function itself, not its result"
            )
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        self._ctxsnap_capture = PlannedCapture(include, exclude)

    def start(self) -> None:
        if self.ident is not None:
            super().start()  # raises "threads can only be started once" before anything is captured or replaced
        snapshot = self._ctxsnap_capture()
        run = self.run

        def run_in_snapshot() -> None:
            try:
                snapshot.run(run)
            finally:
                # Drop the snapshot with the run: a finished Thread object kept around must not keep the
                # request (and everything it references) alive.
                del self.run

        self.run = run_in_snapshot  # type: ignore[method-assign]
        try:
            super().start()
        except BaseException:
            del self.run
            raise
