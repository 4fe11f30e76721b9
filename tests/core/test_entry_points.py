"""Third-party providers discovered through the ``ctxsnap.providers`` entry-point group.

Each test writes a real installed distribution (a ``*.dist-info`` directory with ``entry_points.txt``, the way
pip leaves one) into a temporary directory and runs a fresh interpreter with that directory on ``sys.path``, so
discovery goes through ``importlib.metadata`` exactly as it does for an installed plug-in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import PROCESS_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = """
import contextvars
import ctxsnap

span = contextvars.ContextVar("plugin_span")

class SpanProvider(ctxsnap.Provider):
    name = "test.ep.span"
    owned_vars = (span,)

    def capture(self):
        value = span.get(None)
        return None if value is None else value + " (via plugin)"

    def apply(self, state):
        span.set(state)

instance = SpanProvider()

def factory():
    return SpanProvider()

class Misnamed(SpanProvider):
    name = "test.ep.other"
"""

# What the child thread sees, and which providers were active, printed for the test to compare.
SCRIPT = """
import threading, ctxsnap
from ctxsnap_test_plugin import span
span.set("parent span")
snap = ctxsnap.capture()
seen = []
thread = threading.Thread(target=lambda: seen.append(snap.run(span.get, None)))
thread.start(); thread.join()
print([p.name for p in ctxsnap.providers()], seen[0])
"""


def write_distribution(site: Path, entry_points: dict[str, str], module: str = PLUGIN) -> None:
    """Install a distribution by hand: the module, plus the metadata pip would write next to it."""
    (site / "ctxsnap_test_plugin.py").write_text(module)
    info = site / "ctxsnap_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ctxsnap-test-plugin\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ctxsnap.providers]\n{lines}")


def run_python(site: Path, code: str, *args: str, disable: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CTXSNAP_DISABLE_ENTRY_POINTS"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    if disable:
        env["CTXSNAP_DISABLE_ENTRY_POINTS"] = "1"
    command = [sys.executable, *args] if args else [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=PROCESS_TIMEOUT)


@pytest.mark.parametrize(
    "target",
    ["ctxsnap_test_plugin:SpanProvider", "ctxsnap_test_plugin:instance", "ctxsnap_test_plugin:factory"],
    ids=["class", "instance", "factory"],
)
def test_an_installed_plugin_is_discovered_and_carries_its_context(tmp_path: Path, target: str) -> None:
    write_distribution(tmp_path, {"test.ep.span": target})
    result = run_python(tmp_path, SCRIPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['contextvars', 'test.ep.span'] parent span (via plugin)"


def test_the_plugin_can_be_excluded_like_any_provider(tmp_path: Path) -> None:
    write_distribution(tmp_path, {"test.ep.span": "ctxsnap_test_plugin:SpanProvider"})
    result = run_python(tmp_path, SCRIPT.replace("ctxsnap.capture()", 'ctxsnap.capture(exclude=["test.ep"])'))
    assert result.returncode == 0, result.stderr
    # Its own variable is stripped too, so the child sees nothing of it.
    assert result.stdout.strip() == "['contextvars', 'test.ep.span'] None"


def test_discovery_can_be_switched_off(tmp_path: Path) -> None:
    write_distribution(tmp_path, {"test.ep.span": "ctxsnap_test_plugin:SpanProvider"})
    result = run_python(tmp_path, SCRIPT, disable=True)
    assert result.returncode == 0, result.stderr
    # The variable still travels as a plain ContextVar; only the plugin's own step is missing.
    assert result.stdout.strip() == "['contextvars'] parent span"
    diagnostic = run_python(tmp_path, "", "-m", "ctxsnap", disable=True)
    assert "third-party providers: not loaded (CTXSNAP_DISABLE_ENTRY_POINTS is set)" in diagnostic.stdout
    assert "test.ep.span" not in diagnostic.stdout


def test_a_provider_registered_by_hand_before_the_first_capture_wins(tmp_path: Path) -> None:
    write_distribution(tmp_path, {"test.ep.span": "ctxsnap_test_plugin:SpanProvider"})
    code = """
    import ctxsnap, ctxsnap_test_plugin as plugin
    class Mine(plugin.SpanProvider):
        def capture(self):
            return "mine"
    mine = Mine()
    ctxsnap.register_provider(mine)
    print([p is mine for p in ctxsnap.providers() if p.name == "test.ep.span"])
    """
    result = run_python(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[True]"


BROKEN_CAPTURE = """
import ctxsnap
for attempt in range(2):
    try:
        ctxsnap.capture()
    except ctxsnap.ProviderError as exc:
        print(attempt, exc.provider, exc.phase, "|", exc)
"""


def test_a_plugin_that_fails_to_import_fails_every_capture_with_the_fix(tmp_path: Path) -> None:
    write_distribution(
        tmp_path,
        {"test.ep.broken": "ctxsnap_test_plugin:SpanProvider"},
        module="raise ImportError('the plugin needs a library that is missing')\n",
    )
    result = run_python(tmp_path, BROKEN_CAPTURE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    # Not once and then silently without it: the second capture fails the same way.
    assert [line.split(" |")[0] for line in lines] == ["0 test.ep.broken load", "1 test.ep.broken load"]
    assert "ImportError: the plugin needs a library that is missing" in lines[0]
    assert "test.ep.broken = ctxsnap_test_plugin:SpanProvider" in lines[0]
    assert "fix or uninstall the package that declares it, or set CTXSNAP_DISABLE_ENTRY_POINTS=1" in lines[0]


def test_an_entry_point_whose_name_differs_from_its_provider_is_refused(tmp_path: Path) -> None:
    write_distribution(tmp_path, {"test.ep.span": "ctxsnap_test_plugin:Misnamed"})
    result = run_python(tmp_path, BROKEN_CAPTURE)
    assert result.returncode == 0, result.stderr
    assert "Entry point 'test.ep.span' loads a provider named 'test.ep.other'. Give the two the same name." in (
        result.stdout
    )


def test_an_entry_point_that_is_not_a_provider_is_refused(tmp_path: Path) -> None:
    write_distribution(tmp_path, {"test.ep.span": "ctxsnap_test_plugin:span"})
    result = run_python(tmp_path, BROKEN_CAPTURE)
    assert result.returncode == 0, result.stderr
    assert "0 test.ep.span load" in result.stdout


def test_the_diagnostic_lists_a_plugin_and_reports_a_broken_one(tmp_path: Path) -> None:
    working = tmp_path / "working"
    broken = tmp_path / "broken"
    working.mkdir()
    broken.mkdir()
    write_distribution(working, {"test.ep.span": "ctxsnap_test_plugin:SpanProvider"})
    write_distribution(broken, {"test.ep.broken": "ctxsnap_test_plugin:Nothing"}, module="")
    result = run_python(working, "", "-m", "ctxsnap")
    assert result.returncode == 0, result.stderr
    assert "test.ep.span" in result.stdout.splitlines()[-1]
    result = run_python(broken, "", "-m", "ctxsnap")
    assert result.returncode == 0, result.stderr
    assert "loading providers failed: ProviderError: context provider 'test.ep.broken' failed during load" in (
        result.stdout
    )


# What the first capture reads from disk: an audit hook records every file opened, directory listed and module
# imported while it runs. anyio's blocking-call detector failed two of anyio's own tests when the first capture,
# on the event loop, scanned every installed distribution's metadata for entry points (issue 11).
FIRST_CAPTURE = """
import importlib.metadata, json, sys
import ctxsnap
from ctxsnap_test_plugin import span

recording = []
def hook(event, args):
    if recording and event in ("open", "os.listdir", "os.scandir", "import"):
        recording[0].append([event, str(args[0])])
sys.addaudithook(hook)

def record(fn):
    events = []
    recording.append(events)
    try:
        result = fn()
    finally:
        recording.clear()
    return result, events

span.set("parent span")
snapshot, during_capture = record(ctxsnap.capture)
_, during_discovery = record(lambda: list(importlib.metadata.entry_points(group="ctxsnap.providers")))
print(json.dumps({
    "during_capture": during_capture,
    "providers": list(snapshot.providers),
    "discovery_reads_files": bool(during_discovery),
}))
"""


def test_the_first_capture_reads_no_file_the_plugins_were_loaded_at_import(tmp_path: Path) -> None:
    write_distribution(tmp_path, {"test.ep.span": "ctxsnap_test_plugin:SpanProvider"})
    result = run_python(tmp_path, FIRST_CAPTURE)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["discovery_reads_files"]  # the hook does see what an entry-point scan reads
    assert report["during_capture"] == []
    assert report["providers"] == ["contextvars", "test.ep.span"]  # and the plug-in is there all the same


def test_a_broken_plugin_does_not_break_import_ctxsnap_and_its_failure_reads_no_file(tmp_path: Path) -> None:
    write_distribution(
        tmp_path,
        {"test.ep.broken": "ctxsnap_test_plugin:SpanProvider"},
        module="raise ImportError('the plugin needs a library that is missing')\n",
    )
    code = """
    import sys
    import ctxsnap
    events = []
    watched = ("open", "os.listdir", "import")
    sys.addaudithook(lambda event, args: events.append(event) if event in watched else None)
    try:
        ctxsnap.capture()
    except ctxsnap.ProviderError as exc:
        print(exc.phase, events)
    """
    result = run_python(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "load []"
