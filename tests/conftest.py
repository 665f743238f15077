"""Test wiring. Fixtures live in ``tests/plugins/`` (one module per component) so that each
component's fixtures have one owner. A plugin that does not exist yet is simply not loaded."""

from __future__ import annotations

import faulthandler
import importlib.util
import os
import signal

# tests must never pick up an operator's .env or real credentials
for _name in list(os.environ):
    if _name.startswith(
        ("PAYNB_", "DATABASE_", "PAY_", "PG_", "DB_", "CFS_", "MINIO_", "GOOGLE_")
    ) or _name in (
        "STORAGE_EMULATOR_HOST",
        "GCP_PROJECT",
    ):
        os.environ.pop(_name)
os.environ.setdefault("PAYNB_ENVIRONMENT", "test")
# Google's default-credentials lookup must not probe the GCE metadata server (an address off this machine)
os.environ["NO_GCE_CHECK"] = "true"

# .ci/run stops a stuck run with SIGTERM: print where every thread was before going down
faulthandler.register(signal.SIGTERM, file=2, all_threads=True, chain=True)

_CANDIDATES = (
    "tests.plugins.hangs",
    "tests.plugins.db",
    "tests.plugins.s3",
    "tests.plugins.gcs",
    "tests.plugins.cfs",
    "tests.plugins.sandbox",
    "tests.plugins.browser",
    "tests.fix_ledger",
    "tests.reconcile_fixtures",
)
pytest_plugins = [name for name in _CANDIDATES if importlib.util.find_spec(name) is not None]
