"""Which implementation of the hot path runs: the compiled accelerator, or the pure-Python one beside it.

Issue 14 set per-call targets that the pure-Python run path measurably cannot reach (docs/benchmarks.md): the
frames and argument packing of ``capture()`` and ``Snapshot.run`` alone cost more than the budget. The C module
``ctxsnap._speedups`` does the same work without them. It is optional, in the way MarkupSafe's ``_speedups``
is: a machine without a compiler installs the pure-Python package, and ``CTXSNAP_PURE_PYTHON=1`` in the
environment selects the pure-Python path even where the module was built (the test matrix runs both; the
two must behave the same in every row of the semantics table).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Final

__all__ = ["IMPLEMENTATION", "speedups"]


def _load() -> ModuleType | None:
    if os.environ.get("CTXSNAP_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from . import _speedups  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    module: ModuleType = _speedups
    return module


#: The compiled module, or None when the pure-Python path runs.
speedups: Final = _load()
#: ``"compiled"`` or ``"python"``: shown by ``python -m ctxsnap`` and recorded with every benchmark result.
IMPLEMENTATION: Final = "python" if speedups is None else "compiled"
