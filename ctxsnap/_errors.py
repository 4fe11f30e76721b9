"""The exceptions ctxsnap raises.

They live in one module so that adapters and third-party providers can raise and catch them without importing
the snapshot machinery.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProviderError", "SnapshotClosedError", "SnapshotError"]


class SnapshotError(Exception):
    """Base class of every error that ctxsnap raises on its own account."""


class SnapshotClosedError(SnapshotError, RuntimeError):
    """A sealed snapshot was asked to ``wrap`` or ``run`` something.

    Leaving ``with ctxsnap.capture() as snap:`` seals ``snap`` so that a snapshot taken during one request can
    never be reused, by accident, to run work on behalf of another. Callables wrapped inside the block keep
    working; only new uses of the snapshot are refused.
    """


class ProviderError(SnapshotError):
    """A provider failed while capturing in the parent or while applying or undoing in the child.

    ``provider`` is the provider's name and ``phase`` is one of ``"capture"``, ``"apply"``, ``"undo"``, or
    ``"load"`` for a third-party provider whose entry point could not be loaded. The
    original exception is chained as ``__cause__``. Whatever was already applied has been undone by the time
    this propagates.
    """

    def __init__(self, provider: str, phase: str, cause: BaseException, *, hint: str | None = None) -> None:
        self.provider = provider
        self.phase = phase
        if hint is None:
            hint = f"Fix the provider, or leave it out with ctxsnap.capture(exclude=[{provider!r}])."
        super().__init__(
            f"context provider {provider!r} failed during {phase}: {type(cause).__name__}: {cause}. {hint}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds an exception as ``cls(*self.args)``, which does not fit this constructor: a
        # ProviderError raised in a process-pool worker then failed to unpickle in the parent and broke the
        # whole pool (BrokenProcessPool). The message, provider and phase travel; the cause does not (it may
        # not pickle, and pickle never carries ``__cause__`` anyway). copy.copy goes the same way.
        return _rebuild, (type(self), self.args), self.__dict__


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    return error
