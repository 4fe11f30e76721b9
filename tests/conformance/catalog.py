"""What the conformance matrix is made of: the properties (columns) and the adapters (rows), as plain data.

Kept free of pytest and of every framework so that ``render.py`` can lay out the README table under any
interpreter. The behaviour of each adapter lives in ``runners.py``; a test's property is the first part of its
name (``test_g__...`` belongs to the ``g`` column), so a test cannot end up in the table under the wrong row.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The rows of DESIGN.md's semantics table, in its order: (test-name prefix, column heading).
PROPERTIES: tuple[tuple[str, str], ...] = (
    ("contextvars", "contextvars"),
    ("g", "`g`"),
    ("request", "request, session, websocket"),
    ("current_app", "current_app"),
    ("no_context", "no context"),
    ("teardown", "teardown"),
    ("reuse", "reuse"),
    ("hygiene", "worker hygiene"),
    ("late_child", "late child"),
    ("sealing", "sealing"),
    ("errors", "errors"),
    ("privacy", "privacy"),
)
PROPERTY_KEYS: tuple[str, ...] = tuple(key for key, _ in PROPERTIES)


@dataclass(frozen=True)
class Entry:
    """One row of the matrix: an adapter, run from inside one framework's contexts."""

    id: str  # the pytest id, e.g. "asyncio.to_thread@quart"
    adapter: str  # the README's adapter column
    host: str  # "flask" or "quart": whose request/app context the parent holds

    @property
    def label(self) -> str:
        return f"{self.adapter} | {self.host.capitalize()}"


ENTRIES: tuple[Entry, ...] = (
    Entry("snapshot.run@flask", "`Snapshot.run` in a pool thread", "flask"),
    Entry("thread@flask", "`ctxsnap.Thread`", "flask"),
    Entry("context-executor@flask", "`ctxsnap.ContextExecutor`", "flask"),
    Entry("thread-pool@flask", "`ctxsnap.ThreadPoolExecutor`", "flask"),
    Entry("flask-drop-in@flask", "`ctxsnap_flask.copy_current_request_context`", "flask"),
    Entry("asyncio.to_thread@flask", "`ctxsnap.adapters.asyncio.to_thread`", "flask"),
    Entry("asyncio.run_in_executor@flask", "`ctxsnap.adapters.asyncio.run_in_executor`", "flask"),
    Entry("anyio.run_sync-asyncio@flask", "`ctxsnap.adapters.anyio.run_sync` (asyncio)", "flask"),
    Entry("anyio.run_sync-trio@flask", "`ctxsnap.adapters.anyio.run_sync` (trio)", "flask"),
    Entry("quart.to_thread@quart", "`ctxsnap.adapters.quart.to_thread`", "quart"),
    Entry("asyncio.to_thread@quart", "`ctxsnap.adapters.asyncio.to_thread`", "quart"),
    Entry("asyncio.run_in_executor@quart", "`ctxsnap.adapters.asyncio.run_in_executor`", "quart"),
    Entry("anyio.run_sync-asyncio@quart", "`ctxsnap.adapters.anyio.run_sync` (asyncio)", "quart"),
    # The standard hand-offs while ctxsnap.instrument() is on: unmodified code, the same table.
    Entry("instrumented.thread@flask", "`threading.Thread` (instrumented)", "flask"),
    Entry("instrumented.submit@flask", "`ThreadPoolExecutor.submit` (instrumented)", "flask"),
    Entry("instrumented.map@flask", "`ThreadPoolExecutor.map` (instrumented)", "flask"),
    Entry("instrumented.asyncio.to_thread@flask", "`asyncio.to_thread` (instrumented)", "flask"),
    Entry("instrumented.run_in_executor@flask", "`loop.run_in_executor(pool)` (instrumented)", "flask"),
    Entry("instrumented.run_in_executor-default@flask", "`loop.run_in_executor(None)` (instrumented)", "flask"),
    Entry(
        "instrumented.anyio.run_sync-asyncio@flask", "`anyio.to_thread.run_sync` (asyncio, instrumented)", "flask"
    ),
    Entry("instrumented.anyio.run_sync-trio@flask", "`anyio.to_thread.run_sync` (trio, instrumented)", "flask"),
    Entry("instrumented.thread@quart", "`threading.Thread` (instrumented)", "quart"),
    Entry("instrumented.submit@quart", "`ThreadPoolExecutor.submit` (instrumented)", "quart"),
    Entry("instrumented.map@quart", "`ThreadPoolExecutor.map` (instrumented)", "quart"),
    Entry("instrumented.asyncio.to_thread@quart", "`asyncio.to_thread` (instrumented)", "quart"),
    Entry("instrumented.run_in_executor@quart", "`loop.run_in_executor(pool)` (instrumented)", "quart"),
    Entry("instrumented.run_in_executor-default@quart", "`loop.run_in_executor(None)` (instrumented)", "quart"),
    Entry(
        "instrumented.anyio.run_sync-asyncio@quart", "`anyio.to_thread.run_sync` (asyncio, instrumented)", "quart"
    ),
)
ENTRY_IDS: tuple[str, ...] = tuple(entry.id for entry in ENTRIES)


def property_of(test_name: str) -> str:
    """The column a test belongs to, from its name: ``test_<property>__<what it checks>``."""
    base = test_name.split("[", 1)[0]
    if not base.startswith("test_") or "__" not in base:
        raise ValueError(f"conformance test {test_name!r} must be named test_<property>__<what it checks>")
    key = base[len("test_") :].split("__", 1)[0]
    if key not in PROPERTY_KEYS:
        raise ValueError(
            f"conformance test {test_name!r} names the unknown property {key!r}; known: {PROPERTY_KEYS}"
        )
    return key
