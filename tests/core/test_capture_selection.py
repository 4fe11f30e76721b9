"""``capture(include=..., exclude=...)``: choosing providers by name or prefix, keeping or dropping single
ContextVars, and refusing selections that are wrong, unknown or contradictory.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import inspect
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ctxsnap
from tests.support import PROCESS_TIMEOUT, TIMEOUT

from .conftest import Register

ROOT = Path(__file__).resolve().parents[2]

kept: contextvars.ContextVar[str] = contextvars.ContextVar("core_selection_kept")
dropped: contextvars.ContextVar[str] = contextvars.ContextVar("core_selection_dropped")
other: contextvars.ContextVar[str] = contextvars.ContextVar("core_selection_other")

alpha_var: contextvars.ContextVar[str] = contextvars.ContextVar("core_selection_alpha")
beta_var: contextvars.ContextVar[str] = contextvars.ContextVar("core_selection_beta")


class OwnVarProvider(ctxsnap.Provider):
    """Installs its own ContextVar in the child, as the Flask provider installs Flask's app context."""

    def __init__(self, name: str, var: contextvars.ContextVar[str]) -> None:
        self.name = name
        self.var = var
        self.owned_vars = (var,)

    def capture(self) -> str | None:
        value = self.var.get(None)
        return None if value is None else f"{value} (applied)"

    def apply(self, state: str) -> None:
        self.var.set(state)


@pytest.fixture
def family(registered: Register) -> None:
    """Two providers under one prefix, ``test.sel.alpha`` and ``test.sel.beta``, each with a value to carry."""
    registered(OwnVarProvider("test.sel.alpha", alpha_var), OwnVarProvider("test.sel.beta", beta_var))
    alpha_var.set("alpha")
    beta_var.set("beta")


def seen() -> dict[str, str | None]:
    variables = (kept, dropped, other, alpha_var, beta_var)
    return {var.name.removeprefix("core_selection_"): var.get(None) for var in variables}


@pytest.fixture(autouse=True)
def values() -> None:
    kept.set("k")
    dropped.set("d")
    other.set("o")


def in_thread(snap: ctxsnap.Snapshot) -> dict[str, str | None]:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(snap.run, seen).result(timeout=TIMEOUT)


# -- providers by name and prefix ------------------------------------------------------------------------


@pytest.mark.usefixtures("family")
def test_everything_is_carried_by_default() -> None:
    assert in_thread(ctxsnap.capture()) == {
        "kept": "k",
        "dropped": "d",
        "other": "o",
        "alpha": "alpha (applied)",
        "beta": "beta (applied)",
    }


@pytest.mark.usefixtures("family")
def test_include_none_and_exclude_none_are_the_default_capture() -> None:
    # ctxsnap.wrap(fn) passes them on as None; the compiled capture() takes its fast path for them too.
    everything = in_thread(ctxsnap.capture())
    assert in_thread(ctxsnap.capture(include=None, exclude=None)) == everything
    assert in_thread(ctxsnap.capture(exclude=None)) == everything


@pytest.mark.usefixtures("family")
def test_a_provider_registered_after_a_capture_is_carried_by_the_next_one(registered: Register) -> None:
    ctxsnap.capture()  # the default capture's plan is cached now
    late: contextvars.ContextVar[str] = contextvars.ContextVar("core_selection_late")
    registered(OwnVarProvider("test.sel.late", late))
    late.set("late")
    assert ctxsnap.capture().run(late.get) == "late (applied)"
    assert "test.sel.late" in ctxsnap.capture().providers


def test_capture_reads_as_the_function_it_is_documented_as() -> None:
    # On both implementations: the compiled capture() is a builtin named, documented and signed as the Python one.
    assert ctxsnap.capture.__name__ == "capture"
    assert (ctxsnap.capture.__doc__ or "").startswith("Capture the current context")
    parameters = inspect.signature(ctxsnap.capture).parameters
    assert [(p.name, p.kind, p.default) for p in parameters.values()] == [
        ("include", inspect.Parameter.KEYWORD_ONLY, None),
        ("exclude", inspect.Parameter.KEYWORD_ONLY, None),
    ]


def test_capture_refuses_what_its_signature_refuses() -> None:
    with pytest.raises(TypeError, match="positional"):
        ctxsnap.capture(["flask"])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="colour"):
        ctxsnap.capture(colour=None)  # type: ignore[call-arg]


@pytest.mark.usefixtures("family")
def test_include_a_provider_by_full_name_carries_only_it() -> None:
    snap = ctxsnap.capture(include=["test.sel.alpha"])
    assert snap.providers == ("test.sel.alpha",)
    # contextvars is not included, so no variable travels except what the included provider installs.
    assert in_thread(snap) == {
        "kept": None,
        "dropped": None,
        "other": None,
        "alpha": "alpha (applied)",
        "beta": None,
    }


@pytest.mark.usefixtures("family")
def test_a_prefix_selects_every_provider_under_it_and_a_single_string_is_one_name() -> None:
    snap = ctxsnap.capture(include="test.sel")
    assert snap.providers == ("test.sel.alpha", "test.sel.beta")
    assert in_thread(snap)["beta"] == "beta (applied)"
    # A prefix matches whole dotted parts only: "test.se" is not a prefix of "test.sel.alpha".
    with pytest.raises(ValueError, match="unknown provider 'test.se'"):
        ctxsnap.capture(include="test.se")


@pytest.mark.usefixtures("family")
def test_exclude_a_provider_strips_the_variables_it_owns() -> None:
    """Without stripping, the child would still see the parent's value through the copied context."""
    result = in_thread(ctxsnap.capture(exclude=["test.sel.alpha"]))
    assert result["alpha"] is None
    assert result["beta"] == "beta (applied)"
    assert result["kept"] == "k"


@pytest.mark.usefixtures("family")
def test_exclude_may_narrow_an_included_prefix() -> None:
    snap = ctxsnap.capture(include=["contextvars", "test.sel"], exclude=["test.sel.beta"])
    assert snap.providers == ("contextvars", "test.sel.alpha")
    assert in_thread(snap) == {"kept": "k", "dropped": "d", "other": "o", "alpha": "alpha (applied)", "beta": None}


@pytest.mark.usefixtures("family")
def test_exclude_contextvars_carries_providers_only() -> None:
    snap = ctxsnap.capture(exclude="contextvars")
    assert "contextvars" not in snap.providers
    assert in_thread(snap) == {
        "kept": None,
        "dropped": None,
        "other": None,
        "alpha": "alpha (applied)",
        "beta": "beta (applied)",
    }


def test_framework_names_are_accepted_while_the_framework_is_not_in_use() -> None:
    # A Flask-only app may exclude Quart (and the reverse) without importing it.
    for name in ("flask", "quart", "flask.request", "quart.websocket"):
        ctxsnap.capture(exclude=[name])


# -- single ContextVars ----------------------------------------------------------------------------------


def test_exclude_a_contextvar_drops_only_it() -> None:
    assert in_thread(ctxsnap.capture(exclude=dropped))["dropped"] is None
    result = in_thread(ctxsnap.capture(exclude=[dropped, other]))
    assert (result["kept"], result["dropped"], result["other"]) == ("k", None, None)
    assert dropped.get() == "d"  # the parent keeps it


def test_include_contextvars_keeps_only_them() -> None:
    result = in_thread(ctxsnap.capture(include=kept))
    assert (result["kept"], result["dropped"], result["other"]) == ("k", None, None)
    snap = ctxsnap.capture(include=[kept, other])
    assert "core_selection_dropped" not in repr(snap)
    assert (in_thread(snap)["other"], in_thread(snap)["dropped"]) == ("o", None)


def test_excluding_a_variable_that_is_not_set_is_fine() -> None:
    unset: contextvars.ContextVar[str] = contextvars.ContextVar("core_selection_unset")
    assert in_thread(ctxsnap.capture(exclude=unset))["kept"] == "k"


def test_any_iterable_works_once_and_generators_are_not_used_up_by_an_executor() -> None:
    assert in_thread(ctxsnap.capture(exclude=(v for v in [dropped])))["dropped"] is None

    def generator() -> Iterator[contextvars.ContextVar[str]]:
        yield dropped

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        executor = ctxsnap.ContextExecutor(pool, exclude=generator())
        for _ in range(3):
            assert executor.submit(seen).result(timeout=TIMEOUT)["dropped"] is None


# -- refused selections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selection, message",
    [
        (42, r"takes provider names or ContextVar objects, got int\. Pass one"),
        ([42], r"got 42 of type int as an entry\. Pass provider names \(str\) or ContextVar objects"),
        (["contextvars", b"bytes"], r"got b'bytes' of type bytes"),
        ([ctxsnap.Provider], r"as an entry\. Pass provider names"),
    ],
    ids=["int", "list-of-int", "bytes-entry", "provider-class"],
)
@pytest.mark.parametrize("argument", ["include", "exclude"])
def test_bad_types_are_refused(argument: str, selection: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ctxsnap.capture(**{argument: selection})
    with pytest.raises(TypeError, match=message):
        ctxsnap.Thread(target=print, **{argument: selection})


@pytest.mark.parametrize("name", ["nope", "flsk", "flask.requets", "contextvar", "", "test.sel.alpha"])
@pytest.mark.parametrize("argument", ["include", "exclude"])
def test_unknown_names_are_refused_with_the_registered_names(argument: str, name: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"{argument}= names an unknown provider {name!r}\. Check the spelling; the registered providers "
        r"are 'contextvars'",
    ):
        ctxsnap.capture(**{argument: [name]})


def test_an_empty_include_is_refused() -> None:
    with pytest.raises(ValueError, match=r"include= is empty, so the snapshot would carry nothing"):
        ctxsnap.capture(include=[])


# -- a framework named in include= that is not in use -----------------------------------------------------
#
# These run in a fresh interpreter: the test process has long imported Flask (and, in most cells, Quart), and
# "not imported yet" is the state under test. Real Flask is used, because every cell installs it.


def run_fresh(code: str) -> list[str]:
    """Run ``code`` in a new interpreter with no third-party providers; return its printed lines."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=PROCESS_TIMEOUT,
        env={"CTXSNAP_DISABLE_ENTRY_POINTS": "1", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_including_only_a_framework_that_is_not_imported_is_refused_not_carried_empty() -> None:
    lines = run_fresh("""
        import concurrent.futures, contextvars, ctxsnap
        contextvars.ContextVar("request_id").set("r1")
        for make in (lambda: ctxsnap.capture(include=["flask"]),
                     lambda: ctxsnap.capture(include="flask.request"),
                     lambda: ctxsnap.Thread(target=print, include=["flask"]),
                     lambda: ctxsnap.ContextExecutor(concurrent.futures.ThreadPoolExecutor(1), include=["flask"])):
            try:
                make()
            except ValueError as exc:
                print(exc)
            else:
                print("accepted")
        print(ctxsnap.capture(include=["flask", "contextvars"]).providers)
        print(ctxsnap.capture(exclude=["contextvars"]).providers)
    """)
    assert len(lines) == 6
    for line in lines[:4]:
        assert "but flask is not imported." in line
        assert "would carry nothing, not even ContextVars" in line
        assert "Import flask before capturing" in line and "leave include out" in line
    assert lines[0].startswith("include= names only 'flask', but")
    assert lines[1].startswith("include= names only 'flask.request', but")
    # With something else to carry, naming a framework that is not in use is fine (as exclude= of one is).
    assert lines[4] == "('contextvars',)"
    # Only include= is held to carrying something: exclude= alone may leave nothing, as it always could.
    assert lines[5] == "()"


def test_a_framework_imported_later_is_selectable_from_then_on_even_before_its_adapter_loaded() -> None:
    lines = run_fresh("""
        import concurrent.futures, sys, ctxsnap
        pool = concurrent.futures.ThreadPoolExecutor(1)
        try:
            ctxsnap.ContextExecutor(pool, include=["flask"])
        except ValueError:
            print("refused before the import")
        import flask
        print("ctxsnap.providers.flask" in sys.modules)
        app = flask.Flask("fresh")
        with app.app_context():
            print(ctxsnap.capture(include=["flask"]).providers)
            executor = ctxsnap.ContextExecutor(pool, include=["flask"])
            print(executor.submit(lambda: flask.current_app.name).result())
    """)
    # The adapter was not loaded when flask was imported: the include= check itself loads it.
    assert lines == ["refused before the import", "False", "('flask.app',)", "fresh"]


def test_the_check_runs_whenever_the_plan_is_built_so_unregistering_makes_the_next_submit_raise() -> None:
    lines = run_fresh("""
        import concurrent.futures, flask, ctxsnap
        executor = ctxsnap.ContextExecutor(concurrent.futures.ThreadPoolExecutor(1), include=["flask"])
        print(executor.submit(int).result())
        ctxsnap.unregister_provider("flask.app")
        ctxsnap.unregister_provider("flask.request")
        for call in (lambda: executor.submit(int), lambda: ctxsnap.capture(include=["flask"])):
            try:
                call()
            except ValueError as exc:
                print(exc)
    """)
    assert lines[0] == "0"
    assert len(lines) == 3
    for line in lines[1:]:
        assert line.startswith("include= names only 'flask', which is no longer registered.")
        assert "Register it again, or leave include out" in line


@pytest.mark.usefixtures("family")
def test_an_exclude_that_removes_everything_include_selects_is_refused() -> None:
    message = r"exclude= leaves out every provider that include= selects \(test.sel.alpha, test.sel.beta\)\. Drop"
    with pytest.raises(ValueError, match=message):
        ctxsnap.capture(include=["test.sel"], exclude=["test.sel.alpha", "test.sel.beta"])


@pytest.mark.usefixtures("family")
@pytest.mark.parametrize(
    "include, exclude, message",
    [
        (["test.sel.alpha"], ["test.sel.alpha"], "include= names 'test.sel.alpha' and exclude= leaves it out"),
        (["test.sel.alpha"], ["test.sel"], "include= names 'test.sel.alpha' and exclude= leaves it out"),
        (["contextvars"], "contextvars", "include= names 'contextvars' and exclude= leaves it out"),
        ([kept], [kept], "The ContextVar 'core_selection_kept' is in both include= and exclude="),
        ([kept], ["contextvars"], "exclude= drops 'contextvars'. Keep 'contextvars'"),
    ],
    ids=["same-name", "excluded-prefix", "contextvars", "same-variable", "variables-without-contextvars"],
)
def test_contradictory_selections_are_refused(include: Any, exclude: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        ctxsnap.capture(include=include, exclude=exclude)
    assert "one of the two" in str(info.value)
