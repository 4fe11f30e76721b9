"""Fixtures of the Quart adapter's tests: an app that records its lifecycle (helpers live in ``quart_support``).

Every module here needs Quart and carries the ``quart`` marker. In the Flask-only cells, whose marker expression
deselects ``quart``, the modules are not even imported (Quart is not installed there): importing them would be
an error before deselection could happen. Where the expression selects ``quart``, a missing Quart fails loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import Lifecycle


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if "not quart" in (config.getoption("markexpr") or "") and collection_path.name.startswith("test_"):
        return True
    return None


@pytest.fixture
def lifecycle() -> Lifecycle:
    return Lifecycle()


@pytest.fixture
def app(lifecycle: Lifecycle) -> Any:
    import quart

    app = quart.Quart(__name__)
    app.config["SECRET_KEY"] = "test only"
    app.testing = True

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return str(item_id)

    # Async callbacks run on the loop (Quart sends sync ones to its executor): their recorded thread is where
    # the lifecycle step really happened.
    @app.teardown_request
    async def record_teardown_request(exc: BaseException | None) -> None:
        lifecycle.record("teardown_request", exc)

    @app.teardown_appcontext
    async def record_teardown_appcontext(exc: BaseException | None) -> None:
        lifecycle.record("teardown_appcontext", exc)

    return app
