"""Developer tooling: the version matrix and its checks that ``noxfile.py`` imports (``tools/matrix.py``), and
the throwaway Redis server the demo, the Celery tests and the benchmark start when none is given
(``tools/redis_server.py``)."""
