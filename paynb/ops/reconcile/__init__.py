"""Reconciliation of pay-db against CAS/CFS and BCOL, and of partner disbursements (docs/reconciliation.md).

Example::

    from datetime import date
    from paynb.ops.reconcile import reconcile_cfs, reconcile_bcol, reconcile_disbursements
    report = reconcile_cfs(date(2026, 11, 1), date(2026, 11, 30))   # the warehouse when PAYNB_DW_URL is set
    report.by_class()            # one row per mismatch class: findings, amount, meaning
    report.to_frame()            # one row per finding, with the paynb command that addresses it
"""

from __future__ import annotations

from datetime import date

from paynb.context import Env, resolve_env
from paynb.errors import InputError
from paynb.ops.reconcile.bcol import reconcile_bcol
from paynb.ops.reconcile.cfs import METHODS, reconcile_cfs_api, reconcile_cfs_warehouse
from paynb.ops.reconcile.disbursements import reconcile_disbursements
from paynb.ops.reconcile.history import PreviousRun, mark_changes, previous_run
from paynb.ops.reconcile.report import CLASSES, Finding, ReconcileReport, combine

SOURCES = ("auto", "warehouse", "cfs-api")


def reconcile_cfs(
    date_from: date,
    date_to: date,
    *,
    methods=None,
    source: str = "auto",
    sample: int = 2000,
    env: Env | None = None,
    as_of: date | None = None,
    progress: bool = False,
) -> ReconcileReport:
    """pay-db against CAS. ``source="auto"`` uses the warehouse when ``PAYNB_DW_URL`` is set, else a sample
    of ``sample`` references through the CFS REST API."""
    env = resolve_env(env)
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r} (one of {', '.join(SOURCES)})", field="--source")
    if source == "auto":
        source = "warehouse" if env.settings.dw_url or "dw_engine" in env.overrides else "cfs-api"
    if source == "warehouse":
        return reconcile_cfs_warehouse(date_from, date_to, methods=methods, env=env, as_of=as_of)
    return reconcile_cfs_api(
        date_from, date_to, methods=methods, sample=sample, env=env, as_of=as_of, progress=progress
    )


__all__ = [
    "CLASSES",
    "METHODS",
    "SOURCES",
    "Finding",
    "PreviousRun",
    "ReconcileReport",
    "combine",
    "mark_changes",
    "previous_run",
    "reconcile_bcol",
    "reconcile_cfs",
    "reconcile_cfs_api",
    "reconcile_cfs_warehouse",
    "reconcile_disbursements",
]
