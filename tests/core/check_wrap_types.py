"""Checked by mypy --strict in ``test_typing.py``, never run: ``wrap``/``run``/``submit`` keep the signature.

Each ``# type: ignore[code]`` marks a call that must be rejected; mypy --strict reports an unused ignore, so if
ctxsnap lost the ParamSpec (typing the wrapper as ``Callable[..., R]``) those lines would fail the check.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import assert_type

import ctxsnap
import ctxsnap.providers.flask as flask_providers
import ctxsnap.providers.quart as quart_providers


def greet(name: str, times: int = 1, *, loud: bool = False) -> str:
    return name * times


snap = ctxsnap.capture()

wrapped = snap.wrap(greet)
assert_type(wrapped("x"), str)
assert_type(wrapped("x", 2, loud=True), str)
wrapped(1)  # type: ignore[arg-type]
wrapped("x", loud="yes")  # type: ignore[arg-type]
wrapped("x", volume=3)  # type: ignore[call-arg]

module_wrapped: Callable[[str], str] = ctxsnap.wrap(greet)
assert_type(ctxsnap.wrap(greet)("x"), str)
ctxsnap.wrap(greet)(b"x")  # type: ignore[arg-type]
assert_type(ctxsnap.wrap(greet, exclude=["flask"])("x", loud=True), str)
ctxsnap.wrap(greet, include=["contextvars"])(3)  # type: ignore[arg-type]

assert_type(snap.run(greet, "x"), str)
assert_type(snap.run(greet, "x", 3, loud=False), str)
snap.run(greet, 3)  # type: ignore[arg-type]
snap.run(greet, "x", loud=1.5)  # type: ignore[arg-type]

with ctxsnap.capture(include=["contextvars"], exclude=["flask"]) as sealed:
    assert_type(sealed, ctxsnap.Snapshot)

with concurrent.futures.ThreadPoolExecutor() as pool:
    executor = ctxsnap.ContextExecutor(pool)
    assert_type(executor.submit(greet, "x", loud=True), concurrent.futures.Future[str])
    executor.submit(greet, 3)  # type: ignore[arg-type]

with ctxsnap.ThreadPoolExecutor(2, thread_name_prefix="typed", exclude=["flask"]) as drop_in:
    assert_type(drop_in.submit(greet, "x"), concurrent.futures.Future[str])
    drop_in.submit(greet, "x", times="2")  # type: ignore[arg-type]

ctxsnap.Thread(target=greet, args=("x",)).start()

# ctxsnap.providers is the function for type checkers, and the package of the built-in providers at run time
# (a callable module, ctxsnap/providers/__init__.py): importing its submodules must not hide the function.
assert_type(ctxsnap.providers(), tuple[ctxsnap.Provider, ...])
assert_type(flask_providers.LAYOUT, str)
assert_type(quart_providers.MERGED, bool)
