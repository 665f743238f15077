"""The sandbox data warehouse: a second database (``dw``) with the CAS and BCOL tables ops reconcile against.

Schemas follow what sbc-pay's payment-jobs read (docs/reconciliation.md): ``cas.ar_transactions`` and its
companions, and ``colin.bconline_billing_record``. Everything is derived from the seeded pay-db, so the
warehouse agrees with pay-db and with the CFS sandbox server (both read ``paynb_sandbox.cfs_invoices``),
except for the named mismatches :func:`seed_warehouse` injects. Each injection is recorded in pay-db's
``paynb_sandbox.scenarios`` (so ``paynb sandbox scenarios`` lists it) with the numbers it touched.

Injections that change what CAS knows are made in ``paynb_sandbox.cfs_invoices`` before the warehouse is
copied, so the CFS server (started afterwards) shows them too. Two are warehouse-only: the credit-memo
scenarios (the CFS server takes its credit memos from pay-db's ``credits``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import NullPool

from paynb.errors import SandboxError

READER_ROLE = "paynb_dw_reader"
CAS_TXN_TYPE = "BC_REGISTRIES"

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS cas;
CREATE SCHEMA IF NOT EXISTS colin;
CREATE TABLE cas.ar_transactions (
    txn_number           text          NOT NULL,
    txn_type             text          NOT NULL,
    txn_class            text          NOT NULL,  -- INV or CM
    txn_amount           numeric(19,2) NOT NULL,
    amount_due_remaining numeric(19,2) NOT NULL,
    txn_date             date          NOT NULL,
    customer_number      text,
    site_number          text
);
CREATE TABLE cas.ar_receipts (
    receipt_number  text NOT NULL,
    receipt_amount  numeric(19,2) NOT NULL,
    receipt_date    date,
    customer_number text
);
CREATE TABLE cas.ar_applied_receivables (
    receipt_number text NOT NULL,
    txn_number     text NOT NULL,
    amount_applied numeric(19,2) NOT NULL
);
CREATE TABLE cas.ar_adjustments (
    adjustment_number text NOT NULL,
    txn_number        text NOT NULL,
    amount            numeric(19,2) NOT NULL,
    adjustment_date   date
);
CREATE TABLE cas.ap_invoices (
    invoice_num     text NOT NULL,
    invoice_amount  numeric(19,2) NOT NULL,
    supplier_number text,
    invoice_date    date
);
CREATE TABLE cas.ap_invoice_payments (
    invoice_num  text NOT NULL,
    amount       numeric(19,2) NOT NULL,
    payment_date date
);
CREATE TABLE cas.gl_je_lines (
    je_header_id   bigint NOT NULL,
    je_line_num    integer NOT NULL,
    entered_dr     numeric(19,2),
    entered_cr     numeric(19,2),
    description    text,
    effective_date date
);
CREATE TABLE colin.bconline_billing_record (
    key       text          NOT NULL,
    total_amt numeric(19,2) NOT NULL,
    qty       integer       NOT NULL,
    tran_date date
);
"""
INDEX_SQL = """
CREATE INDEX ar_transactions_number ON cas.ar_transactions (txn_number);
CREATE INDEX ar_transactions_date ON cas.ar_transactions (txn_date);
CREATE INDEX bconline_billing_record_key ON colin.bconline_billing_record (key);
ANALYZE;
"""


@dataclass(frozen=True)
class WarehouseScenario:
    name: str
    mismatch_class: str
    description: str


#: every injected mismatch; ``mismatch_class`` is the class `paynb reconcile` must report it under
CATALOGUE: tuple[WarehouseScenario, ...] = (
    WarehouseScenario(
        "recon_paid_in_cas_only",
        "paid_in_cas_not_paydb",
        "An ONLINE_BANKING invoice SETTLEMENT_SCHED in pay-db (ACTIVE reference) that CAS shows paid.",
    ),
    WarehouseScenario(
        "recon_open_in_cas",
        "paid_in_paydb_open_in_cas",
        "A PAID ONLINE_BANKING invoice (COMPLETED reference) whose CAS transaction is still due.",
    ),
    WarehouseScenario(
        "recon_total_differs",
        "total_differs",
        "A PAID ONLINE_BANKING invoice whose CAS transaction amount is 10.00 more than its total.",
    ),
    WarehouseScenario(
        "recon_reference_missing",
        "reference_missing_in_cas",
        "A PAID INTERNAL invoice with a COMPLETED reference that CAS never got (CFS GET -> 404).",
    ),
    WarehouseScenario(
        "recon_cas_orphan",
        "cas_txn_without_reference",
        "A CAS transaction whose number no pay-db invoice reference carries.",
    ),
    WarehouseScenario(
        "recon_consolidated_unlinked",
        "consolidated_unlinked",
        "A consolidated '-C' CAS transaction for a PAID invoice whose pay-db reference was never "
        "switched to the -C number.",
    ),
    WarehouseScenario(
        "recon_cm_without_credit",
        "credit_memo_without_credit",
        "A CAS credit memo with no pay-db credits row (warehouse only).",
    ),
    WarehouseScenario(
        "recon_cm_amount_differs",
        "credit_memo_amount_differs",
        "A CAS credit memo whose amount is 5.00 more than its pay-db credit (warehouse only).",
    ),
    WarehouseScenario(
        "recon_bcol_refunded_not_marked",
        "bcol_refunded_not_marked",
        "A DRAWDOWN invoice left REFUND_REQUESTED although BCOL holds its full refund (qty -1).",
    ),
    WarehouseScenario(
        "recon_bcol_refund_mismatch",
        "bcol_refund_mismatch",
        "A REFUND_REQUESTED DRAWDOWN invoice whose BCOL refund is 1.00 short of its total.",
    ),
    WarehouseScenario(
        "recon_bcol_refund_missing",
        "bcol_refund_missing",
        "A REFUNDED DRAWDOWN invoice with no BCOL refund row.",
    ),
    WarehouseScenario(
        "recon_bcol_key_missing",
        "bcol_key_missing",
        "A PAID DRAWDOWN invoice whose reference number BCOL has no charge row for.",
    ),
    WarehouseScenario(
        "recon_bcol_amount_mismatch",
        "bcol_amount_mismatch",
        "A PAID DRAWDOWN invoice whose BCOL charge is 2.50 more than its total.",
    ),
    WarehouseScenario(
        "recon_bcol_refund_pending",
        "",
        "Control, not a mismatch: REFUND_REQUESTED with no BCOL refund yet (the job waits).",
    ),
    WarehouseScenario(
        "recon_disbursement_errored",
        "disbursement_errored",
        "A partner disbursement set to ERRORED (its EJV/AP feedback was rejected).",
    ),
)
BY_NAME = {s.name: s for s in CATALOGUE}
#: classes the generator's own scenarios already produce (pay-db scenario name -> class)
GENERATOR_CLASSES: dict[str, str] = {
    "pad_stuck_settled_csv_unprocessed": "paid_in_cas_not_paydb",
    "cas_csv_with_nsf": "paid_in_cas_not_paydb",
    "pad_stuck_cfs_missing": "reference_missing_in_cas",
    "partner_disbursement_stuck": "disbursement_stuck",
    "ejv_errored_stop_ejv": "distribution_stop_ejv",
}


def database_url(pay_url: str, database: str, user: str | None = None) -> str:
    """``pay_url`` pointed at another database (and user) of the same server."""
    url = make_url(pay_url).set(database=database)
    if user:
        url = _login(url, user, None)
    return url.render_as_string(hide_password=False)


def _login(url: URL, user: str, password: str | None) -> URL:
    """``url`` with this login; ``URL.set`` cannot clear a password (it skips None), so build it anew."""
    return URL.create(
        url.drivername,
        username=user,
        password=password,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )


def create_database(admin_url: str, name: str) -> None:
    """(Re)create an empty database ``name``; ``admin_url`` is any database of the server."""
    eng = sa.create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            # the name is ours (the sandbox's constant or a test's counter), never user input
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        eng.dispose()


def seed_warehouse(pay_url: str, dw_url: str, *, inject: bool = True, as_of: date | None = None) -> dict:
    """Fill the (empty) warehouse ``dw_url`` from pay-db ``pay_url``; with ``inject``, first make the
    named mismatches of :data:`CATALOGUE`. Returns ``{scenario name: [numbers]}`` of what was injected."""
    pay = sa.create_engine(pay_url, poolclass=NullPool)
    dw = sa.create_engine(dw_url, poolclass=NullPool)
    try:
        with pay.begin() as conn:
            as_of = as_of or _as_of(conn)
            injected = _inject_paydb(conn, as_of) if inject else {}
            cas_rows = conn.execute(sa.text(_CAS_INVOICES_SQL), {"as_of": as_of}).all()
            cm_rows = conn.execute(sa.text(_CREDIT_MEMOS_SQL), {"as_of": as_of}).all()
            receipts = conn.execute(sa.text(_RECEIPTS_SQL)).all()
            bcol_rows = conn.execute(sa.text(_BCOL_SQL)).all()
            disb = conn.execute(sa.text(_AP_SQL)).all()
        cas, memos, bcol = _as_lists(cas_rows), _as_lists(cm_rows), _as_lists(bcol_rows)
        if inject:
            injected.update(_inject_warehouse(memos, bcol, injected))
            with pay.begin() as conn:
                _record(conn, injected)
        with dw.begin() as conn:
            conn.exec_driver_sql(SCHEMA_SQL)
            raw = conn.connection.dbapi_connection
            with raw.cursor() as cur:
                _copy(cur, "cas.ar_transactions", [*cas, *memos])
                _copy(cur, "cas.ar_receipts", [(r[0], r[1], r[2], r[3]) for r in receipts])
                _copy(cur, "cas.ar_applied_receivables", [(r[0], r[4], r[5]) for r in receipts])
                _copy(cur, "colin.bconline_billing_record", bcol)
                _copy(cur, "cas.ap_invoices", [(r[0], r[1], r[2], r[3]) for r in disb])
                _copy(cur, "cas.ap_invoice_payments", [(r[0], r[1], r[3]) for r in disb if r[4]])
            conn.exec_driver_sql(INDEX_SQL)
            _grant_reader(conn, make_url(dw_url).database or "dw")
    finally:
        pay.dispose()
        dw.dispose()
    return injected


def reader_url(dw_url: str, password: str | None = None) -> str:
    """The warehouse URL as the read-only reader role (what PAYNB_DW_URL points at)."""
    url = make_url(dw_url)
    return _login(url.set(database=url.database or "dw"), READER_ROLE, password).render_as_string(
        hide_password=False
    )


def set_reader_password(admin_url: str, password: str) -> None:
    """Give the warehouse reader role (made by :func:`seed_warehouse`, or here) its login password.

    Like pay-db's reader and writer (docs/roles.md), it must give a password: the sandbox's pg_hba.conf
    trusts only the superuser."""
    eng = sa.create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            _create_reader(conn)
            # the role name is our constant; the password goes through quote_literal on the server
            literal = conn.execute(sa.text("SELECT quote_literal(:p)"), {"p": password}).scalar()
            conn.exec_driver_sql(f"ALTER ROLE {READER_ROLE} LOGIN PASSWORD {literal}")
    finally:
        eng.dispose()


# -- what CAS and BCOL hold, from pay-db ---------------------------------------------------------------------
_CAS_INVOICES_SQL = """
SELECT ci.invoice_number, 'BC_REGISTRIES', 'INV', ci.total, ci.amount_due,
       coalesce(r.created_on::date, CAST(:as_of AS date) - 3), ci.cfs_account, ci.cfs_site
  FROM paynb_sandbox.cfs_invoices ci
  LEFT JOIN LATERAL (SELECT min(created_on) AS created_on FROM invoice_references
                      WHERE invoice_number = regexp_replace(ci.invoice_number, '-C$', '')) r ON true
 WHERE ci.present AND ci.cfs_site IS NOT NULL  -- EJV journals and PayBC direct pays are not AR invoices
 ORDER BY ci.invoice_number
"""
# CAS books a credit memo as a negative transaction
_CREDIT_MEMOS_SQL = """
SELECT c.cfs_identifier, 'BC_REGISTRIES', 'CM', -round(c.amount::numeric, 2), -round(c.remaining_amount::numeric, 2),
       coalesce(c.created_on::date, CAST(:as_of AS date) - 3), NULL, c.cfs_site
  FROM credits c
 WHERE c.is_credit_memo AND c.cfs_identifier IS NOT NULL
 ORDER BY c.cfs_identifier
"""
_RECEIPTS_SQL = """
SELECT p.receipt_number, sum(p.paid_amount) OVER (PARTITION BY p.receipt_number), p.payment_date::date,
       ci.cfs_account, p.invoice_number, p.paid_amount
  FROM payments p
  JOIN paynb_sandbox.cfs_invoices ci ON ci.invoice_number = p.invoice_number AND ci.present AND ci.cfs_site IS NOT NULL
 WHERE p.payment_status_code = 'COMPLETED' AND p.receipt_number IS NOT NULL AND p.paid_amount IS NOT NULL
 ORDER BY p.id
"""
# one charge row (qty 1) per DRAWDOWN reference; a refund row (qty -1) once the invoice is REFUNDED
_BCOL_SQL = """
SELECT r.invoice_number, i.total, 1, r.created_on::date
  FROM invoices i JOIN invoice_references r ON r.invoice_id = i.id AND r.status_code = 'COMPLETED'
 WHERE i.payment_method_code = 'DRAWDOWN'
UNION ALL
SELECT r.invoice_number, -i.total, -1, coalesce(i.refund_date, i.updated_on, r.created_on)::date
  FROM invoices i JOIN invoice_references r ON r.invoice_id = i.id AND r.status_code = 'COMPLETED'
 WHERE i.payment_method_code = 'DRAWDOWN' AND i.invoice_status_code = 'REFUNDED'
 ORDER BY 1, 3 DESC
"""
# partner disbursements go to CAS as AP invoices; the payment row appears once the feedback came back
_AP_SQL = """
SELECT 'PD' || lpad(id::text, 8, '0'), amount, partner_code, created_on::date, status_code = 'COMPLETED'
  FROM partner_disbursements ORDER BY id
"""


def _as_of(conn: Connection) -> date:
    raw = conn.execute(sa.text("SELECT value FROM paynb_sandbox.meta WHERE key = 'as_of'")).scalar()
    if not raw:
        raise SandboxError("pay-db has no paynb_sandbox.meta as_of: seed pay-db before the warehouse")
    return date.fromisoformat(raw)


def _as_lists(rows: list) -> list[list[Any]]:
    return [list(r) for r in rows]


# -- injections ---------------------------------------------------------------------------------------------
_TAKEN = "SELECT unnest(ids) FROM paynb_sandbox.scenarios WHERE table_name = 'invoices'"


def _pick(
    conn: Connection, method: str, invoice_status: str, ref_status: str, n: int, skip: set[int]
) -> list:
    """The first ``n`` untouched single-reference invoices of a kind, in id order (deterministic)."""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT i.id, r.invoice_number, i.total
              FROM invoices i JOIN invoice_references r ON r.invoice_id = i.id AND r.status_code = :rs
             WHERE i.payment_method_code = :m AND i.invoice_status_code = :s AND i.total > 0
               AND i.id NOT IN ({_TAKEN})
               AND (SELECT count(*) FROM invoice_references x WHERE x.invoice_number = r.invoice_number) = 1
             ORDER BY i.id LIMIT :n
            """  # noqa: S608 - a constant subquery, values are bound
        ),
        {"m": method, "s": invoice_status, "rs": ref_status, "n": n + len(skip)},
    ).all()
    picked = [r for r in rows if r[0] not in skip][:n]
    if len(picked) < n:
        raise SandboxError(f"too few {method} {invoice_status} invoices to inject the warehouse scenarios")
    skip.update(r[0] for r in picked)
    return picked


def _inject_paydb(conn: Connection, as_of: date) -> dict[str, dict]:
    out: dict[str, dict] = {}
    skip: set[int] = set()

    def cfs(sql: str, **params: Any) -> None:
        done = conn.execute(sa.text(f"UPDATE paynb_sandbox.cfs_invoices SET {sql}"), params)  # noqa: S608
        if done.rowcount != 1:
            raise SandboxError(f"warehouse injection touched {done.rowcount} CFS invoices instead of 1")

    ((i, num, total),) = _pick(conn, "ONLINE_BANKING", "SETTLEMENT_SCHED", "ACTIVE", 1, skip)
    cfs("amount_due = 0 WHERE invoice_number = :n AND amount_due > 0", n=num)
    out["recon_paid_in_cas_only"] = {"invoices": [i], "numbers": [num]}

    ((i, num, total),) = _pick(conn, "ONLINE_BANKING", "PAID", "COMPLETED", 1, skip)
    cfs("amount_due = total WHERE invoice_number = :n", n=num)
    out["recon_open_in_cas"] = {"invoices": [i], "numbers": [num]}

    ((i, num, total),) = _pick(conn, "ONLINE_BANKING", "PAID", "COMPLETED", 1, skip)
    cfs("total = total + 10 WHERE invoice_number = :n", n=num)
    out["recon_total_differs"] = {"invoices": [i], "numbers": [num]}

    ((i, num, total),) = _pick(conn, "INTERNAL", "PAID", "COMPLETED", 1, skip)
    cfs("present = false WHERE invoice_number = :n", n=num)
    out["recon_reference_missing"] = {"invoices": [i], "numbers": [num]}

    ((i, num, total),) = _pick(conn, "ONLINE_BANKING", "PAID", "COMPLETED", 1, skip)
    conn.execute(
        sa.text(
            "INSERT INTO paynb_sandbox.cfs_invoices (cfs_party, cfs_account, cfs_site, invoice_number, total, "
            "amount_due, present, payment_method) SELECT cfs_party, cfs_account, cfs_site, :c, total, 0, true, "
            "payment_method FROM paynb_sandbox.cfs_invoices WHERE invoice_number = :n"
        ),
        {"c": f"{num}-C", "n": num},
    )
    out["recon_consolidated_unlinked"] = {"invoices": [i], "numbers": [f"{num}-C"]}

    orphan = "REG90000001"
    conn.execute(
        sa.text(
            "INSERT INTO paynb_sandbox.cfs_invoices (cfs_party, cfs_account, cfs_site, invoice_number, total, "
            "amount_due, present, payment_method) SELECT cfs_party, cfs_account, cfs_site, :o, 42.00, 42.00, "
            "true, payment_method FROM paynb_sandbox.cfs_invoices WHERE invoice_number = :n"
        ),
        {"o": orphan, "n": num},
    )
    out["recon_cas_orphan"] = {"invoices": [], "numbers": [orphan]}

    picked = _pick(conn, "DRAWDOWN", "PAID", "COMPLETED", 3, skip)
    for name, (i, num, total) in zip(
        ("recon_bcol_refunded_not_marked", "recon_bcol_refund_mismatch", "recon_bcol_refund_pending"),
        picked,
        strict=True,
    ):
        conn.execute(
            sa.text("UPDATE invoices SET invoice_status_code = 'REFUND_REQUESTED' WHERE id = :i"), {"i": i}
        )
        out[name] = {"invoices": [i], "numbers": [num], "total": total}
    for name, status in (
        ("recon_bcol_key_missing", "PAID"),
        ("recon_bcol_amount_mismatch", "PAID"),
        ("recon_bcol_refund_missing", "REFUNDED"),
    ):
        ((i, num, total),) = _pick(conn, "DRAWDOWN", status, "COMPLETED", 1, skip)
        out[name] = {"invoices": [i], "numbers": [num], "total": total}

    disb = conn.execute(
        sa.text(
            "UPDATE partner_disbursements SET status_code = 'ERRORED', feedback_on = created_on + interval '1 day' "
            "WHERE id = (SELECT min(id) FROM partner_disbursements WHERE status_code = 'COMPLETED') RETURNING id"
        )
    ).scalar()
    if disb is None:
        raise SandboxError("no COMPLETED partner disbursement to inject recon_disbursement_errored")
    out["recon_disbursement_errored"] = {"partner_disbursements": [disb], "numbers": []}
    return out


def _inject_warehouse(memos: list[list], bcol: list[list], injected: dict[str, dict]) -> dict[str, dict]:
    """Warehouse-only changes (credit memos, BCOL rows); pay-db side changes are already made."""
    out: dict[str, dict] = {}
    if not memos:
        raise SandboxError("pay-db has no credit memo to base the credit-memo scenarios on")
    first = memos[0]
    orphan_cm = [
        "CM90000001",
        CAS_TXN_TYPE,
        "CM",
        Decimal("-25.00"),
        Decimal("-25.00"),
        first[5],
        None,
        first[7],
    ]
    memos.append(orphan_cm)
    out["recon_cm_without_credit"] = {"numbers": [orphan_cm[0]]}
    first[3] = Decimal(first[3]) - Decimal("5.00")
    out["recon_cm_amount_differs"] = {"numbers": [first[0]]}

    charges = {(r[0], r[2]): r for r in bcol}
    today = first[5]

    def number(name: str) -> str:
        return injected[name]["numbers"][0]

    for name, refund in (
        ("recon_bcol_refunded_not_marked", Decimal("0")),
        ("recon_bcol_refund_mismatch", Decimal("1.00")),
    ):
        total = Decimal(injected[name]["total"])
        bcol.append([number(name), -(total - refund), -1, today])
    bcol.remove(charges[(number("recon_bcol_key_missing"), 1)])
    charges[(number("recon_bcol_amount_mismatch"), 1)][1] += Decimal("2.50")
    bcol.remove(charges[(number("recon_bcol_refund_missing"), -1)])
    return out


def _record(conn: Connection, injected: dict[str, dict]) -> None:
    """One paynb_sandbox.scenarios row per scenario and table it touched (numbers in details)."""
    for name, facts in injected.items():
        scenario = BY_NAME[name]
        details = {"class": scenario.mismatch_class, "numbers": facts.get("numbers", [])}
        tables = {t: facts[t] for t in ("invoices", "partner_disbursements") if facts.get(t)}
        for table, ids in (tables or {"cas.ar_transactions": []}).items():
            conn.execute(
                sa.text(
                    "INSERT INTO paynb_sandbox.scenarios (name, description, runbook_ref, table_name, ids, details) "
                    "VALUES (:n, :d, 'docs/reconciliation.md', :t, :ids, CAST(:det AS jsonb)) "
                    "ON CONFLICT (name, table_name) DO UPDATE SET ids = EXCLUDED.ids, details = EXCLUDED.details"
                ),
                {
                    "n": name,
                    "d": scenario.description,
                    "t": table,
                    "ids": [int(x) for x in ids],
                    "det": _json(details),
                },
            )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str, sort_keys=True)


# -- writing ------------------------------------------------------------------------------------------------
def _copy(cur: Any, table: str, rows: list) -> None:
    """COPY rows in (tab-separated text; None becomes \\N)."""
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} FROM STDIN", buf)


def _create_reader(conn: Connection) -> None:
    """The reader role, cluster-wide, made once (it logs in only once it has a password)."""
    conn.exec_driver_sql(
        f"""
        DO $$ BEGIN
          CREATE ROLE {READER_ROLE} LOGIN;
          ALTER ROLE {READER_ROLE} SET default_transaction_read_only = on;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )


def _grant_reader(conn: Connection, database: str) -> None:
    """The reader role may connect and SELECT, nothing else."""
    _create_reader(conn)
    conn.exec_driver_sql(
        f"""
        GRANT CONNECT ON DATABASE "{database}" TO {READER_ROLE};
        GRANT USAGE ON SCHEMA cas, colin TO {READER_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA cas, colin TO {READER_ROLE};
        """
    )
