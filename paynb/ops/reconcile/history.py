"""What is new and what is resolved since the previous run of the same job, read from the run archive.

A scheduled reconciliation notebook reports its findings with ``paynb.jobs.record(reconcile_job=...,
reconcile_findings=[...], reconcile_complete=...)``; ``paynb run`` keeps them in the archived
``record.json`` under ``reported``. The previous run is the newest archived, succeeded and complete run of
the same notebook and job before this one, found by walking the archive's date folders backwards
(``runs/YYYY/MM/DD/<notebook>/<run_id>/record.json``), so nothing depends on a local file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta

from paynb.context import Env, resolve_env
from paynb.ops.reconcile.report import ReconcileReport
from paynb.timez import utc_today

LOOKBACK_DAYS = 45


@dataclass(frozen=True)
class PreviousRun:
    run_id: str
    started_at: str
    findings: tuple[str, ...]


def previous_run(
    notebook: str,
    job: str,
    *,
    archive_url: str | None = None,
    env: Env | None = None,
    lookback_days: int = LOOKBACK_DAYS,
) -> PreviousRun | None:
    """The newest complete run of ``job`` by ``notebook`` in the archive, other than the current run."""
    from paynb.ledger import archive_url as default_url

    env = resolve_env(env)
    store = env.store(archive_url or default_url(env.settings))
    current = os.environ.get("PAYNB_RUN_ID", "")
    today = utc_today()
    for back in range(lookback_days + 1):
        day = today - timedelta(days=back)
        prefix = f"runs/{day:%Y/%m/%d}/{notebook}/"
        found: list[PreviousRun] = []
        keys = [o.key for o in store.list(prefix) if o.key.endswith("/record.json")]
        for key in keys:
            record = json.loads(store.get(key))
            reported = record.get("reported") or {}
            if (
                record.get("run_id") == current
                or record.get("status") != "succeeded"
                or reported.get("reconcile_job") != job
                or reported.get("reconcile_complete") is not True
            ):
                continue
            found.append(
                PreviousRun(
                    record["run_id"],
                    record.get("started_at", ""),
                    tuple(reported.get("reconcile_findings") or ()),
                )
            )
        if found:
            return max(found, key=lambda p: p.started_at)
    return None


def mark_changes(report: ReconcileReport, previous: PreviousRun | None) -> ReconcileReport:
    """Fill ``report.new`` / ``report.resolved`` against ``previous`` (everything is new without one).

    A class this report did not check (e.g. the API path skips credit memos) never counts as resolved."""
    now = set(report.idents())
    checked = set(report.classes_checked)
    before = set(previous.findings) if previous else set()
    report.previous_run = previous.run_id if previous else None
    report.new = sorted(now - before)
    report.resolved = sorted(k for k in before - now if k.split("|", 1)[0] in checked)
    return report
