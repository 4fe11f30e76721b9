"""The README's conformance matrix must be the one the suite produces: regenerate it, never edit it by hand."""

from __future__ import annotations

import pytest

from . import render, test_semantics
from .catalog import ENTRY_IDS, PROPERTY_KEYS, property_of


def _all_passing() -> render.Outcomes:
    """The matrix the suite gives when every test passes (the suite itself fails otherwise)."""
    results = []
    for name in dir(test_semantics):
        test = getattr(test_semantics, name)
        for entry_id in getattr(test, "conformance_entries", ()):
            results.append((f"{name}[{entry_id}]", True))
    return render.outcomes_from(results)


def test_the_readme_block_is_what_the_suite_renders() -> None:
    readme = render.README.read_text(encoding="utf-8")
    assert render.block_of(readme) == render.table(_all_passing()), (
        "README.md's conformance matrix is out of date with tests/conformance: run "
        "'python3 tests/conformance/render.py' and commit README.md"
    )


def test_every_entry_is_checked_against_every_row_that_applies_to_any_adapter() -> None:
    outcomes = _all_passing()
    rows_per_entry = {entry: {key for (e, key) in outcomes if e == entry} for entry in ENTRY_IDS}
    # Every adapter is tested, on every row of the semantics table that exists for it...
    assert all(rows_per_entry.values())
    assert {key for rows in rows_per_entry.values() for key in rows} == set(PROPERTY_KEYS)
    # ...and the rows an adapter skips are the documented exceptions, not accidents.
    missing = {entry: sorted(set(PROPERTY_KEYS) - rows) for entry, rows in rows_per_entry.items()}
    missing = {entry: rows for entry, rows in missing.items() if rows}
    # A Thread has no next task; Flask's drop-in, like Flask's own decorator, needs a request context.
    threads = ("thread@flask", "instrumented.thread@flask", "instrumented.thread@quart")
    assert missing == {**{thread: ["hygiene"] for thread in threads}, "flask-drop-in@flask": ["no_context"]}, (
        missing
    )


@pytest.mark.parametrize("name", ["test_something", "test_colour__is_blue"])
def test_a_test_outside_the_naming_scheme_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        property_of(name)
