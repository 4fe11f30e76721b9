"""The Flask providers load themselves: an app that never imports ``ctxsnap.adapters.flask`` gets Flask semantics.

A user who forgets an import must not silently get different semantics (the design brief): without the
providers, ``copy_context()`` would hand the worker the request's own ``g`` on Flask >= 2.2. Each case runs in
a fresh interpreter, so nothing imported by the test suite can make it pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import TIMEOUT

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
{imports}

app = flask.Flask("lazy")
loaded_before = "ctxsnap.providers.flask" in sys.modules

def task():
    flask.g.user = "worker"
    return [flask.g.user, flask.request.path]

with app.test_request_context("/lazy"), ThreadPoolExecutor(max_workers=1) as pool:
    flask.g.user = "ann"
    seen = pool.submit(ctxsnap.wrap(task)).result({timeout})
    print(json.dumps({{
        "loaded_before": loaded_before,
        "loaded_after": "ctxsnap.providers.flask" in sys.modules,
        "adapter_loaded": "ctxsnap.adapters.flask" in sys.modules,
        "providers": [p.name for p in ctxsnap.providers()],
        "seen": seen,
        "parent_g": flask.g.user,
    }}))
"""


@pytest.mark.parametrize("imports", ["import flask\nimport ctxsnap", "import ctxsnap\nimport flask"])
def test_a_fresh_interpreter_that_never_imports_the_adapter_gets_a_private_g(imports: str) -> None:
    code = textwrap.dedent(PROGRAM).format(imports=imports, timeout=TIMEOUT)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr

    report = json.loads(result.stdout)
    assert report["loaded_before"] is False
    assert report["loaded_after"] is True
    assert report["adapter_loaded"] is False  # the providers come without the adapter's helpers
    assert report["providers"][:3] == ["contextvars", "flask.app", "flask.request"]
    assert report["seen"] == ["worker", "/lazy"]
    assert report["parent_g"] == "ann"


REPLACEMENT = """
import json
import flask
import ctxsnap

class MyAppProvider(ctxsnap.Provider):
    name = "flask.app"
    def capture(self):
        return "mine" if flask.has_app_context() else None
    def apply(self, state):
        return None

ctxsnap.register_provider(MyAppProvider())   # before anything loaded the Flask adapter
app = flask.Flask("replaced")
with app.test_request_context("/"):
    snapshot = ctxsnap.capture()
    print(json.dumps({
        "providers": [[p.name, type(p).__module__] for p in ctxsnap.providers()],
        "captured": list(snapshot.providers),
    }))
"""


def test_a_provider_the_app_registered_first_under_the_same_name_is_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REPLACEMENT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr

    report = json.loads(result.stdout)
    assert report["providers"][1] == ["flask.app", "__main__"]
    # ctxsnap's own request provider, from the module of this Flask's layout (ctxsnap.providers._flask_*).
    assert report["providers"][2][0] == "flask.request"
    assert report["providers"][2][1].startswith("ctxsnap.providers._flask_")
    assert report["captured"] == ["contextvars", "flask.app", "flask.request"]
