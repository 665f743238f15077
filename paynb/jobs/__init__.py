"""Auditable notebook jobs: ``paynb run`` as a function API, run records, archive, audit (the ledger is
:mod:`paynb.ledger`).

In a notebook, report results with the one call :func:`record`::

    import paynb.jobs
    paynb.jobs.record(rows_affected=3, plan_sha256=plan.sha256, dry_run=False, summary=df)

Outside, run and check notebooks::

    from paynb.jobs import run_notebook, verify
    result = run_notebook("notebooks/reports/stale_invoices.ipynb", {"days": "20"})
    verify(result.run_id)

Only ``record`` is imported eagerly (it loads in every kernel); the rest loads on first use, so a
kernel does not pay for papermill and nbconvert.
"""

from __future__ import annotations

import importlib
from typing import Any

from paynb.jobs.report import record

_LAZY = {
    "run_notebook": "paynb.jobs.runner",
    "RunResult": "paynb.jobs.runner",
    "verify": "paynb.jobs.audit",
    "VerifyResult": "paynb.jobs.audit",
    "flush_spool": "paynb.jobs.archive",
    "read_notebook_schema": "paynb.jobs.params",
}

__all__ = ["record", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paynb.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
