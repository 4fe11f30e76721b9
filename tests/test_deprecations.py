"""Import paths of names that moved in issue 13 keep working, warn, and name the new home.

The Flask and Quart providers moved from ``ctxsnap.adapters`` to ``ctxsnap.providers``, and the app-context fork
helpers from ``ctxsnap._appcontext`` to ``ctxsnap.providers._appcontext``. Code written against the old paths
gets the very same objects, and a DeprecationWarning that says where to import them from now.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import TIMEOUT

ROOT = Path(__file__).resolve().parents[1]

FLASK_MOVES = [
    ("ctxsnap.adapters.flask", name, "ctxsnap.providers.flask")
    for name in ("LAYOUT", "APP_PROVIDER", "REQUEST_PROVIDER")
]
QUART_MOVES = [
    ("ctxsnap.adapters.quart", name, "ctxsnap.providers.quart")
    for name in ("LAYOUT", "MERGED", "AppContextProvider", "_context_var")
]
CORE_MOVES = [
    ("ctxsnap._appcontext", name, "ctxsnap.providers._appcontext")
    for name in (
        "REFUSED_CALLBACKS",
        "copy_state",
        "fork_app_context",
        "fork_request_context",
        "g_values",
        "inherited_values_kept",
        "strip_state",
    )
]


def _check_moved(old: str, name: str, new: str) -> None:
    old_module = importlib.import_module(old)
    message = rf"^{old}\.{name} has moved to {new}\.{name}\. Import it from there"
    with pytest.warns(DeprecationWarning, match=message):
        value = getattr(old_module, name)
    assert value is getattr(importlib.import_module(new), name)


@pytest.mark.parametrize(("old", "name", "new"), CORE_MOVES + FLASK_MOVES)
def test_a_moved_name_warns_and_is_the_object_of_its_new_home(old: str, name: str, new: str) -> None:
    _check_moved(old, name, new)


@pytest.mark.quart
@pytest.mark.parametrize(("old", "name", "new"), QUART_MOVES)
def test_a_moved_quart_name_warns_and_is_the_object_of_its_new_home(old: str, name: str, new: str) -> None:
    _check_moved(old, name, new)


def test_from_import_of_a_moved_name_warns_at_the_importing_line() -> None:
    with pytest.warns(DeprecationWarning, match="ctxsnap.providers.flask.LAYOUT") as record:
        from ctxsnap.adapters.flask import LAYOUT  # noqa: F401
    assert record[0].filename == __file__


def test_a_name_that_never_existed_is_still_an_attribute_error() -> None:
    import ctxsnap.adapters.flask

    with pytest.raises(AttributeError, match="has no attribute 'NOT_A_NAME'"):
        ctxsnap.adapters.flask.NOT_A_NAME  # noqa: B018


def test_providers_stays_callable_after_the_provider_modules_are_imported() -> None:
    # ctxsnap.providers is both the public function and the package of the built-in providers: importing a
    # submodule must not shadow the function (ctxsnap/providers/__init__.py).
    code = (
        "import ctxsnap, flask\n"
        "before = ctxsnap.providers\n"
        "import ctxsnap.providers.flask as flask_providers\n"
        "assert ctxsnap.providers is before\n"
        "names = [p.name for p in ctxsnap.providers()]\n"
        "assert flask_providers.APP_PROVIDER in ctxsnap.providers()\n"
        "print(names)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['contextvars', 'flask.app', 'flask.request']"


@pytest.mark.quart
def test_providers_stays_callable_after_the_quart_provider_module_is_imported() -> None:
    import ctxsnap
    import ctxsnap.providers.quart as quart_providers

    assert callable(ctxsnap.providers)
    assert quart_providers.POLICY is not None
    assert {"quart.app", "quart.request", "quart.websocket"} <= {p.name for p in ctxsnap.providers()}
