"""Sphinx configuration for the ctxsnap documentation site.

The pages are the Markdown files beside this one (read by MyST-Parser), so the docs a reader browses on the
repository and the built site are the same text. ``api.md`` is generated from the docstrings by autodoc.

The build is strict: ``sphinx-build -W`` turns every warning into an error, and ``tests/test_docs.py`` runs it
in the main matrix cell. That is also the link check for the project's own pages: MyST warns about a link to a
page or a heading anchor that does not exist, and nitpicky mode about a docstring reference that resolves to
nothing. External URLs are not fetched (the build runs offline); ``linkcheck_ignore`` keeps them out of
``sphinx-build -b linkcheck`` too, so that builder checks the local targets only.
"""

from __future__ import annotations

import importlib.metadata

project = "ctxsnap"
author = "The ctxsnap developers"
copyright = "The ctxsnap developers"
release = importlib.metadata.version("ctxsnap")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
# The source directory is the repository root (``sphinx-build -c docs . <out>``), not docs/: the pages link to
# the README, CONTRIBUTING, CHANGELOG and the committed benchmark results with the same relative links that work
# on the repository browser, and each of those links is checked only if its target is part of the build.
root_doc = "docs/index"
include_patterns = [
    "docs/**",
    "README.md",
    "CHANGELOG.md",
    "CONTRIBUTING.md",
    "benchmarks/results/results.md",
]
exclude_patterns = ["_build", "docs/_build", ".venvs", ".git", ".nox", "tests/**/merged_flask/README.md"]

# Headings down to ### get anchors, so the pages' own "[below](#current-results)" links resolve.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Every docstring cross-reference must resolve: a renamed function or a typo in :func:`...` fails the build.
nitpicky = True
# Names from the standard library and the frameworks: with no network there is no intersphinx inventory to
# resolve them against, so they are left as plain text instead of failing the build.
nitpick_ignore_regex = [
    (r"py:.*", r"_?(abc|anyio|asyncio|concurrent|contextvars|flask|quart|threading|typing|collections)\..*"),
    (r"py:class", r"Executor"),
    # Type variables (a function's ParamSpec and return type) and the private ``Selection`` alias of
    # include=/exclude=, whose accepted forms each docstring spells out.
    (r"py:class", r"(~?P|(ctxsnap\.[\w.]+\.)?(R|T|Ts)|Selection)"),
    # Bare names in signatures (``ContextVar`` imported by name; the carrier's ``Codec`` pair alias) and the
    # carrier's helper types, which users get from Carrier.export()/wrap() and never build; docs/processes.md
    # describes them.
    (r"py:class", r"ContextVar|Codec|ctxsnap\._payload\.Payload|ctxsnap\._carried_call\.CarriedCall"),
    # The providers' private building blocks (the shared policy, the carrier's g export/restore mix-ins), shown
    # in the providers' signatures and bases; CONTRIBUTING.md says where they live.
    (r"py:class", r"ctxsnap\.providers\._\w+\.\w+"),
    # Snapshot's base: the run path, compiled (ctxsnap._speedups) or its pure-Python twin (ctxsnap._run_path),
    # private either way; docs/benchmarks.md describes the two.
    (r"py:class", r"ctxsnap\.(_speedups|_run_path)\.\w+"),
]
# The committed benchmark results (written by ``dev.py bench``) use level-4 headings as table captions under
# level-2 sections; heading levels are a style choice there, not a broken link.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# A method without its own docstring (ContextExecutor.submit, for one) is left out rather than shown with the
# standard library's, which describes another class and is not valid reST.
autodoc_inherit_docstrings = False

linkcheck_ignore = [r"https?://.*"]

html_theme = "furo"
html_title = "ctxsnap"
