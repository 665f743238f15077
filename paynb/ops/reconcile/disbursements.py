"""Partner disbursements against their FEEDBACK outcome, and the distribution codes that pause EJV.

A partner disbursement is WAITING_FOR_JOB until the EJV/AP job sends it, UPLOADED until FEEDBACK answers,
then COMPLETED or ERRORED (docs/reconciliation.md). pay-db alone answers these checks.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import sqlalchemy as sa

from paynb.context import Env, resolve_env
from paynb.errors import InputError
from paynb.ops.reconcile.report import Finding, ReconcileReport

CLASSES = ("disbursement_stuck", "disbursement_errored", "distribution_stop_ejv")
STUCK_DAYS = 3

ROWS_SQL = """
SELECT id, status_code, partner_code, amount, created_on, feedback_on, target_id, target_type, is_reversal
  FROM partner_disbursements
 WHERE created_on >= :lo AND created_on < :hi
   AND (status_code = 'ERRORED' OR (status_code IN ('WAITING_FOR_JOB', 'UPLOADED') AND created_on < :stuck))
 ORDER BY id
"""
STOP_SQL = """
SELECT d.distribution_code_id, d.name, coalesce(d.updated_on, d.created_on)::date AS since,
       (SELECT count(*) FROM invoices i JOIN payment_accounts pa ON pa.id = i.payment_account_id
         WHERE pa.id = d.account_id AND i.invoice_status_code = 'APPROVED' AND i.payment_method_code = 'EJV')
  FROM distribution_codes d WHERE d.stop_ejv ORDER BY d.distribution_code_id
"""
AMOUNTS_SQL = """
SELECT partner_code AS partner, to_char(created_on, 'YYYY-MM') AS month, status_code AS status,
       count(*) AS rows, sum(CASE WHEN is_reversal THEN -amount ELSE amount END) AS amount
  FROM partner_disbursements
 WHERE created_on >= :lo AND created_on < :hi
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def reconcile_disbursements(
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    stuck_days: int = STUCK_DAYS,
    env: Env | None = None,
    as_of: date | None = None,
) -> ReconcileReport:
    """Stuck and ERRORED partner disbursements, stop_ejv distribution codes, and amounts per partner and
    month (``report.amounts``; money as Decimal)."""
    from paynb.db import to_money
    from paynb.timez import pacific_today

    if stuck_days < 0:
        raise InputError("must be 0 or more", field="--stuck-days")
    env = resolve_env(env)
    today = as_of or pacific_today()
    lo = datetime.combine(date_from, time()) if date_from else datetime(1970, 1, 1)
    hi = datetime.combine(date_to + timedelta(days=1), time()) if date_to else datetime(9999, 1, 1)
    stuck = datetime.combine(today - timedelta(days=stuck_days), time())
    report = ReconcileReport("disbursements", "pay-db", today, date_from, date_to, classes_checked=CLASSES)
    with env.read() as conn:
        rows = conn.execute(sa.text(ROWS_SQL), {"lo": lo, "hi": hi, "stuck": stuck}).mappings().all()
        stops = conn.execute(sa.text(STOP_SQL)).all()
        amounts = conn.execute(sa.text(AMOUNTS_SQL), {"lo": lo, "hi": hi}).mappings().all()
        report.compared = conn.execute(sa.text("SELECT count(*) FROM partner_disbursements")).scalar() or 0
    for r in rows:
        cls = "disbursement_errored" if r["status_code"] == "ERRORED" else "disbursement_stuck"
        ids = (int(r["target_id"]),) if r["target_type"] == "invoice" and r["target_id"] else ()
        report.findings.append(
            Finding(
                cls,
                str(r["id"]),
                to_money(r["amount"]),
                None,
                r["created_on"].date(),
                ids,
                f"{r['partner_code']} {r['status_code']}{' reversal' if r['is_reversal'] else ''}",
            )
        )
    for code_id, name, since, waiting in stops:
        report.findings.append(
            Finding(
                "distribution_stop_ejv",
                str(code_id),
                None,
                None,
                since,
                (),
                f"{name}: {waiting} EJV invoice(s) APPROVED and waiting",
            )
        )
    frame = pd.DataFrame([dict(a) for a in amounts], columns=["partner", "month", "status", "rows", "amount"])
    frame["amount"] = [to_money(v) for v in frame["amount"]]
    report.amounts = frame
    return report
