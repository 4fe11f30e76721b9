"""What the Quart providers' and the Quart adapter's tests share: an app that records its lifecycle, a way to
run a coroutine in a fresh context, and the rule that keeps Quart's test modules out of the Flask-only cells.

The fixtures and the collection hook are defined here once and taken in by ``tests/providers/quart/conftest.py``
and ``tests/adapters/quart/conftest.py``. Every test module there needs Quart and carries the ``quart`` marker.
In the Flask-only cells, whose marker expression deselects ``quart``, the modules are not even imported (Quart is
not installed there): importing them would be an error before deselection could happen. Where the expression
selects ``quart``, a missing Quart fails loudly. This module itself imports Quart only inside the fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.support import Lifecycle

if TYPE_CHECKING:
    from quart import Quart

T = TypeVar("T")


def skip_quart_modules_where_quart_is_deselected(collection_path: Path, config: pytest.Config) -> bool | None:
    """A ``pytest_ignore_collect`` hook: where the marker expression says ``not quart``, test modules are not
    imported at all (a conftest takes it in with ``from tests.quart_support import ... as pytest_ignore_collect``).
    """
    if "not quart" in (config.getoption("markexpr") or "") and collection_path.name.startswith("test_"):
        return True
    return None


@pytest.fixture
def lifecycle() -> Lifecycle:
    return Lifecycle()


@pytest.fixture
def app(lifecycle: Lifecycle) -> Quart:
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
