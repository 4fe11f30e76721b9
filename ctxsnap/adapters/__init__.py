"""Adapters: one module per place where work runs, and per framework whose helpers an app imports.

``threading`` and ``futures`` use only the standard library and are re-exported from :mod:`ctxsnap`. The
others import their own library, so import them explicitly (``from ctxsnap.adapters import flask``). What a
snapshot carries is the providers' business (``ctxsnap.providers``): the Flask and Quart providers load
themselves as soon as the framework is in use, without this import.
"""
