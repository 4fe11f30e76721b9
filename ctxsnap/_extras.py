"""The error an adapter or provider gives when its framework is not installed: which extra brings it.

Each framework's modules (``ctxsnap.adapters.flask``, ``ctxsnap.providers.quart``, ...) import their framework
at the top. Without it, Python's own ``No module named 'flask'`` leaves the user to guess that ctxsnap has an
extra for it (issue 11, defect 14); this guard names the module that needed it and the ``pip install`` line. The
core names no framework: each module passes its own framework's import name and extra.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["framework_import"]


@contextlib.contextmanager
def framework_import(module: str, *, extra: str, importer: str) -> Iterator[None]:
    """Turn the block's failure to import ``module`` into an error that names ``extra``.

    Used as ``with framework_import("flask", extra="flask", importer=__name__): import flask``; the imports stay
    plain import statements, so type checkers still see the framework's types.

    :param module: the framework's top-level import name.
    :param extra: the ctxsnap extra that installs it (``pip install "ctxsnap[<extra>]"``).
    :param importer: the name of the ctxsnap module that needs it, for the message.
    :raises ModuleNotFoundError: when ``module`` itself is missing, with ``name`` set to ``module``. A framework
        that is installed but fails to import one of its own dependencies keeps its own error: it says more
        than ours would.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ModuleNotFoundError(
            f'{importer} needs {module}, which is not installed. Install it with: pip install "ctxsnap[{extra}]"',
            name=module,
        ) from None
