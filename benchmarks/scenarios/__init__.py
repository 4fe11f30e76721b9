"""The scenarios, by name. Each runs in a process of its own and returns plain data for the report.

Modules are named here as strings and imported only in the process that runs the scenario: a contextvars-only
scenario must run where Flask was never imported, and a scenario that leaves a hung Flask-Threads worker
behind must not take the others down with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .._harness import Settings

__all__ = ["SCENARIOS", "load"]

#: name -> "module:function", in the order the report shows them.
SCENARIOS: dict[str, str] = {
    "inline-contextvars": "inline:contextvars_only",
    "inline-flask": "inline:flask_full",
    "roundtrip-contextvars": "roundtrip:contextvars_only",
    "roundtrip-flask": "roundtrip:flask_full",
    "roundtrip-async": "async_roundtrip:asyncio_and_anyio",
    "roundtrip-quart": "async_roundtrip:quart_request",
    "scaling-contextvars": "scaling:contextvars_count",
    "scaling-g": "scaling:g_attributes",
    "scaling-reuse": "scaling:reuse_across_workers",
    "memory": "memory:memory",
    "e2e-flask": "end_to_end:flask_fanout",
    "e2e-quart": "end_to_end:quart_fanout",
    "hot-path": "hot_path:hot_path",
    "carrier-codec": "carrier:codec",
    "carrier-celery": "carrier:celery_round_trip",
    "carrier-process-pool": "carrier:process_pool",
    "instrument": "instrument:instrument_overhead",
}


def load(name: str) -> Callable[[Settings], dict[str, Any]]:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; the scenarios are: {', '.join(SCENARIOS)}")
    module_name, function = SCENARIOS[name].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    scenario: Callable[[Settings], dict[str, Any]] = getattr(module, function)
    return scenario
