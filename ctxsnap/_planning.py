"""Capture planning: which providers a capture asks, and which ContextVars it leaves out.

``include=``/``exclude=`` are checked and turned into a :class:`Plan` once, not at every capture: the default
capture and every :class:`~ctxsnap._capture.PlannedCapture` keep their plan until the registry's version
moves. The registry is read through its own methods and attributes (``load_pending``, ``version``,
``providers``, ``released_vars``), never through its private state.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, Final, NoReturn

from . import _provider
from ._contextvars import ContextVarsProvider
from ._registry import registry

__all__ = ["CONTEXTVARS", "STALE_PLAN", "Capture", "Plan", "Selection", "frozen_selection", "plan_for"]

Selection = str | ContextVar[Any] | Iterable[str | ContextVar[Any]] | None
#: How a plan holds a provider: (provider, its undo check or None, its bound capture, its bound apply).
Capture = tuple[Any, Callable[[Any], bool] | None, Callable[[], Any], Callable[[Any], Any]]

#: The contextvars provider is the base layer of every snapshot rather than one provider among others: its
#: captured Context is what each run enters.
CONTEXTVARS: Final = ContextVarsProvider()
_provider.register_provider(CONTEXTVARS)


def always_undo(state: Any) -> bool:
    """The undo check of a provider that has an ``undo`` and no ``needs_undo``: every run undoes."""
    return True


class Plan:
    """Which providers a capture asks, and which variables it leaves out; cached for the default capture."""

    __slots__ = ("bare", "captures", "drop_vars", "only_vars", "plain_base", "providers", "use_base", "version")

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
        #: Each provider with what decides whether runs need its undo (None when it has no undo of its own,
        #: else its ``needs_undo``, ``always_undo`` without one), its ``capture`` and its ``apply``: looked up
        #: once per plan, not at every capture and every run (issue 14).
        self.captures: tuple[Capture, ...] = tuple((p, _undo_check(p), p.capture, p.apply) for p in self.providers)
        self.drop_vars = drop_vars
        self.only_vars = only_vars
        #: Every ContextVar is carried as it is: the base is one ``copy_context()``.
        self.plain_base = self.use_base and not drop_vars and only_vars is None
        #: Nothing but every ContextVar: a capture is one ``copy_context()`` (the contextvars-only hot path).
        self.bare = self.plain_base and not self.providers


def _undo_check(provider: Any) -> Callable[[Any], bool] | None:
    if not _provider.has_own_undo(provider):
        return None
    return _provider.needs_undo_check(provider) or always_undo


#: A plan no registry version matches, so its first use builds the real one.
STALE_PLAN: Final = Plan(-1, ())


def plan_for(include: Selection, exclude: Selection) -> Plan:
    """Check ``include``/``exclude`` against the registry and build the plan they ask for."""
    registry.load_pending()
    # The version first: the registry publishes the providers before bumping it, so a change racing with this
    # read leaves a plan that looks stale (and is rebuilt), never a stale plan that looks current.
    version = registry.version
    registered = registry.providers
    released = registry.released_vars  # owned by an unregistered provider: never carried as the parent's
    if include is None and exclude is None:
        return Plan(version, registered, released)
    include_names, include_vars = split_selection("include", include)
    exclude_names, exclude_vars = split_selection("exclude", exclude)
    if include is not None and not include_names and not include_vars:
        # Most likely a list that was meant to hold something; a snapshot carrying nothing would fail quietly.
        raise ValueError(
            "include= is empty, so the snapshot would carry nothing. Name the providers or ContextVars to "
            "carry, or leave include out (None) to carry every provider."
        )
    _check_names(registered, include_names, exclude_names)
    _check_conflicts(include_names, include_vars, exclude_names, exclude_vars)
    kept = _kept(registered, include is not None, include_names, include_vars, exclude_names)
    drop = set(exclude_vars) | released
    for p in registered:
        if p not in kept:
            drop.update(getattr(p, "owned_vars", ()))
    return Plan(version, kept, frozenset(drop), frozenset(include_vars) if include_vars else None)


def _kept(
    registered: tuple[Any, ...],
    including: bool,
    include_names: list[str],
    include_vars: list[ContextVar[Any]],
    exclude_names: list[str],
) -> tuple[Any, ...]:
    selected = _included(registered, include_names, include_vars) if including else registered
    kept = tuple(p for p in selected if not _provider.select(exclude_names, p.name))
    if including and not kept:
        raise ValueError(
            f"exclude= leaves out every provider that include= selects ({', '.join(p.name for p in selected)}). "
            "Drop the exclude= entries that remove them, or include more."
        )
    return kept


def _check_names(registered: tuple[Any, ...], include_names: list[str], exclude_names: list[str]) -> None:
    for argument, names in (("include", include_names), ("exclude", exclude_names)):
        for name in names:
            if not _provider.known_name(name):
                known = ", ".join(repr(p.name) for p in registered)
                raise ValueError(
                    f"{argument}= names an unknown provider {name!r}. Check the spelling; the registered "
                    f"providers are {known} (a prefix such as 'flask' selects all of its providers)."
                )


def _check_conflicts(
    include_names: list[str],
    include_vars: list[ContextVar[Any]],
    exclude_names: list[str],
    exclude_vars: list[ContextVar[Any]],
) -> None:
    if include_vars and _provider.select(exclude_names, CONTEXTVARS.name):
        raise ValueError(
            "include= names ContextVar objects, but exclude= drops 'contextvars'. Keep 'contextvars', the "
            "provider that carries them, or drop one of the two."
        )
    for name in include_names:
        if _provider.select(exclude_names, name):
            raise ValueError(
                f"include= names {name!r} and exclude= leaves it out again. Remove it from one of the two "
                "(exclude= may narrow an include=d prefix, as in include=['flask'], exclude=['flask.request'])."
            )
    for variable in include_vars:
        if variable in exclude_vars:
            raise ValueError(
                f"The ContextVar {variable.name!r} is in both include= and exclude=. "
                "Remove it from one of the two."
            )


def _included(
    registered: tuple[Any, ...], include_names: list[str], include_vars: list[ContextVar[Any]]
) -> tuple[Any, ...]:
    selected = tuple(
        p for p in registered if _provider.select(include_names, p.name) or (include_vars and p is CONTEXTVARS)
    )
    if not selected:
        # Framework names are always "known" (so exclude=["quart"] works in a Flask app), which lets
        # include=["quart"] through in a process without Quart: refused like include=[], for the same reason.
        _raise_selects_nothing(include_names)
    return selected


def _raise_selects_nothing(names: list[str]) -> NoReturn:
    shown = ", ".join(repr(name) for name in names)
    # Only framework names get this far: any other known name is a registered provider or a prefix of one.
    frameworks = sorted({name.partition(".")[0] for name in names})
    missing = [framework for framework in frameworks if framework not in sys.modules]
    if missing:
        which = " and ".join(missing)
        raise ValueError(
            f"include= names only {shown}, but {which} {'is' if len(missing) == 1 else 'are'} not imported. "
            f"Import {which} before capturing (before building the executor or Thread that takes this include=), "
            "or leave include out to carry whatever is in use; the snapshot would carry nothing, not even "
            "ContextVars (add 'contextvars' to include= to carry them in any case)."
        )
    raise ValueError(
        f"include= names only {shown}, which is no longer registered. Register it again, or leave include out "
        "to carry whatever is registered; the snapshot would carry nothing, not even ContextVars."
    )


def split_selection(argument: str, value: Selection) -> tuple[list[str], list[ContextVar[Any]]]:
    if value is None:
        return [], []
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(
            f"{argument}= takes provider names as str, got {type(value).__name__} {value!r}. Decode it first, "
            f"for example {argument}=[{value.decode(errors='replace')!r}]."
        )
    items: Iterable[Any] = (value,) if isinstance(value, (str, ContextVar)) else value
    try:
        items = list(items)
    except TypeError:
        raise TypeError(
            f"{argument}= takes provider names or ContextVar objects, got {type(value).__name__}. Pass one, or "
            "an iterable of them."
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
                f"{argument}= got {item!r} of type {type(item).__name__} as an entry. Pass provider names (str) "
                "or ContextVar objects."
            )
    return names, variables


def frozen_selection(argument: str, value: Selection) -> Selection:
    """``value`` checked, and copied so that a generator is not used up by the first capture."""
    if value is None or isinstance(value, (str, ContextVar)):
        return value
    names, variables = split_selection(argument, value)
    return (*names, *variables)
