"""``Snapshot``: the captured context, and the one place where it is applied.

Every adapter funnels into :meth:`Snapshot.run`. A run enters a fresh copy of the captured
``contextvars.Context``, lets each provider install its state there, calls the function, and undoes what the
providers asked to undo. Because the copy is made per run and thrown away afterwards:

* one wrapped callable can run in many workers at the same time (a ``Context`` can be entered by one thread
  only, which is what breaks a shared ``copy_context()``; pallets/flask#5252, #5396);
* nothing the child sets reaches the parent, a sibling, or the next task on the same worker thread;
* the worker's own context is restored by ``Context.run`` even when the task raises.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
from collections.abc import Callable, Iterable
from contextvars import Context, ContextVar
from types import AsyncGeneratorType, CoroutineType, FunctionType, TracebackType
from typing import Any, Final, NoReturn, ParamSpec, TypeVar

from . import _provider
from ._contextvars import ContextVarsProvider, rebuild_context, without
from ._errors import ProviderError, SnapshotClosedError

__all__ = ["Snapshot", "capture", "is_wrapped", "refuse_selection_for_wrapped", "wrap"]

P = ParamSpec("P")
R = TypeVar("R")

Selection = str | ContextVar[Any] | Iterable[str | ContextVar[Any]] | None

#: The contextvars provider is the base layer of every snapshot rather than one provider among others: its
#: captured Context is what each run enters.
CONTEXTVARS: Final = ContextVarsProvider()
_provider.register_provider(CONTEXTVARS)

_REPR_MAX_VARS: Final = 20


class _Plan:
    """Which providers a capture asks, and which variables it leaves out; cached for the default capture."""

    __slots__ = ("drop_vars", "only_vars", "providers", "undo", "use_base", "version")

    def __init__(
        self,
        version: int,
        providers: tuple[Any, ...],
        drop_vars: frozenset[ContextVar[Any]] = frozenset(),
        only_vars: frozenset[ContextVar[Any]] | None = None,
    ) -> None:
        self.version = version
        self.use_base = CONTEXTVARS in providers
        self.providers = tuple(p for p in providers if p is not CONTEXTVARS)
        #: id() of each provider with an undo of its own, with its ``needs_undo`` check (None: always needed).
        #: Keyed by id: a duck-typed provider need not be hashable.
        self.undo: dict[int, Callable[[Any], bool] | None] = {
            id(p): _provider.needs_undo_check(p) for p in self.providers if _provider.has_own_undo(p)
        }
        self.drop_vars = drop_vars
        self.only_vars = only_vars


#: A plan no registry version matches, so its first use builds the real one.
_STALE_PLAN: Final = _Plan(-1, ())

_REGISTRY: Final = _provider._registry


def _plan_for(include: Selection, exclude: Selection) -> _Plan:
    _REGISTRY.load_pending()
    # The version first: the registry publishes the providers before bumping it, so a change racing with this
    # read leaves a plan that looks stale (and is rebuilt), never a stale plan that looks current.
    version = _REGISTRY.version
    registered = _REGISTRY.providers
    released = _REGISTRY.released_vars  # owned by an unregistered provider: never carried as the parent's
    if include is None and exclude is None:
        return _Plan(version, registered, released)

    include_names, include_vars = _split_selection("include", include)
    exclude_names, exclude_vars = _split_selection("exclude", exclude)
    if include is not None and not include_names and not include_vars:
        # Most likely a list that was meant to hold something; a snapshot carrying nothing would fail quietly.
        raise ValueError(
            "include= is empty, so the snapshot would carry nothing; leave include out (None) to carry every "
            "provider, or name the providers and/or ContextVars to carry"
        )
    for argument, names in (("include", include_names), ("exclude", exclude_names)):
        for name in names:
            if not _provider.known_name(name):
                known = ", ".join(repr(p.name) for p in registered)
                raise ValueError(
                    f"{argument}= names an unknown provider {name!r}; registered providers are {known} "
                    "(a prefix such as 'flask' selects all of its providers)"
                )
    if include_vars and _provider.select(exclude_names, CONTEXTVARS.name):
        raise ValueError(
            "include= names ContextVar objects but exclude= leaves out the 'contextvars' provider that carries "
            "them; drop one of the two"
        )
    for name in include_names:
        if _provider.select(exclude_names, name):
            raise ValueError(
                f"include= names {name!r} and exclude= leaves it out again; drop one of the two (exclude= may "
                "narrow an include=d prefix, as in include=['flask'], exclude=['flask.request'])"
            )
    for variable in include_vars:
        if variable in exclude_vars:
            raise ValueError(
                f"the ContextVar {variable.name!r} is both in include= and in exclude=; drop one of the two"
            )

    if include is None:
        selected = registered
    else:
        selected = tuple(
            p
            for p in registered
            if _provider.select(include_names, p.name) or (include_vars and p is CONTEXTVARS)
        )
        if not selected:
            # Framework names are always "known" (so exclude=["quart"] works in a Flask app), which lets
            # include=["quart"] through in a process without Quart: refused like include=[], for the same reason.
            _raise_selects_nothing(include_names)
    kept = tuple(p for p in selected if not _provider.select(exclude_names, p.name))
    if include is not None and not kept:
        raise ValueError(
            f"exclude= leaves out every provider that include= selects ({', '.join(p.name for p in selected)}), "
            "so the snapshot would carry nothing; drop the exclude= entries that remove them, or include more"
        )
    selected = kept
    drop = set(exclude_vars) | released
    for p in registered:
        if p not in selected:
            drop.update(getattr(p, "owned_vars", ()))
    return _Plan(version, selected, frozenset(drop), frozenset(include_vars) if include_vars else None)


def _raise_selects_nothing(names: list[str]) -> NoReturn:
    shown = ", ".join(repr(name) for name in names)
    # Only framework names get this far: any other known name is a registered provider or a prefix of one.
    frameworks = sorted({name.partition(".")[0] for name in names})
    missing = [framework for framework in frameworks if framework not in sys.modules]
    if missing:
        which = " and ".join(missing)
        raise ValueError(
            f"include= names only {shown}, but {which} {'is' if len(missing) == 1 else 'are'} not imported in "
            "this process, so nothing it names is registered and the snapshot would carry nothing, not even "
            f"ContextVars; import {which} before capturing (before building the executor or Thread that takes "
            "this include=), or leave include out to carry whatever is in use (add 'contextvars' to include= to "
            "carry ContextVars in any case)"
        )
    raise ValueError(
        f"include= names only {shown}, but no provider by that name is registered any more (it was "
        "unregistered), so the snapshot would carry nothing, not even ContextVars; register it again, or leave "
        "include out to carry whatever is registered"
    )


def _split_selection(argument: str, value: Selection) -> tuple[list[str], list[ContextVar[Any]]]:
    if value is None:
        return [], []
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(
            f"{argument}= takes provider names as str, got {type(value).__name__} {value!r}; decode it first, "
            f"for example {argument}=[{value.decode(errors='replace')!r}]"
        )
    items: Iterable[Any] = (value,) if isinstance(value, (str, ContextVar)) else value
    try:
        items = list(items)
    except TypeError:
        raise TypeError(
            f"{argument}= takes provider names and/or ContextVar objects (one, or an iterable of them), "
            f"got {type(value).__name__}"
        ) from None
    names: list[str] = []
    variables: list[ContextVar[Any]] = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, ContextVar):
            variables.append(item)
        else:
            raise TypeError(
                f"{argument}= entries must be provider names (str) or ContextVar objects, got {item!r} "
                f"of type {type(item).__name__}"
            )
    return names, variables


class Snapshot:
    """The context captured at one moment, ready to be applied wherever work runs.

    Get one from :func:`ctxsnap.capture`. Use it bare, or as ``with capture() as snap:``; leaving the block
    seals it, after which :meth:`wrap` and :meth:`run` raise :class:`SnapshotClosedError` while callables
    wrapped inside the block keep working.
    """

    __slots__ = ("__weakref__", "_base", "_entries", "_sealed", "_undo")

    _base: Context | None
    _entries: tuple[tuple[Any, Any], ...]
    _sealed: bool
    _undo: frozenset[int]

    def __init__(self, *, include: Selection = None, exclude: Selection = None) -> None:
        # Snapshot(...) is the same as capture(...); capture() itself skips __init__ on its hot path.
        _fill(self, _plan_for(include, exclude))

    # -- the public surface -------------------------------------------------------------------------------

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return a callable that runs ``fn`` inside this snapshot, with ``fn``'s signature and metadata.

        The result can be called any number of times, from any number of threads at once: each call gets its
        own fresh copy of the captured context.
        """
        if self._sealed:
            _raise_sealed("wrap")
        check_callable("wrap", fn)
        return wrap_checked(self, fn)

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` now, in the current thread, inside a fresh copy of this snapshot."""
        if self._sealed:
            _raise_sealed("run")
        check_callable("run", fn)
        return self._run(fn, args, kwargs)

    def close(self) -> None:
        """Seal the snapshot: later :meth:`wrap`/:meth:`run` raise; already wrapped callables still run."""
        self._sealed = True

    @property
    def sealed(self) -> bool:
        return self._sealed

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers that captured something, ``"contextvars"`` first when it is included."""
        names = tuple(p.name for p, _ in self._entries)
        return (CONTEXTVARS.name, *names) if self._base is not None else names

    def __enter__(self) -> Snapshot:
        if self._sealed:
            _raise_sealed("__enter__")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Names only, never values: snapshots end up in logs and error reports, values may be secrets.
        parts = [f"providers={list(self.providers)!r}"]
        if self._base is not None:
            names = sorted(var.name for var in self._base)
            shown = names[:_REPR_MAX_VARS]
            more = f", ... {len(names) - len(shown)} more" if len(names) > len(shown) else ""
            parts.append(f"vars=[{', '.join(shown)}{more}]")
        if self._sealed:
            parts.append("sealed")
        return f"<ctxsnap.Snapshot {' '.join(parts)}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "a ctxsnap.Snapshot cannot be pickled: it holds live objects of this process (the request, g, "
            "ContextVar values) that mean nothing in another one. Capture in the process that runs the work, "
            "or send the plain values you need."
        )

    # -- the hot path -------------------------------------------------------------------------------------

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        base = self._base
        context = base.copy() if base is not None else Context()
        try:
            if not self._entries:
                result = context.run(fn, *args, **kwargs)
            elif self._undo:
                result = context.run(self._apply_run_undo, fn, args, kwargs)
            else:
                result = context.run(self._apply_run, fn, args, kwargs)
        except BaseException as exc:
            # A traceback keeps every frame it passed through, with its locals: a failed task's Future kept
            # for later, or an error report that records locals (Sentry's default), would otherwise keep and
            # show the captured values (g, ContextVars) through this snapshot and the run's context.
            _forget_captured(exc)
            del self, base, context
            raise
        if type(result) in _ASYNC_RESULTS:
            _refuse_async_result(fn, result)
        return result

    def _apply_run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        for provider, state in self._entries:
            try:
                provider.apply(state)
            except Exception as exc:
                raise ProviderError(provider.name, "apply", exc) from exc
        return fn(*args, **kwargs)

    def _apply_run_undo(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        applied: list[tuple[Any, Any, Any]] = []
        undoing = self._undo
        try:
            for provider, state in self._entries:
                try:
                    token = provider.apply(state)
                except Exception as exc:
                    raise ProviderError(provider.name, "apply", exc) from exc
                if id(provider) in undoing:
                    applied.append((provider, state, token))
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _undo_all(applied, exc)
            raise
        _undo_all(applied, None)
        return result


def _undo_all(applied: list[tuple[Any, Any, Any]], exc: BaseException | None) -> None:
    """Undo in reverse order; every provider gets its undo even if an earlier one fails.

    A ``BaseException`` from an undo (``SystemExit`` from a teardown function, ``KeyboardInterrupt``) still lets
    the remaining undos run, and is re-raised after them: it must not leave a pushed context behind.
    """
    failure: ProviderError | None = None
    interrupt: BaseException | None = None
    for provider, state, token in reversed(applied):
        undo = getattr(provider, "undo", None)
        if undo is None:
            continue
        try:
            undo(state, token, exc)
        except BaseException as undo_exc:
            if not isinstance(undo_exc, Exception):
                if interrupt is None:
                    interrupt = undo_exc
                continue
            if exc is not None:
                # The task's own exception wins: it propagates unchanged, and the failed undo is noted on it.
                _note_undo_failure(exc, provider.name, undo_exc)
            elif failure is None:
                failure = ProviderError(provider.name, "undo", undo_exc)
                failure.__cause__ = undo_exc
    try:
        if interrupt is not None:
            raise interrupt
        if failure is not None:
            raise failure
    finally:
        # The raised error's traceback holds this frame: without this, error -> frame -> error is a cycle that
        # keeps the snapshot's state alive until the cyclic GC runs.
        failure = interrupt = None


def _note_undo_failure(exc: BaseException, provider: str, undo_exc: Exception) -> None:
    try:
        exc.add_note(str(ProviderError(provider, "undo", undo_exc)))
    except Exception:
        # Some exceptions refuse notes (a frozen dataclass exception, a __notes__ that is not a list). The
        # task's exception still reaches the caller unchanged and the other undos still run: losing the note
        # is the lesser harm.
        pass


#: The frames of the run path, whose locals hold captured state (the providers' states, the snapshot).
_RUN_PATH_CODES: Final = frozenset(
    {Snapshot._apply_run.__code__, Snapshot._apply_run_undo.__code__, _undo_all.__code__}
)


def _forget_captured(exc: BaseException) -> None:
    """Clear the locals of the finished run-path frames that ``exc`` (and what it chains) passed through."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        pending += (error.__cause__, error.__context__)
        tb = error.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code in _RUN_PATH_CODES:
                try:
                    tb.tb_frame.clear()
                except RuntimeError:
                    pass  # still executing: an outer run whose undo ran this one; it clears its own frames
            tb = tb.tb_next


#: What a sync function returns when it is really an async one in disguise (a lambda returning a coroutine, a
#: partial of an async method): its body would run later, in some event loop, outside the snapshot.
_ASYNC_RESULTS: Final = frozenset({CoroutineType, AsyncGeneratorType})


def _refuse_async_result(fn: object, result: Any) -> NoReturn:
    if type(result) is CoroutineType:
        result.close()  # never started: closing it runs nothing, and spares a "never awaited" RuntimeWarning
    kind = "a coroutine" if type(result) is CoroutineType else "an async generator"
    raise TypeError(
        f"{_callable_name(fn)}() returned {kind} instead of a result. Its body would run later, outside the "
        "snapshot: await async code directly; ctxsnap runs sync functions in threads."
    )


def _fill(snapshot: Snapshot, plan: _Plan) -> Snapshot:
    base: Context | None = None
    if plan.use_base:
        base = contextvars.copy_context()
        if plan.drop_vars:
            base = without(base, plan.drop_vars)
        if plan.only_vars is not None:
            base = rebuild_context(base, plan.only_vars.__contains__)
    snapshot._base = base
    snapshot._sealed = False
    if not plan.providers:
        snapshot._entries = ()
        snapshot._undo = _NO_UNDO
        return snapshot
    entries: list[tuple[Any, Any]] = []
    undo = plan.undo
    undoing: list[int] | None = None
    for provider in plan.providers:
        try:
            state = provider.capture()
        except Exception as exc:
            # The error's traceback keeps this frame and its locals: what was captured must not show up in a
            # report that records locals (Sentry's default), nor live on with the error.
            state = base = None
            _abandon(snapshot, entries)
            raise ProviderError(provider.name, "capture", exc) from exc
        if state is None:
            continue
        entries.append((provider, state))
        # Whether runs need the undo step is decided here, once per capture, in the same loop (a second pass
        # cost a third of the capture): a run only pays for it when a provider has something to undo for this
        # state (Flask's app provider only in teardown mode).
        if undo and id(provider) in undo:
            check = undo[id(provider)]
            try:
                needed = check is None or check(state)
            except Exception as exc:  # part of capturing: it names the provider like a failing capture()
                state = base = None  # as for a failing capture() above
                _abandon(snapshot, entries)
                raise ProviderError(provider.name, "capture", exc) from exc
            if needed:
                if undoing is None:
                    undoing = []
                undoing.append(id(provider))
    snapshot._entries = tuple(entries)
    snapshot._undo = _NO_UNDO if undoing is None else frozenset(undoing)
    return snapshot


_NO_UNDO: Final[frozenset[int]] = frozenset()


def _abandon(snapshot: Snapshot, entries: list[tuple[Any, Any]]) -> None:
    """Empty a snapshot whose capture failed, so that it holds nothing and its repr still works."""
    entries.clear()
    snapshot._base = None
    snapshot._entries = ()
    snapshot._undo = _NO_UNDO


def _raise_sealed(method: str) -> NoReturn:
    raise SnapshotClosedError(
        f"Snapshot.{method}() was called after the snapshot was sealed (its 'with' block ended). Wrap "
        "the work inside the block, or take a new snapshot with ctxsnap.capture()."
    )


#: An async function (or async generator function) returns without running its body; the body would run later,
#: in whatever loop awaits it, outside the snapshot.
_ASYNC_FLAGS: Final = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def check_callable(method: str, fn: object, before: str = "") -> None:
    """Refuse what ``method`` could not run inside a snapshot: a non-callable, or an async callable.

    ``before`` is what precedes the function in a correct call (``"target="`` for ``Thread``), so that the
    example in the message is a call that would work.
    """
    # Plain functions are the common case and one flag test answers for them; inspect handles the rest.
    if type(fn) is FunctionType:
        if fn.__code__.co_flags & _ASYNC_FLAGS:
            _raise_async(method, fn)
        return
    if not callable(fn):
        raise TypeError(
            f"{method}() expects a callable, got {type(fn).__name__} {_short_repr(fn)}; pass the function "
            f"itself, for example {method}({before}fn), not {method}({before}fn())"
        )
    if (
        inspect.iscoroutinefunction(fn)
        or inspect.isasyncgenfunction(fn)
        # An instance with an async __call__, but not a class that has one: calling the class only builds an
        # instance, synchronously, which is what the caller gets back.
        or (
            not inspect.isroutine(fn)
            and not isinstance(fn, type)
            and inspect.iscoroutinefunction(getattr(fn, "__call__", None))
        )
    ):
        _raise_async(method, fn)


def _raise_async(method: str, fn: object) -> NoReturn:
    raise TypeError(
        f"{method}() got the async callable {_callable_name(fn)!r}: calling it "
        "only creates a coroutine or async generator, whose body would run later, outside the snapshot. "
        "ctxsnap runs sync functions in threads; await async code directly."
    )


def _callable_name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", type(fn).__qualname__))


def check_executor(
    method: str, executor: object, example: str, *, none_means: str = "", carries: bool = False
) -> None:
    """Refuse what ``method`` cannot hand work to: anything but a thread-side ``concurrent.futures`` executor.

    Anything with a callable ``submit`` passes, as ``loop.run_in_executor`` accepts any executor. ``example``
    is a correct call with ``{}`` where the executor goes; ``none_means`` is set when ``None`` is accepted;
    ``carries`` is set where ``carrier=`` is the way to use a process pool.
    """
    if isinstance(executor, type):
        # The class has a callable submit too; unchecked, the mistake surfaces at the first submit as an
        # AttributeError or a missing-argument TypeError from deep inside the executor.
        name = executor.__qualname__
        raise TypeError(
            f"{method}() takes an executor instance, got the class {name}; create one first: "
            f"{example.format(name + '()')}"
        )
    # Refused outright rather than left to fail at pickling, whose message names some object deep inside the
    # snapshot, not the choice of executor. Looked up in sys.modules: naming concurrent.futures.ProcessPoolExecutor
    # would import multiprocessing, and while its module is not loaded no process pool can exist.
    process = sys.modules.get("concurrent.futures.process")
    if process is not None and isinstance(executor, process.ProcessPoolExecutor):
        if carries:
            raise TypeError(
                f"{method}() cannot use a ProcessPoolExecutor without a carrier. A snapshot holds live objects "
                "(request, g, ContextVar values) that cannot be sent to another process: declare what crosses "
                "with a ctxsnap.Carrier and pass carrier=, or use a thread pool such as "
                "ctxsnap.ThreadPoolExecutor()"
            )
        raise TypeError(
            f"{method}() cannot use a ProcessPoolExecutor: a snapshot holds live objects of this process "
            "(request, g, ContextVar values) that cannot be sent to another process; use a thread pool such as "
            "ctxsnap.ThreadPoolExecutor(), or submit to the process pool directly with plain values"
        )
    if not callable(getattr(executor, "submit", None)):
        accepted = f" or None ({none_means})" if none_means else ""
        raise TypeError(
            f"{method}() takes a concurrent.futures.Executor{accepted}, got {type(executor).__name__} "
            f"{_short_repr(executor)}; pass an executor instance such as concurrent.futures.ThreadPoolExecutor()"
        )


def _short_repr(value: object) -> str:
    # The value is shown to say what went wrong, but it may be a large or secret object: keep it short.
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def runner(snapshot: Snapshot) -> Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]:
    """``run(fn, args, kwargs)`` without the public checks, for adapters that checked ``fn`` already.

    Executors hand it to their worker as it is: no wrapper function is built per task, which spares
    ``functools.wraps`` (about a microsecond) where nobody ever sees the wrapper's metadata.
    """
    return snapshot._run


def wrap_checked(snapshot: Snapshot, fn: Callable[P, R]) -> Callable[P, R]:
    """``snapshot.wrap(fn)`` for adapters that checked ``fn`` themselves, to name their own call in the error."""
    if not snapshot._entries:
        # The common case (contextvars only, or a framework with nothing active) gets a wrapper with one
        # frame less: a fresh copy of the captured context per call, and the call.
        return _make_plain_wrapper(snapshot._base, fn)
    return _make_wrapper(snapshot._run, fn)


def _make_wrapper(
    run: Callable[[Callable[P, R], tuple[Any, ...], dict[str, Any]], R], fn: Callable[P, R]
) -> Callable[P, R]:
    @functools.wraps(fn)
    def ctxsnap_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run(fn, args, kwargs)

    return ctxsnap_wrapper


def _make_plain_wrapper(base: Context | None, fn: Callable[P, R]) -> Callable[P, R]:
    fresh_context = base.copy if base is not None else Context

    @functools.wraps(fn)
    def ctxsnap_wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        result = fresh_context().run(fn, *args, **kwargs)
        if type(result) in _ASYNC_RESULTS:
            _refuse_async_result(fn, result)
        return result

    return ctxsnap_wrapper


#: Every wrapper shares one of these code objects, which makes "is this already wrapped?" a set lookup.
_WRAPPER_CODES: Final = frozenset(
    {
        _make_wrapper(lambda fn, args, kwargs: None, print).__code__,
        _make_plain_wrapper(None, print).__code__,
        # runner(snapshot) is the bound Snapshot._run, and bound methods expose their function's __code__: an
        # executor stacked on another (ContextExecutor over ctxsnap.ThreadPoolExecutor) passes it through.
        Snapshot._run.__code__,
    }
)


def is_wrapped(fn: object) -> bool:
    """Whether ``fn`` came from :meth:`Snapshot.wrap` (so it carries its own snapshot already)."""
    return getattr(fn, "__code__", None) in _WRAPPER_CODES


def capture(*, include: Selection = None, exclude: Selection = None) -> Snapshot:
    """Capture the current context: every ContextVar, and whatever the active providers carry.

    ``include`` keeps only the named providers (a prefix such as ``"flask"`` selects all of Flask's) and/or
    only the given ContextVar objects; ``exclude`` leaves providers or individual ContextVars out.
    """
    if include is None and exclude is None:
        return _capture_everything()  # the hot path: nothing to validate, a plan cached until the registry changes
    return _fill(_new_snapshot(Snapshot), _plan_for(include, exclude))


_new_snapshot: Final = object.__new__


class PlannedCapture:
    """``capture(include=..., exclude=...)`` for a selection fixed in advance, as executors and threads hold.

    The selection is checked when this is built, so a bad one fails at ``ContextExecutor(...)`` or
    ``Thread(...)`` and not at the first submit or start; it is copied, so a generator is not used up by the
    first capture; and its plan is rebuilt only when the registry changes, not at every submit.
    """

    __slots__ = ("_exclude", "_include", "_plan")

    def __init__(self, include: Selection = None, exclude: Selection = None, *, check_now: bool = True) -> None:
        self._include = _frozen_selection("include", include)
        self._exclude = _frozen_selection("exclude", exclude)
        # check_now=False is for the module-level default capture: planning loads the entry points, which
        # must not happen at "import ctxsnap" (a broken plug-in would break the import itself).
        self._plan = _plan_for(self._include, self._exclude) if check_now else _STALE_PLAN

    def __call__(self) -> Snapshot:
        registry = _REGISTRY
        if not registry.settled and len(sys.modules) != registry.modules_seen:
            registry.load_pending()
        plan = self._plan
        if plan.version != registry.version:
            plan = self._plan = _plan_for(self._include, self._exclude)
        return _fill(_new_snapshot(Snapshot), plan)


def _frozen_selection(argument: str, value: Selection) -> Selection:
    if value is None or isinstance(value, (str, ContextVar)):
        return value
    names, variables = _split_selection(argument, value)
    return (*names, *variables)


_capture_everything: Final = PlannedCapture(check_now=False)


def wrap(fn: Callable[P, R], *, include: Selection = None, exclude: Selection = None) -> Callable[P, R]:
    """``capture(include=..., exclude=...).wrap(fn)``: capture now, return ``fn`` bound to that snapshot.

    Also the way to choose what a helper that passes keyword arguments on to ``fn`` carries (asyncio's and
    Quart's ``to_thread``): hand it ``ctxsnap.wrap(fn, include=...)``, which it runs as it is.
    """
    return capture(include=include, exclude=exclude).wrap(fn)


def refuse_selection_for_wrapped(method: str) -> NoReturn:
    """Refuse ``include``/``exclude`` given to ``method`` beside a callable that carries its own snapshot."""
    raise TypeError(
        f"{method}() got include=/exclude= for a callable that is already wrapped. It runs in the snapshot it "
        "was wrapped with: pass the plain function, or select when wrapping, as in ctxsnap.wrap(fn, include=...)."
    )
