"""The provider plug-in point: registering, replacing and removing providers, the order they capture, apply and
undo in, and what happens when one of them fails.
"""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import ctxsnap
from tests.support import PROCESS_TIMEOUT, TIMEOUT

from .conftest import Register

ROOT = Path(__file__).resolve().parents[2]
work: contextvars.ContextVar[str] = contextvars.ContextVar("core_registry_work")


class Recorder(ctxsnap.Provider):
    """Records every call in a shared journal; optionally fails in one phase."""

    def __init__(self, name: str, journal: list[tuple[str, str, Any]], fail_in: str | None = None) -> None:
        self.name = name
        self.journal = journal
        self.fail_in = fail_in

    def _step(self, phase: str, detail: Any = None) -> None:
        self.journal.append((self.name, phase, detail))
        if phase == self.fail_in:
            raise RuntimeError(f"{self.name} broke in {phase}")

    def capture(self) -> str | None:
        self._step("capture")
        return f"state of {self.name}"

    def apply(self, state: str) -> str:
        self._step("apply", state)
        return f"token of {self.name}"

    def undo(self, state: str, token: Any, exc: BaseException | None) -> None:
        self._step("undo", (state, token, exc))


def phases(journal: list[tuple[str, str, Any]], phase: str) -> list[str]:
    return [name for name, step, _ in journal if step == phase]


def names() -> list[str]:
    return [p.name for p in ctxsnap.providers()]


# -- registering and removing ------------------------------------------------------------------------------


def test_contextvars_is_built_in_and_first() -> None:
    assert names()[0] == "contextvars"


def test_registered_providers_capture_and_apply_in_order_and_undo_in_reverse(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    registered(Recorder("test.reg.first", journal), Recorder("test.reg.second", journal))
    assert names()[-2:] == ["test.reg.first", "test.reg.second"]
    snap = ctxsnap.capture()
    assert snap.providers[-2:] == ("test.reg.first", "test.reg.second")
    assert phases(journal, "capture") == ["test.reg.first", "test.reg.second"]
    assert snap.run(lambda: "result") == "result"
    assert phases(journal, "apply") == ["test.reg.first", "test.reg.second"]
    assert phases(journal, "undo") == ["test.reg.second", "test.reg.first"]
    # apply receives what capture returned; undo receives that state and what apply returned.
    assert ("test.reg.first", "undo", ("state of test.reg.first", "token of test.reg.first", None)) in journal


def test_a_new_registration_applies_to_the_next_capture(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    before = ctxsnap.capture()
    registered(Recorder("test.reg.late", journal))
    assert "test.reg.late" not in before.providers
    assert "test.reg.late" in ctxsnap.capture().providers
    ctxsnap.unregister_provider("test.reg.late")
    assert "test.reg.late" not in ctxsnap.capture().providers


def test_unregister_returns_the_provider_and_removes_it(registered: Register) -> None:
    provider = Recorder("test.reg.removed", [])
    registered(provider)
    assert ctxsnap.unregister_provider("test.reg.removed") is provider
    assert "test.reg.removed" not in names()
    with pytest.raises(
        LookupError,
        match=r"No provider named 'test.reg.removed' is registered\. Pass one of the registered names: ",
    ):
        ctxsnap.unregister_provider("test.reg.removed")


def test_a_duplicate_name_is_refused_unless_replace_which_keeps_the_position(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    original = Recorder("test.reg.dup", journal)
    registered(original, Recorder("test.reg.after", journal))
    with pytest.raises(ValueError, match=r"'test.reg.dup' is already registered\. Unregister it first .*replace="):
        ctxsnap.register_provider(Recorder("test.reg.dup", journal))
    with pytest.raises(ValueError, match="already registered"):
        ctxsnap.register_provider(original)  # the same instance twice, too
    replacement = Recorder("test.reg.dup", journal)
    ctxsnap.register_provider(replacement, replace=True)
    assert names()[-2:] == ["test.reg.dup", "test.reg.after"]
    assert [p for p in ctxsnap.providers() if p.name == "test.reg.dup"] == [replacement]


def test_replace_of_an_unregistered_name_simply_registers(registered: Register) -> None:
    registered(Recorder("test.reg.fresh", []), replace=True)
    assert names()[-1] == "test.reg.fresh"


def test_the_builtin_contextvars_provider_cannot_be_removed_or_replaced() -> None:
    with pytest.raises(ValueError, match=r"cannot be unregistered.*capture\(exclude=\['contextvars'\]\)"):
        ctxsnap.unregister_provider("contextvars")
    with pytest.raises(ValueError, match="cannot be replaced"):
        ctxsnap.register_provider(Recorder("contextvars", []), replace=True)
    assert names()[0] == "contextvars"


class NoApply:
    name = "test.reg.no-apply"

    def capture(self) -> None:
        return None


class AbstractOnly(ctxsnap.Provider):
    name = "test.reg.abstract"


@pytest.mark.parametrize(
    "provider, message",
    [
        (Recorder, r"got the class Recorder, not an instance\. Create one first"),
        (SimpleNamespace(capture=print, apply=print), "has no valid name"),
        (SimpleNamespace(name="", capture=print, apply=print), "got ''"),
        (SimpleNamespace(name="has space", capture=print, apply=print), "dot-separated identifiers"),
        (SimpleNamespace(name="trailing.", capture=print, apply=print), "got 'trailing.'"),
        (SimpleNamespace(name=42, capture=print, apply=print), "got 42"),
        (NoApply(), r"lacks the method\(s\) apply\. Subclass ctxsnap.Provider"),
        (SimpleNamespace(name="test.reg.x"), r"lacks the method\(s\) capture, apply"),
        (SimpleNamespace(name="test.reg.x", capture=print, apply=print, undo="no"), "'undo' .* not callable"),
        (
            SimpleNamespace(name="test.reg.x", capture=print, apply=print, needs_undo=True),
            "'needs_undo' attribute that is not callable",
        ),
        (
            SimpleNamespace(name="test.reg.x", capture=print, apply=print, owned_vars=[work]),
            "invalid 'owned_vars'.*Make it a tuple of ContextVar objects",
        ),
    ],
    ids=[
        "class",
        "no-name",
        "empty-name",
        "space",
        "trailing-dot",
        "int-name",
        "no-apply",
        "no-methods",
        "undo-not-callable",
        "needs-undo-not-callable",
        "owned-vars-list",
    ],
)
def test_malformed_providers_are_refused_and_leave_the_registry_unchanged(provider: Any, message: str) -> None:
    before = ctxsnap.providers()
    with pytest.raises(TypeError, match=message):
        ctxsnap.register_provider(provider)
    assert ctxsnap.providers() == before


def test_the_abc_refuses_a_subclass_missing_methods() -> None:
    with pytest.raises(TypeError, match="abstract"):
        AbstractOnly()  # type: ignore[abstract]


@pytest.mark.parametrize("bad", [42, None, b"name"])
def test_unregister_takes_a_name(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"not a provider name\. Pass the name as a str"):
        ctxsnap.unregister_provider(bad)


def test_replace_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="Pass True or False"):
        ctxsnap.register_provider(Recorder("test.reg.bool", []), replace="yes")  # type: ignore[arg-type]
    assert "test.reg.bool" not in names()


# -- providers that are not subclasses --------------------------------------------------------------------


def test_a_duck_typed_provider_with_instance_attributes_works_including_undo(registered: Register) -> None:
    calls: list[str] = []

    def apply(state: str) -> str:
        calls.append(f"apply {state}")
        return "duck token"

    provider = SimpleNamespace(
        name="test.reg.duck",
        capture=lambda: "duck state",
        apply=apply,
        undo=lambda state, token, exc: calls.append(f"undo {state} {token} {exc!r}"),
    )
    registered(provider)
    ctxsnap.capture().run(calls.append, "work")
    assert calls == ["apply duck state", "work", "undo duck state duck token None"]


def test_a_provider_capturing_none_is_skipped_in_the_child(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []

    class Idle(Recorder):
        def capture(self) -> None:
            self._step("capture")
            return None

    registered(Idle("test.reg.idle", journal))
    snap = ctxsnap.capture()
    assert "test.reg.idle" not in snap.providers
    snap.run(print, end="")
    assert phases(journal, "apply") == [] and phases(journal, "undo") == []


# -- undo and failures ----------------------------------------------------------------------------------------


class TaskFailed(Exception):
    pass


def test_undo_receives_the_task_exception(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    registered(Recorder("test.reg.undo", journal))
    error = TaskFailed("task")

    def fails() -> None:
        raise error

    with pytest.raises(TaskFailed) as info:
        ctxsnap.capture().run(fails)
    assert info.value is error
    (undo,) = [detail for _, step, detail in journal if step == "undo"]
    assert undo[2] is error


class Conditional(Recorder):
    """Only states marked "needs undo" leave something behind; ``needs_undo`` tells the snapshot so."""

    def __init__(self, name: str, journal: list[tuple[str, str, Any]], state: str) -> None:
        super().__init__(name, journal)
        self.state = state

    def capture(self) -> str:
        return self.state

    def needs_undo(self, state: str) -> bool:
        if state == "broken":
            raise ValueError("cannot tell")
        return state == "needs undo"


@pytest.mark.parametrize("state, undone", [("needs undo", True), ("nothing to undo", False)])
def test_needs_undo_decides_per_capture_whether_runs_call_undo(
    registered: Register, state: str, undone: bool
) -> None:
    journal: list[tuple[str, str, Any]] = []
    registered(Conditional("test.reg.conditional", journal, state))
    snap = ctxsnap.capture()
    for _ in range(2):
        snap.run(lambda: None)
    assert phases(journal, "apply") == ["test.reg.conditional"] * 2
    assert phases(journal, "undo") == (["test.reg.conditional"] * 2 if undone else [])


def test_needs_undo_failing_is_a_capture_failure_of_that_provider(registered: Register) -> None:
    registered(Conditional("test.reg.conditional", [], "broken"))
    with pytest.raises(ctxsnap.ProviderError) as info:
        ctxsnap.capture()
    assert (info.value.provider, info.value.phase) == ("test.reg.conditional", "capture")
    assert isinstance(info.value.__cause__, ValueError)


def test_capture_failure_names_the_provider_and_the_way_out(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    registered(Recorder("test.reg.ok", journal), Recorder("test.reg.bad", journal, fail_in="capture"))
    with pytest.raises(ctxsnap.ProviderError) as info:
        ctxsnap.capture()
    assert (info.value.provider, info.value.phase) == ("test.reg.bad", "capture")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "context provider 'test.reg.bad' failed during capture: RuntimeError: test.reg.bad broke" in str(
        info.value
    )
    assert "ctxsnap.capture(exclude=['test.reg.bad'])" in str(info.value)
    assert phases(ctxsnap.capture(exclude="test.reg.bad").run(lambda: journal), "apply") == ["test.reg.ok"]


def test_apply_failure_undoes_everything_applied_before_it_in_reverse(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    registered(
        Recorder("test.reg.a", journal),
        Recorder("test.reg.b", journal),
        Recorder("test.reg.bad", journal, fail_in="apply"),
        Recorder("test.reg.never", journal),
    )
    ran: list[str] = []
    with pytest.raises(ctxsnap.ProviderError) as info:
        ctxsnap.capture().run(ran.append, "task")
    assert (info.value.provider, info.value.phase) == ("test.reg.bad", "apply")
    assert ran == []
    assert phases(journal, "apply") == ["test.reg.a", "test.reg.b", "test.reg.bad"]
    assert phases(journal, "undo") == ["test.reg.b", "test.reg.a"]
    undo_exc = [detail[2] for _, step, detail in journal if step == "undo"]
    assert all(exc is info.value for exc in undo_exc)


def test_undo_failure_after_success_raises_once_every_undo_ran(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    registered(
        Recorder("test.reg.a", journal),
        Recorder("test.reg.bad", journal, fail_in="undo"),
        Recorder("test.reg.c", journal),
    )
    with pytest.raises(ctxsnap.ProviderError) as info:
        ctxsnap.capture().run(lambda: None)
    assert (info.value.provider, info.value.phase) == ("test.reg.bad", "undo")
    assert phases(journal, "undo") == ["test.reg.c", "test.reg.bad", "test.reg.a"]


def test_undo_failure_after_a_task_failure_keeps_the_task_exception(registered: Register) -> None:
    journal: list[tuple[str, str, Any]] = []
    registered(Recorder("test.reg.bad", journal, fail_in="undo"))
    error = TaskFailed("the task's own")

    def fails() -> None:
        raise error

    with pytest.raises(TaskFailed) as info:
        ctxsnap.capture().run(fails)
    assert info.value is error
    assert any("'test.reg.bad' failed during undo" in note for note in info.value.__notes__)


# -- thread safety ------------------------------------------------------------------------------------------


def test_concurrent_registration_and_capture_lose_nothing(registered: Register) -> None:
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads + 1, timeout=TIMEOUT)
    stop = threading.Event()
    journal: list[tuple[str, str, Any]] = []

    def register_many(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            registered(Recorder(f"test.reg.many.t{t}.p{i}", journal))

    def capture_meanwhile() -> list[tuple[str, ...]]:
        barrier.wait()
        seen = []
        while not stop.is_set():
            seen.append(ctxsnap.capture().providers)
        return seen

    with ThreadPoolExecutor(threads + 1) as pool:
        capturing = pool.submit(capture_meanwhile)
        for future in [pool.submit(register_many, t) for t in range(threads)]:
            future.result(timeout=TIMEOUT)
        stop.set()
        captured = capturing.result(timeout=TIMEOUT)
    final = names()
    expected = {f"test.reg.many.t{t}.p{i}" for t in range(threads) for i in range(per_thread)}
    assert expected <= set(final)
    # Each thread's providers keep its registration order, and every capture taken meanwhile saw a registry
    # state that existed: its providers in the final order, with no gap in what one thread had registered.
    assert [n for n in final if n.startswith("test.reg.many.t3.")] == [
        f"test.reg.many.t3.p{i}" for i in range(per_thread)
    ]
    position = {name: index for index, name in enumerate(final)}
    for providers in captured:
        indexes = [position[name] for name in providers]
        assert indexes == sorted(indexes)
        for t in range(threads):
            mine = [n for n in providers if n.startswith(f"test.reg.many.t{t}.")]
            assert mine == [f"test.reg.many.t{t}.p{i}" for i in range(len(mine))]
    assert expected <= set(ctxsnap.capture().providers)


def test_a_framework_adapter_loads_once_when_many_threads_capture_at_once() -> None:
    """Lazy loading under contention: every capture that runs while the adapter is being imported waits for it.

    A stand-in ``flask`` module and a deliberately slow stand-in adapter (served by an import hook in a fresh
    interpreter) keep this independent of the real Flask adapter.
    """
    code = r"""
import importlib.abc, importlib.util, sys, threading, time, types
sys.modules["flask"] = types.ModuleType("flask")
imports = []

class SlowAdapter(importlib.abc.Loader, importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "ctxsnap.providers.flask":
            return importlib.util.spec_from_loader(name, self)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        imports.append(threading.get_ident())
        time.sleep(0.3)  # widen the window in which other threads capture
        import ctxsnap
        class AppProvider(ctxsnap.Provider):
            name = "flask.app"
            def capture(self): return "app"
            def apply(self, state): pass
        ctxsnap.register_provider(AppProvider())

sys.meta_path.insert(0, SlowAdapter())
import ctxsnap
barrier = threading.Barrier(8)
seen = []
def capture():
    barrier.wait()
    seen.append(ctxsnap.capture().providers)
threads = [threading.Thread(target=capture) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(imports), sorted(set(seen)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=PROCESS_TIMEOUT,
        env={"CTXSNAP_DISABLE_ENTRY_POINTS": "1", "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 [('contextvars', 'flask.app')]"


# -- owned variables outlive their provider (issue 11, defect 8) --------------------------------------------------

owned_var: contextvars.ContextVar[list[str]] = contextvars.ContextVar("core_registry_owned")


class PrivateCopy(ctxsnap.Provider):
    """Installs a private copy of ``owned_var`` in the child, like Flask's app provider does with ``g``."""

    name = "core.private"
    owned_vars = (owned_var,)

    def capture(self) -> list[str] | None:
        return owned_var.get(None)

    def apply(self, state: list[str]) -> None:
        owned_var.set(list(state))


class Bare(ctxsnap.Provider):
    name = "core.private"

    def capture(self) -> None:
        return None

    def apply(self, state: Any) -> None:
        return None


def _child_gets_the_parents_object() -> bool:
    parents = ["parent"]
    owned_var.set(parents)
    return ctxsnap.capture().run(lambda: owned_var.get(None) is parents)


def _what_the_child_sees() -> list[str] | None:
    owned_var.set(["parent"])
    return ctxsnap.capture().run(owned_var.get, None)


@pytest.mark.parametrize("how", ["unregister", "replace"])
def test_an_unregistered_or_replaced_provider_never_lets_its_variable_travel_as_the_parents(
    registered: Register, how: str
) -> None:
    registered(PrivateCopy())
    assert contextvars.copy_context().run(_child_gets_the_parents_object) is False
    if how == "unregister":
        ctxsnap.unregister_provider("core.private")
    else:
        registered(Bare(), replace=True)
    # Left out, as if excluded: the child sees no value rather than the parent's own object.
    assert contextvars.copy_context().run(_child_gets_the_parents_object) is False
    assert contextvars.copy_context().run(_what_the_child_sees) is None
    # Registered again, the variable travels again, as the provider's private copy.
    registered(PrivateCopy(), replace=True)
    assert contextvars.copy_context().run(_what_the_child_sees) == ["parent"]
