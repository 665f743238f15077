"""Everything pay-db holds about a set of invoices, read in a fixed number of round trips (one per
table, for all the invoices at once), so explaining 1 or 100 invoices costs the same ~15 queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from paynb.db import fetch_all as _fetch_all

Row = dict[str, Any]


def fetch_all(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
    """Rows with double-precision columns (some pay-db money columns are float8) as exact Decimals."""
    return [
        {k: Decimal(repr(v)) if isinstance(v, float) else v for k, v in row.items()}
        for row in _fetch_all(conn, sql, params)
    ]


# name -> (SQL over :ids, the column that names the invoice). Each reads every status, on purpose.
_PER_INVOICE: dict[str, tuple[str, str]] = {
    "lines": ("SELECT * FROM payment_line_items WHERE invoice_id = ANY(:ids) ORDER BY id", "invoice_id"),
    "references": (
        "SELECT * FROM invoice_references WHERE invoice_id = ANY(:ids) ORDER BY created_on, id",
        "invoice_id",
    ),
    "receipts": (
        "SELECT * FROM receipts WHERE invoice_id = ANY(:ids) ORDER BY receipt_date, id",
        "invoice_id",
    ),
    "refunds": (
        "SELECT * FROM refunds WHERE invoice_id = ANY(:ids) ORDER BY requested_date, id",
        "invoice_id",
    ),
    "refunds_partial": (
        "SELECT * FROM refunds_partial WHERE invoice_id = ANY(:ids) ORDER BY id",
        "invoice_id",
    ),
    "nsf": ("SELECT * FROM non_sufficient_funds WHERE invoice_id = ANY(:ids) ORDER BY id", "invoice_id"),
    "statements": (
        """
        SELECT si.invoice_id, s.* FROM statement_invoices si JOIN statements s ON s.id = si.statement_id
        WHERE si.invoice_id = ANY(:ids) ORDER BY s.from_date, s.id
        """,
        "invoice_id",
    ),
    "ejv": (
        """
        SELECT l.link_id AS invoice_id, l.id AS link_row_id, l.disbursement_status_code AS link_status,
               l.message AS link_message, l.link_type, h.id AS ejv_header_id,
               h.disbursement_status_code AS header_status, h.message AS header_message, h.partner_code,
               f.id AS ejv_file_id, f.file_ref, f.file_type, f.created_on AS file_created_on, f.completed_on,
               f.feedback_file_ref, f.disbursement_status_code AS file_status, f.message AS file_message
        FROM ejv_links l JOIN ejv_headers h ON h.id = l.ejv_header_id JOIN ejv_files f ON f.id = h.ejv_file_id
        WHERE l.link_id = ANY(:ids) AND (l.link_type IS NULL OR l.link_type = 'invoice')
        ORDER BY f.created_on, l.id
        """,
        "invoice_id",
    ),
    "partner_disbursements": (
        "SELECT * FROM partner_disbursements WHERE lower(target_type) = 'invoice' AND target_id = ANY(:ids) ORDER BY id",
        "target_id",
    ),
}


@dataclass
class InvoiceFacts:
    """One invoice and the rows around it. Lists are in time order."""

    invoice: Row
    account: Row | None = None
    cfs_accounts: list[Row] = field(default_factory=list)
    lines: list[Row] = field(default_factory=list)
    references: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    receipts: list[Row] = field(default_factory=list)
    refunds: list[Row] = field(default_factory=list)
    refunds_partial: list[Row] = field(default_factory=list)
    credits: list[Row] = field(default_factory=list)  # the account's credits (memos and on-account)
    statements: list[Row] = field(default_factory=list)
    ejv: list[Row] = field(default_factory=list)
    partner_disbursements: list[Row] = field(default_factory=list)
    nsf: list[Row] = field(default_factory=list)
    routing_slip: Row | None = None
    distribution_stop_ejv: list[Row] = field(default_factory=list)
    settlement_guards: list[Row] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.invoice["id"])

    @property
    def numbers(self) -> list[str]:
        """Every CFS number of this invoice, newest reference last."""
        return [r["invoice_number"] for r in self.references if r.get("invoice_number")]


def load_facts(conn: Connection, invoice_ids: Sequence[int]) -> dict[int, InvoiceFacts]:
    ids = list(invoice_ids)
    invoices = fetch_all(conn, "SELECT * FROM invoices WHERE id = ANY(:ids)", {"ids": ids})
    facts = {r["id"]: InvoiceFacts(invoice=r) for r in invoices}
    if not facts:
        return {}
    for name, (sql, key) in _PER_INVOICE.items():
        grouped: dict[int, list[Row]] = defaultdict(list)
        for row in fetch_all(conn, sql, {"ids": ids}):
            grouped[int(row[key])].append(row)
        for invoice_id, rows in grouped.items():
            if invoice_id in facts:
                setattr(facts[invoice_id], name, rows)
    account_ids = sorted(
        {f.invoice["payment_account_id"] for f in facts.values() if f.invoice["payment_account_id"]}
    )
    accounts = {
        r["id"]: r
        for r in fetch_all(conn, "SELECT * FROM payment_accounts WHERE id = ANY(:a)", {"a": account_ids})
    }
    cfs_rows: dict[int, list[Row]] = defaultdict(list)
    for r in fetch_all(
        conn, "SELECT * FROM cfs_accounts WHERE account_id = ANY(:a) ORDER BY id", {"a": account_ids}
    ):
        cfs_rows[r["account_id"]].append(r)
    numbers = sorted({n for f in facts.values() for n in f.numbers})
    payments: dict[str, list[Row]] = defaultdict(list)
    for r in fetch_all(
        conn,
        "SELECT * FROM payments WHERE invoice_number = ANY(:n) OR cons_inv_number = ANY(:n) ORDER BY id",
        {"n": numbers},
    ):
        for key in (r.get("invoice_number"), r.get("cons_inv_number")):
            if key:
                payments[key].append(r)
    slips = sorted({f.invoice["routing_slip"] for f in facts.values() if f.invoice.get("routing_slip")})
    slip_rows = {
        r["number"]: r
        for r in fetch_all(conn, "SELECT * FROM routing_slips WHERE number = ANY(:s)", {"s": slips})
    }
    stop_ejv: dict[int, list[Row]] = defaultdict(list)
    for r in fetch_all(
        conn,
        "SELECT distribution_code_id AS id, name, account_id, stop_ejv FROM distribution_codes "
        "WHERE account_id = ANY(:a) AND stop_ejv",
        {"a": account_ids},
    ):
        stop_ejv[r["account_id"]].append(r)
    # credits belong to the account; a memo is matched to its row by cfs_identifier (see diagnose)
    credits: dict[int, list[Row]] = defaultdict(list)
    for r in fetch_all(
        conn, "SELECT * FROM credits WHERE account_id = ANY(:a) ORDER BY id", {"a": account_ids}
    ):
        credits[r["account_id"]].append(r)
    for f in facts.values():
        acct = f.invoice["payment_account_id"]
        f.account = accounts.get(acct)
        f.cfs_accounts = cfs_rows.get(acct, [])
        f.payments = [p for n in f.numbers for p in payments.get(n, [])]
        f.routing_slip = slip_rows.get(f.invoice.get("routing_slip"))
        f.distribution_stop_ejv = stop_ejv.get(acct, [])
        f.credits = credits.get(acct, [])
    return facts


def load_settlement_guards(conn: Connection, names: Sequence[str]) -> dict[str, list[Row]]:
    rows = fetch_all(
        conn, "SELECT * FROM cas_settlements WHERE file_name = ANY(:n) ORDER BY id", {"n": list(names)}
    )
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        out[r["file_name"]].append(r)
    return out
