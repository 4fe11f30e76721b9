"""ctxsnap's benchmarks: every alternative side by side with ctxsnap, in one process run per scenario.

Run them with ``python3 dev.py bench`` (or ``python -m benchmarks`` in an environment that has Flask, Quart,
Hypercorn, anyio, Flask-Executor 1.0.0, Flask-Threads 0.2.0 and matplotlib). The result set lands in
``benchmarks/results/``; ``docs/benchmarks.md`` explains the method. Nothing here asserts a speed: targets are
reported as met or missed, never tested.
"""
