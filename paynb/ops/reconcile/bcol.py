"""DRAWDOWN (BC Online) invoices against ``colin.bconline_billing_record`` in the data warehouse.

The refund rule is sbc-pay's BCOL_REFUND_CONFIRMATION job (jobs/payment-jobs/tasks/
bcol_refund_confirmation_task.py, docs/reconciliation.md): for a REFUND_REQUESTED invoice it reads the
``qty = -1`` rows of its reference number (``key``), in chunks of 5,000 keys, and marks the invoice REFUNDED
when ``total + total_amt = 0``; otherwise it logs a mismatch and leaves the invoice as it is.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd

from paynb import dw
from paynb.context import Env, resolve_env
from paynb.errors import InputError
from paynb.ops.reconcile.frames import copy_frame
from paynb.ops.reconcile.report import Finding, ReconcileReport, cents

CLASSES = (
    "bcol_refunded_not_marked",
    "bcol_refund_mismatch",
    "bcol_refund_missing",
    "bcol_key_missing",
    "bcol_amount_mismatch",
)
CHUNK = 5000  # keys per warehouse query, as the sbc-pay job does
NEEDED = {"colin.bconline_billing_record": ["key", "total_amt", "qty"]}

PAYDB_SQL = """
SELECT r.invoice_number AS number, i.id, (i.total * 100)::bigint AS total_c, i.invoice_status_code AS status,
       r.created_on::date AS since
  FROM invoices i JOIN invoice_references r ON r.invoice_id = i.id AND r.status_code = 'COMPLETED'
 WHERE i.payment_method_code = 'DRAWDOWN' AND r.invoice_number IS NOT NULL
   AND r.created_on >= %(lo)s AND r.created_on < %(hi)s
"""
# the warehouse may keep total_amt as a float: round to cents in SQL, never in Python floats
BCOL_SQL = """
SELECT key AS number, qty, (round(sum(total_amt)::numeric, 2) * 100)::bigint AS amt_c
  FROM colin.bconline_billing_record
 WHERE key = ANY(%(keys)s) AND qty IN (1, -1)
 GROUP BY key, qty
"""


def reconcile_bcol(
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    env: Env | None = None,
    as_of: date | None = None,
    progress: bool = False,
) -> ReconcileReport:
    """Every DRAWDOWN invoice with a COMPLETED reference (created in the window, if one is given)."""
    from tqdm.auto import tqdm

    from paynb.timez import pacific_today

    env = resolve_env(env)
    lo = datetime.combine(date_from, time()) if date_from else datetime(1970, 1, 1)
    hi = datetime.combine(date_to + timedelta(days=1), time()) if date_to else datetime(9999, 1, 1)
    if date_from and date_to and date_to < date_from:
        raise InputError("must not be before --from", field="--to")
    engine = env.dw_engine
    with dw.read(engine) as conn:
        dw.check_columns(conn, NEEDED, engine)
    with env.read() as conn:
        pay = copy_frame(
            conn,
            PAYDB_SQL,
            {"lo": lo, "hi": hi},
            {"number": str, "id": "int64", "total_c": "int64", "status": str, "since": str},
        )
    keys = list(pay["number"].unique())
    parts = []
    with dw.read(engine) as conn:
        for start in tqdm(range(0, len(keys), CHUNK), desc="BCOL records", disable=not progress, leave=False):
            parts.append(
                copy_frame(
                    conn,
                    BCOL_SQL,
                    {"keys": keys[start : start + CHUNK]},
                    {"number": str, "qty": "int64", "amt_c": "int64"},
                )
            )
    bcol = pd.concat(parts) if parts else pd.DataFrame(columns=["number", "qty", "amt_c"])
    charge = bcol[bcol["qty"] == 1].set_index("number")["amt_c"]
    refund = bcol[bcol["qty"] == -1].set_index("number")["amt_c"]
    pay = pay.assign(
        charge=pay["number"].map(charge),
        refund=pay["number"].map(refund),
        since=pd.to_datetime(pay["since"]).dt.date,
    )
    report = ReconcileReport(
        "bcol",
        "warehouse",
        as_of or pacific_today(),
        date_from,
        date_to,
        compared=len(pay),
        classes_checked=CLASSES,
    )
    report.findings += _classify(pay)
    return report


def _classify(pay: pd.DataFrame) -> list[Finding]:
    found: list[Finding] = []

    def add(cls: str, r, other, detail: str) -> None:
        found.append(Finding(cls, r.number, cents(r.total_c), other, r.since, (int(r.id),), detail))

    has_charge = pay["charge"].notna()
    has_refund = pay["refund"].notna()
    for r in pay[~has_charge & ~has_refund].itertuples():
        add("bcol_key_missing", r, None, f"pay-db {r.status}; no BCOL billing record")
    for r in pay[has_charge & (pay["charge"] != pay["total_c"])].itertuples():
        add("bcol_amount_mismatch", r, cents(r.charge), f"BCOL charged {cents(r.charge)}")
    requested = pay["status"] == "REFUND_REQUESTED"
    cancels = has_refund & (pay["total_c"] + pay["refund"] == 0)
    for r in pay[requested & cancels].itertuples():
        add("bcol_refunded_not_marked", r, cents(r.refund), "BCOL refunded in full; pay-db REFUND_REQUESTED")
    refunded = pay["status"] == "REFUNDED"
    for r in pay[(requested | refunded) & has_refund & ~cancels].itertuples():
        add("bcol_refund_mismatch", r, cents(r.refund), f"pay-db {r.status}: total + total_amt != 0")
    for r in pay[refunded & ~has_refund].itertuples():
        add("bcol_refund_missing", r, None, "pay-db REFUNDED; BCOL has no qty -1 row")
    return found
