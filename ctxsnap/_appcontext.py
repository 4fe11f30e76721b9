"""The old home of the app-context fork helpers, which moved to :mod:`ctxsnap.providers._appcontext`.

They are the Flask and Quart providers' machinery, so they live with the providers now (issue 13); importing
them from here still works, with a DeprecationWarning.
"""

from __future__ import annotations

from ._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        name: "ctxsnap.providers._appcontext"
        for name in (
            "REFUSED_CALLBACKS",
            "copy_state",
            "fork_app_context",
            "fork_request_context",
            "g_values",
            "inherited_values_kept",
            "strip_state",
        )
    },
)
