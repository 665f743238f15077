"""pay-db against CAS: set-based through the data warehouse, or a sample through the CFS REST API.

pay-db side: one row per reference number (a PAD roll-up sums its invoices) of ACTIVE or COMPLETED
references created in the window, for the chosen payment methods, total > 0 — ops' own join
``invoices ⋈ invoice_references ⋈ cas.ar_transactions ON txn_number = invoice_number``
(docs/reconciliation.md). A COMPLETED reference counts as paid in pay-db, an ACTIVE one as open.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa

from paynb import dw
from paynb.context import Env
from paynb.errors import InputError
from paynb.ops.reconcile.frames import copy_frame
from paynb.ops.reconcile.report import Finding, ReconcileReport, cents

METHODS = ("PAD", "ONLINE_BANKING", "INTERNAL", "EFT")
WAREHOUSE_CLASSES = (
    "paid_in_cas_not_paydb",
    "paid_in_paydb_open_in_cas",
    "total_differs",
    "reference_missing_in_cas",
    "cas_txn_without_reference",
    "consolidated_unlinked",
    "credit_memo_without_credit",
    "credit_memo_amount_differs",
)
API_CLASSES = (
    "paid_in_cas_not_paydb",
    "paid_in_paydb_open_in_cas",
    "total_differs",
    "reference_missing_in_cas",
)
#: CAS rows are read this many days either side of the window: a reference made late on the last day may
#: carry the next day's CAS date, and must not show as missing
MARGIN_DAYS = 3
CAS_TXN_TYPE = "BC_REGISTRIES"

PAYDB_SQL = """
SELECT r.invoice_number AS number, bool_and(r.status_code = 'COMPLETED') AS paid,
       bool_or(r.is_consolidated) AS consolidated, (sum(i.total) * 100)::bigint AS total_c,
       min(r.created_on)::date AS since, min(i.id) AS first_id, count(*) AS invoices,
       min(i.payment_method_code) AS method, min(i.cfs_account_id) AS cfs_account_id
  FROM invoice_references r JOIN invoices i ON i.id = r.invoice_id
 WHERE r.status_code IN ('ACTIVE', 'COMPLETED') AND i.payment_method_code = ANY(%(methods)s) AND i.total > 0
   AND r.created_on >= %(lo)s AND r.created_on < %(hi)s AND r.invoice_number IS NOT NULL
 GROUP BY r.invoice_number
"""
PAYDB_TYPES = {
    "number": str,
    "paid": None,
    "consolidated": None,
    "total_c": "int64",
    "since": str,
    "first_id": "int64",
    "invoices": "int64",
    "method": str,
    "cfs_account_id": "Int64",
}
KNOWN_SQL = "SELECT DISTINCT invoice_number FROM invoice_references WHERE invoice_number = ANY(:numbers)"
CREDITS_SQL = """
SELECT cfs_identifier, sum(amount) AS amount FROM credits
 WHERE is_credit_memo AND cfs_identifier = ANY(:numbers) GROUP BY cfs_identifier
"""


def _bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    if date_to < date_from:
        raise InputError("must not be before --from", field="--to")
    return datetime.combine(date_from, time()), datetime.combine(date_to + timedelta(days=1), time())


def _methods(methods: tuple[str, ...] | list[str] | None) -> list[str]:
    chosen = [m.upper() for m in (methods or METHODS)]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method {unknown[0]!r} (one of {', '.join(METHODS)})", field="--method")
    return chosen


def paydb_frame(env: Env, date_from: date, date_to: date, methods: list[str]) -> pd.DataFrame:
    lo, hi = _bounds(date_from, date_to)
    with env.read() as conn:
        frame = copy_frame(conn, PAYDB_SQL, {"methods": methods, "lo": lo, "hi": hi}, PAYDB_TYPES)
    frame["paid"] = frame["paid"].astype(str).eq("t")
    frame["consolidated"] = frame["consolidated"].astype(str).eq("t")
    return frame


def cas_sql(env: Env) -> str:
    s = env.settings
    # column names come from settings that only allow plain identifiers (paynb.settings._identifier)
    return f"""
    SELECT txn_number AS number, {s.dw_cas_class_column} AS cls, (txn_amount * 100)::bigint AS amount_c,
           ({s.dw_cas_balance_column} * 100)::bigint AS due_c, {s.dw_cas_date_column}::date AS txn_date
      FROM cas.ar_transactions
     WHERE txn_type = %(txn_type)s AND {s.dw_cas_date_column} >= %(lo)s AND {s.dw_cas_date_column} < %(hi)s
    """  # noqa: S608


def needed_columns(env: Env) -> dict[str, list[str]]:
    s = env.settings
    return {
        "cas.ar_transactions": [
            "txn_number",
            "txn_type",
            "txn_amount",
            s.dw_cas_class_column,
            s.dw_cas_balance_column,
            s.dw_cas_date_column,
        ]
    }


def reconcile_cfs_warehouse(
    date_from: date, date_to: date, *, methods=None, env: Env | None = None, as_of: date | None = None
) -> ReconcileReport:
    """Every reference of the window against ``cas.ar_transactions``, set-based."""
    from paynb.context import resolve_env
    from paynb.timez import pacific_today

    env = resolve_env(env)
    chosen = _methods(methods)
    engine = env.dw_engine
    lo, hi = _bounds(date_from - timedelta(days=MARGIN_DAYS), date_to + timedelta(days=MARGIN_DAYS))
    # the warehouse first: a missing table or column fails before anything else is read
    with dw.read(engine) as conn:
        dw.check_columns(conn, needed_columns(env), engine)
        cas = copy_frame(
            conn,
            cas_sql(env),
            {"txn_type": CAS_TXN_TYPE, "lo": lo.date(), "hi": hi.date()},
            {"number": str, "cls": str, "amount_c": "int64", "due_c": "int64", "txn_date": str},
        )
    pay = paydb_frame(env, date_from, date_to, chosen)
    report = ReconcileReport(
        "cfs",
        "warehouse",
        as_of or pacific_today(),
        date_from,
        date_to,
        compared=len(pay),
        classes_checked=WAREHOUSE_CLASSES,
    )
    report.notes.append(
        f"methods: {', '.join(chosen)}; CAS read {MARGIN_DAYS} days either side of the window"
    )
    cas["txn_date"] = pd.to_datetime(cas["txn_date"]).dt.date
    in_window = (cas["txn_date"] >= date_from) & (cas["txn_date"] <= date_to)
    invoices = cas[cas["cls"] != "CM"]
    memos = cas[(cas["cls"] == "CM") & in_window]
    report.findings += _compare_invoices(pay, invoices, in_window[invoices.index], env)
    report.findings += _compare_memos(memos, env)
    return report


def _finding(cls: str, row, *, paydb=None, other=None, since=None, ids=(), detail="") -> Finding:
    return Finding(cls, str(row), paydb, other, since, tuple(int(i) for i in ids), detail)


def _compare_invoices(
    pay: pd.DataFrame, cas: pd.DataFrame, cas_in_window: pd.Series, env: Env
) -> list[Finding]:
    found: list[Finding] = []
    pay = pay.assign(since=pd.to_datetime(pay["since"]).dt.date)
    both = pay.merge(cas, on="number", how="left", indicator=True)
    matched = both[both["_merge"] == "both"]
    missing = both[both["_merge"] == "left_only"]

    def ids(r) -> tuple[int, ...]:
        return (int(r.first_id),)

    for r in matched[(matched["due_c"] == 0) & ~matched["paid"]].itertuples():
        found.append(
            _finding(
                "paid_in_cas_not_paydb",
                r.number,
                paydb=cents(r.total_c),
                other=cents(r.amount_c),
                since=r.since,
                ids=ids(r),
                detail=f"{r.method}, {r.invoices} invoice(s)",
            )
        )
    for r in matched[(matched["due_c"] > 0) & matched["paid"]].itertuples():
        found.append(
            _finding(
                "paid_in_paydb_open_in_cas",
                r.number,
                paydb=cents(r.total_c),
                other=cents(r.due_c),
                since=r.since,
                ids=ids(r),
                detail=f"{r.method}: CAS amount due {cents(r.due_c)}",
            )
        )
    for r in matched[matched["amount_c"] != matched["total_c"]].itertuples():
        found.append(
            _finding(
                "total_differs",
                r.number,
                paydb=cents(r.total_c),
                other=cents(r.amount_c),
                since=r.since,
                ids=ids(r),
                detail=f"{r.method}, {r.invoices} invoice(s)",
            )
        )
    for r in missing.itertuples():
        found.append(
            _finding(
                "reference_missing_in_cas",
                r.number,
                paydb=cents(r.total_c),
                since=r.since,
                ids=ids(r),
                detail=f"{r.method}, reference {'COMPLETED' if r.paid else 'ACTIVE'}",
            )
        )

    known = set(pay["number"])
    only = cas[cas_in_window & ~cas["number"].isin(known)]
    consolidated = only[only["number"].str.endswith("-C")]
    for r in consolidated.itertuples():
        found.append(
            _finding(
                "consolidated_unlinked",
                r.number,
                other=cents(r.amount_c),
                since=r.txn_date,
                detail=f"pay-db references {r.number[:-2]} without the -C number",
            )
        )
    rest = only[~only["number"].str.endswith("-C")]
    if not rest.empty:
        # known to pay-db under another method, status or date: not an orphan
        with env.read() as conn:
            elsewhere = {
                row[0] for row in conn.execute(sa.text(KNOWN_SQL), {"numbers": list(rest["number"])})
            }
        for r in rest[~rest["number"].isin(elsewhere)].itertuples():
            found.append(
                _finding(
                    "cas_txn_without_reference",
                    r.number,
                    other=cents(r.amount_c),
                    since=r.txn_date,
                    detail=f"CAS amount due {cents(r.due_c)}",
                )
            )
    return found


def _compare_memos(memos: pd.DataFrame, env: Env) -> list[Finding]:
    if memos.empty:
        return []
    from paynb.db import to_money

    with env.read() as conn:
        credits = {
            row[0]: to_money(row[1])
            for row in conn.execute(sa.text(CREDITS_SQL), {"numbers": list(memos["number"])})
        }
    found: list[Finding] = []
    for r in memos.itertuples():
        amount = -cents(r.amount_c)  # CAS books a memo negative
        if r.number not in credits:
            found.append(_finding("credit_memo_without_credit", r.number, other=amount, since=r.txn_date))
        elif credits[r.number] != amount:
            found.append(
                _finding(
                    "credit_memo_amount_differs",
                    r.number,
                    paydb=credits[r.number],
                    other=amount,
                    since=r.txn_date,
                )
            )
    return found


# -- the CFS REST API path ---------------------------------------------------------------------------------
SITES_SQL = """
SELECT id, cfs_party, cfs_account, cfs_site FROM cfs_accounts WHERE id = ANY(:ids)
"""


def reconcile_cfs_api(
    date_from: date,
    date_to: date,
    *,
    methods=None,
    sample: int = 2000,
    env: Env | None = None,
    as_of: date | None = None,
    progress: bool = False,
) -> ReconcileReport:
    """A sample of the window's references, one CFS GET per distinct CFS invoice (the client de-duplicates
    and runs ``PAYNB_CFS_CONCURRENCY`` at a time). Finds the four classes a GET can show; CAS-only
    transactions and credit memos need the warehouse."""
    from paynb.cfs import CfsInvoiceRef
    from paynb.context import resolve_env
    from paynb.timez import pacific_today

    env = resolve_env(env)
    if sample < 1:
        raise InputError("must be 1 or more", field="--sample")
    chosen = _methods(methods)
    pay = paydb_frame(env, date_from, date_to, chosen)
    total = len(pay)
    # a stable sample: the same window always picks the same references
    pay = pay.assign(_h=pd.util.hash_pandas_object(pay["number"], index=False)).sort_values("_h").head(sample)
    pay = pay.assign(since=pd.to_datetime(pay["since"]).dt.date)
    report = ReconcileReport(
        "cfs",
        "cfs-api",
        as_of or pacific_today(),
        date_from,
        date_to,
        compared=len(pay),
        classes_checked=API_CLASSES,
    )
    report.notes.append(f"CFS API sample: {len(pay)} of {total} references; methods: {', '.join(chosen)}")
    with env.read() as conn:
        ids = [int(i) for i in pay["cfs_account_id"].dropna().unique()]
        sites = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(sa.text(SITES_SQL), {"ids": ids})}
    refs: dict[str, CfsInvoiceRef] = {}
    for r in pay.itertuples():
        site = sites.get(None if pd.isna(r.cfs_account_id) else int(r.cfs_account_id))
        if site is None or not all(site):
            report.notes.append(f"{r.number}: no CFS site in pay-db, not asked")
            continue
        refs[r.number] = CfsInvoiceRef(*site, r.number)
    results = env.cfs.get_invoices(refs.values(), progress=progress, desc="CFS invoices")
    errors = 0
    for r in pay.itertuples():
        ref = refs.get(r.number)
        if ref is None:
            continue
        res = results[ref]
        total_d = cents(r.total_c)
        if res.status == "not_found":
            report.findings.append(
                _finding(
                    "reference_missing_in_cas",
                    r.number,
                    paydb=total_d,
                    since=r.since,
                    ids=(r.first_id,),
                    detail=f"{r.method}: CFS answered 404",
                )
            )
            continue
        if not res.ok:
            errors += 1
            continue
        cas_total = Decimal(str(res.data.get("total"))).quantize(Decimal("0.01"))
        due = Decimal(str(res.data.get("amount_due"))).quantize(Decimal("0.01"))
        if due == 0 and not r.paid:
            report.findings.append(
                _finding(
                    "paid_in_cas_not_paydb",
                    r.number,
                    paydb=total_d,
                    other=cas_total,
                    since=r.since,
                    ids=(r.first_id,),
                    detail=r.method,
                )
            )
        if due > 0 and r.paid:
            report.findings.append(
                _finding(
                    "paid_in_paydb_open_in_cas",
                    r.number,
                    paydb=total_d,
                    other=due,
                    since=r.since,
                    ids=(r.first_id,),
                    detail=r.method,
                )
            )
        if cas_total != total_d:
            report.findings.append(
                _finding(
                    "total_differs",
                    r.number,
                    paydb=total_d,
                    other=cas_total,
                    since=r.since,
                    ids=(r.first_id,),
                    detail=r.method,
                )
            )
    if errors:
        report.complete = False
        report.notes.append(f"INCOMPLETE: CFS failed for {errors} invoice(s); they were not compared")
    return report
