"""Developer tooling that ``noxfile.py`` imports: the version matrix and its checks (``tools/matrix.py``)."""
