"""What the two demo scripts share: the HTTP client they use and how they judge and print what workers saw.

A worker's report is "right" when every value it saw is the request's own id, "wrong" when any value belongs
to another request, and "missing" otherwise: the three outcomes the demo tables count.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from typing import Any

import httpx

TIMEOUT = 60.0
MODES = (("with ctxsnap", True), ("without ctxsnap", False))
COUNT_HEADER = f"   {'':<17}{{:<14}}{'missing':<10}{{}}"


def client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, trust_env=False)


def show(value: Any, expected: str) -> str:
    """One table cell: the value a worker saw, marked when it is missing or another request's."""
    if value is None:
        return "-- missing"
    return str(value) if value == expected else f"!! {value} (wrong)"


def verdict(values: Iterable[Any], expected: str) -> str:
    values = tuple(values)
    if all(v == expected for v in values):
        return "right"
    if any(v is not None and v != expected for v in values):
        return "wrong"
    return "missing"


def tally(one_client: Callable[[int], list[str]], clients: int) -> dict[str, int]:
    """Run ``one_client(number)`` for ``clients`` clients at once and count the verdicts they return."""
    counts = {"right": 0, "missing": 0, "wrong": 0}
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for verdicts in pool.map(one_client, range(clients), timeout=TIMEOUT):
            for outcome in verdicts:
                counts[outcome] += 1
    return counts


def print_counts_header(own: str, other: str) -> None:
    print(COUNT_HEADER.format(own, other))


def print_counts(label: str, counts: dict[str, int], total: int) -> None:
    print(f"   {label:<17}{counts['right']:>4} / {total:<7}{counts['missing']:<10}{counts['wrong']}")
