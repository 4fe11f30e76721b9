"""Every entry point that captures takes the selection ``capture()`` takes (issue 11, defect 12).

Where the helper passes no keyword arguments on to the function (executors, ``ctxsnap.Thread``, anyio's
``run_sync``, asyncio's ``run_in_executor``, ``ctxsnap.wrap``), ``include``/``exclude`` are keywords of the helper.
Where it does (asyncio's and Quart's ``to_thread``), every keyword belongs to the function, and the selection
comes with the callable: ``to_thread(ctxsnap.wrap(fn, exclude=...), ...)``. Each test carries two ContextVars and
leaves one out, so a selection that is dropped on the way fails it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import ctxsnap
from ctxsnap.adapters import asyncio as ctxsnap_asyncio
from ctxsnap.adapters.anyio import run_sync
from tests.support import TIMEOUT

KEPT: contextvars.ContextVar[str] = contextvars.ContextVar("selection_kept")
SECRET: contextvars.ContextVar[str] = contextvars.ContextVar("selection_secret")


def seen(label: str = "") -> tuple[str | None, str | None, str]:
    return KEPT.get(None), SECRET.get(None), label


def in_context(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` in a fresh context where both variables are set."""

    def body() -> Any:
        KEPT.set("kept")
        SECRET.set("secret")
        return fn()

    return contextvars.copy_context().run(body)


LEFT_OUT = ("kept", None, "")


def test_thread_pool_executor_takes_include_and_exclude() -> None:
    def submit() -> list[Any]:
        with ctxsnap.ThreadPoolExecutor(1, exclude=[SECRET]) as pool:
            by_submit = pool.submit(seen).result(TIMEOUT)
            by_map = list(pool.map(seen, ["m"]))
        with ctxsnap.ThreadPoolExecutor(max_workers=1, include=KEPT, thread_name_prefix="sel") as pool:
            included = pool.submit(seen).result(TIMEOUT)
        return [by_submit, by_map, included]

    assert in_context(submit) == [LEFT_OUT, [("kept", None, "m")], LEFT_OUT]


def test_thread_pool_executor_refuses_a_bad_selection_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown provider 'flsk'"):
        ctxsnap.ThreadPoolExecutor(1, exclude=["flsk"])


def test_wrap_takes_include_and_exclude() -> None:
    assert in_context(lambda: ctxsnap.wrap(seen, exclude=SECRET)()) == LEFT_OUT
    assert in_context(lambda: ctxsnap.wrap(seen, include=[KEPT])()) == LEFT_OUT


def test_asyncio_run_in_executor_takes_include_and_exclude() -> None:
    async def main() -> list[Any]:
        return [
            await ctxsnap_asyncio.run_in_executor(None, seen, "x", exclude=[SECRET]),
            await ctxsnap_asyncio.run_in_executor(None, seen, include=[KEPT]),
        ]

    assert in_context(lambda: asyncio.run(main())) == [("kept", None, "x"), LEFT_OUT]


def test_asyncio_to_thread_takes_the_selection_with_the_callable_and_passes_every_keyword_on() -> None:
    def child(*, include: str, exclude: str) -> tuple[Any, ...]:
        return (*seen(), include, exclude)  # keywords named like the selection are the function's own

    async def main() -> Any:
        return await ctxsnap_asyncio.to_thread(
            ctxsnap.wrap(child, exclude=[SECRET]), include="fn's include", exclude="fn's exclude"
        )

    assert in_context(lambda: asyncio.run(main())) == ("kept", None, "", "fn's include", "fn's exclude")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_run_sync_takes_include_and_exclude(backend: str) -> None:
    async def main() -> list[Any]:
        return [await run_sync(seen, "x", exclude=[SECRET]), await run_sync(seen, include=KEPT)]

    assert in_context(lambda: anyio.run(main, backend=backend)) == [("kept", None, "x"), LEFT_OUT]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_run_sync_checks_the_selection(backend: str) -> None:
    async def main() -> None:
        await run_sync(seen, include=[])

    with pytest.raises(ValueError, match="include= is empty"):
        anyio.run(main, backend=backend)


def test_a_selection_for_an_already_wrapped_callable_is_refused() -> None:
    wrapped = ctxsnap.wrap(seen)

    async def on_asyncio() -> None:
        with pytest.raises(TypeError, match=r"run_in_executor\(\) got include=/exclude= for a callable that is"):
            await ctxsnap_asyncio.run_in_executor(None, wrapped, exclude=[SECRET])
        with pytest.raises(TypeError, match=r"run_sync\(\) got include=/exclude= .*ctxsnap.wrap\(fn, include"):
            await run_sync(wrapped, include=[KEPT])

    asyncio.run(on_asyncio())


def test_include_flask_outside_any_request_carries_nothing_not_even_contextvars() -> None:
    # docs/core.md, "A provider with nothing to capture carries nothing": a surprise for a new user, so pinned.
    import flask

    def capture_both() -> tuple[Any, ...]:
        outside = ctxsnap.capture(include=["flask"])
        with flask.Flask("selection").test_request_context("/inside"):
            inside = ctxsnap.capture(include=["flask"])
            inside_with_vars = ctxsnap.capture(include=["flask", "contextvars"])
        return (
            outside.providers,
            outside.run(seen),
            inside.providers,
            inside.run(lambda: (seen(), flask.request.path)),
            inside_with_vars.run(seen),
        )

    assert in_context(capture_both) == (
        (),
        (None, None, ""),
        ("flask.app", "flask.request"),
        ((None, None, ""), "/inside"),
        ("kept", "secret", ""),
    )
