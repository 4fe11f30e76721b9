"""The Quart extension (``ctxsnap.adapters.quart.CtxSnap``): the same surface as the Flask adapter's.

``init_app`` registers it and fills in the config defaults; a bad setting fails at start-up saying what to use,
or, when changed on a running app, fails the capture naming the provider. What the settings do to a snapshot is
in ``tests/providers/quart/test_quart_policy.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import ctxsnap
from tests.support import run

if TYPE_CHECKING:
    from quart import Quart

pytestmark = pytest.mark.quart


def test_the_extension_registers_itself_and_fills_in_the_defaults(app: Quart) -> None:
    from ctxsnap.adapters.quart import CtxSnap

    extension = CtxSnap(app)
    assert app.extensions["ctxsnap"] is extension
    assert (app.config["CTXSNAP_G"], app.config["CTXSNAP_TEARDOWN"]) == ("copy", False)


def test_init_app_works_from_an_application_factory(app: Quart) -> None:
    from ctxsnap.adapters.quart import CtxSnap

    extension = CtxSnap()
    extension.init_app(app)
    assert app.extensions["ctxsnap"] is extension


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"CTXSNAP_G": "deep"}, ValueError, r"Unknown g policy 'deep'.*must be 'copy' .* or 'share'"),
        ({"CTXSNAP_TEARDOWN": "yes"}, TypeError, r"teardown got 'yes'.*must be True or False"),
        ({"CTXSNAP_G": "share", "CTXSNAP_TEARDOWN": True}, ValueError, r"'share' cannot be combined"),
    ],
)
def test_a_bad_setting_fails_at_start_up_saying_what_to_use(
    app: Quart, config: dict[str, Any], error: type[Exception], message: str
) -> None:
    from ctxsnap.adapters.quart import CtxSnap

    app.config.update(config)
    with pytest.raises(error, match=message):
        CtxSnap(app)


def test_the_extension_refuses_a_flask_app_and_points_to_the_flask_one() -> None:
    import flask

    from ctxsnap.adapters.quart import CtxSnap

    with pytest.raises(TypeError, match=r"quart\.Quart application, got Flask.*ctxsnap\.adapters\.flask\.CtxSnap"):
        CtxSnap(flask.Flask("not quart"))  # type: ignore[arg-type]


def test_a_setting_changed_on_a_running_app_to_a_bad_value_fails_the_capture_naming_the_provider(
    app: Quart,
) -> None:
    from ctxsnap.adapters.quart import CtxSnap

    CtxSnap(app)

    async def main() -> None:
        async with app.test_request_context("/items/1"):
            app.config["CTXSNAP_G"] = "deep"
            with pytest.raises(ctxsnap.ProviderError, match=r"'quart\.app' failed during capture.*'deep'"):
                ctxsnap.capture()

    run(main())
