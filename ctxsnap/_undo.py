"""The end of a run that applied providers: every undo runs, and a failure keeps no captured value alive.

Its own module because the rules are subtle (the task's exception wins; an interrupt from one undo still lets
the others run) and are what keeps a pushed Flask or Quart context from outliving a task, or a secret from
showing in an error report that records locals.
"""

from __future__ import annotations

from types import CodeType
from typing import Any, Final

from ._errors import ProviderError

__all__ = ["RUN_PATH_CODES", "forget_captured", "undo_all"]


def undo_all(applied: list[tuple[Any, Any, Any]], exc: BaseException | None) -> None:
    """Undo in reverse order; every provider gets its undo even if an earlier one fails.

    A ``BaseException`` from an undo (``SystemExit`` from a teardown function, ``KeyboardInterrupt``) still lets
    the remaining undos run, and is re-raised after them: it must not leave a pushed context behind.
    """
    failure: ProviderError | None = None
    interrupt: BaseException | None = None
    for provider, state, token in reversed(applied):
        undo = getattr(provider, "undo", None)
        if undo is None:
            continue
        try:
            undo(state, token, exc)
        except BaseException as undo_exc:
            if not isinstance(undo_exc, Exception):
                if interrupt is None:
                    interrupt = undo_exc
                continue
            if exc is not None:
                # The task's own exception wins: it propagates unchanged, and the failed undo is noted on it.
                _note_undo_failure(exc, provider.name, undo_exc)
            elif failure is None:
                failure = ProviderError(provider.name, "undo", undo_exc)
                failure.__cause__ = undo_exc
    try:
        if interrupt is not None:
            raise interrupt
        if failure is not None:
            raise failure
    finally:
        # The raised error's traceback holds this frame: without this, error -> frame -> error is a cycle that
        # keeps the snapshot's state alive until the cyclic GC runs.
        failure = interrupt = None


def _note_undo_failure(exc: BaseException, provider: str, undo_exc: Exception) -> None:
    try:
        exc.add_note(str(ProviderError(provider, "undo", undo_exc)))
    except Exception:
        # Some exceptions refuse notes (a frozen dataclass exception, a __notes__ that is not a list). The
        # task's exception still reaches the caller unchanged and the other undos still run: losing the note
        # is the lesser harm.
        pass


#: The frames of the run path, whose locals hold captured state (the providers' states, the snapshot).
#: ``ctxsnap._snapshot`` adds ``Snapshot._apply_run_undo`` when it is defined; a set, not a frozenset, for that.
RUN_PATH_CODES: Final[set[CodeType]] = {undo_all.__code__}


def forget_captured(exc: BaseException) -> None:
    """Clear the locals of the finished run-path frames that ``exc`` (and what it chains) passed through."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        pending += (error.__cause__, error.__context__)
        tb = error.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code in RUN_PATH_CODES:
                try:
                    tb.tb_frame.clear()
                except RuntimeError:
                    pass  # still executing: an outer run whose undo ran this one; it clears its own frames
            tb = tb.tb_next
