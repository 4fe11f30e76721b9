"""Suite-wide set-up: make ``examples`` importable, so tests drive the same apps the demo runs."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The Celery fixtures (a real Redis, real workers) are shared by tests/adapters/celery and tests/conformance.
from tests._celery_fixtures import celery_app, celery_worker, redis_client, redis_url  # noqa: E402, F401
