"""Every public name is real, documented and part of the guide (anyio's check, read from ``__all__``).

``__all__`` is read when the tests are collected, so a name added to it is checked without an edit here. The
API reference (``docs/api.md``) documents each name from its docstring by itself; what a docstring cannot give
is a place in the guide, so a public name that no guide page mentions fails too. ``tests/test_docs.py`` checks
that the built site has an entry for each of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ctxsnap

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: The hand-written pages; api.md is generated from the docstrings and index.md only links the others.
GUIDE = {page.name: page.read_text(encoding="utf-8") for page in sorted(DOCS.glob("*.md"))}
GUIDE.pop("api.md", None)
GUIDE.pop("index.md", None)


def test_the_guide_pages_are_found() -> None:
    # Guards the checks below against passing on an empty set of pages (docs/ moved, a glob that finds nothing).
    assert {"core.md", "flask.md", "async.md"} <= set(GUIDE)


@pytest.mark.parametrize("name", ctxsnap.__all__)
def test_public_name_exists(name: str) -> None:
    assert hasattr(ctxsnap, name), f"ctxsnap.__all__ lists {name!r}, but ctxsnap has no such attribute"


@pytest.mark.parametrize("name", ctxsnap.__all__)
def test_public_name_has_its_own_docstring(name: str) -> None:
    # __doc__ itself, not inspect.getdoc(): getdoc falls back to a base class's docstring, and an exception
    # class documented only by Exception's "Common base class for all non-exit exceptions." is undocumented.
    doc = getattr(ctxsnap, name).__doc__
    assert doc and doc.strip(), f"ctxsnap.{name} has no docstring, so the API reference leaves it out"


@pytest.mark.parametrize("name", ctxsnap.__all__)
def test_public_name_is_mentioned_in_the_guide(name: str) -> None:
    # Either spelled in full (ctxsnap.capture, also inside code examples) or as inline code starting with the
    # name (`ProviderError`, `capture(include=...)`).
    mention = re.compile(rf"\bctxsnap\.{re.escape(name)}\b|`{re.escape(name)}\b")
    pages = [page for page, text in GUIDE.items() if mention.search(text)]
    assert pages, f"no page in docs/ mentions ctxsnap.{name}: say where it fits in the guide"
