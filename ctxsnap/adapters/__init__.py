"""Adapters: one module per place where work runs or per framework whose context ctxsnap carries.

``threading`` and ``futures`` use only the standard library and are re-exported from :mod:`ctxsnap`. The
others import their own framework, so import them explicitly (``from ctxsnap.adapters import flask``). The
Flask and Quart providers do not need that import: they load themselves as soon as the framework is in use.
"""
