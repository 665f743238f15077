"""pay-db reads for a PAD credit: the invoice, its line items and earlier partial credits, distribution
codes, the payment and CFS accounts, the CFS invoice reference, and the payment-method facts.

Read-only; every query binds its values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from paynb.db import fetch_all, fetch_one
from paynb.enums import (
    REFUNDABLE_STATUSES,
    CfsAccountStatus,
    InvoiceReferenceStatus,
    PaymentMethod,
    RefundsPartialStatus,
)
from paynb.errors import InputError
from paynb.ops.pad.credit_lines import SERVICE, DistCode, LineFacts, gl_account, money


@dataclass(frozen=True)
class InvoiceFacts:
    id: int
    payment_method: str
    status: str
    total: Decimal
    paid: Decimal | None
    refund: Decimal | None
    refund_date: datetime | None
    service_fees: Decimal | None
    gst: Decimal
    payment_account_id: int | None
    cfs_account_id: int | None
    corp_type_code: str | None = None
    #: ``corp_types.refund_approval``: sbc-pay's refund API needs a second person's approval for this corp type
    refund_approval: bool = False


@dataclass(frozen=True)
class MethodFacts:
    """``payment_methods.partial_refund`` / ``full_refund_statuses`` of the invoice's method."""

    code: str
    partial_refund: bool
    full_refund_statuses: frozenset[str]


@dataclass(frozen=True)
class AccountFacts:
    id: int
    name: str | None
    pad_credit: Decimal | None
    version: int = 1


@dataclass(frozen=True)
class CfsAccountFacts:
    id: int
    party: str | None
    account: str | None
    site: str | None
    status: str | None
    payment_method: str | None
    source: str  # "invoice" (invoices.cfs_account_id) or "effective" (the account's PAD row)

    @property
    def complete(self) -> bool:
        return bool(self.party and self.account and self.site)


@dataclass(frozen=True)
class ReferenceFacts:
    id: int
    invoice_number: str | None
    status: str


@dataclass(frozen=True)
class CreditFacts:
    invoice: InvoiceFacts
    method: MethodFacts
    lines: dict[int, LineFacts]
    codes: dict[int, DistCode]
    account: AccountFacts | None
    cfs_account: CfsAccountFacts | None
    reference: ReferenceFacts | None


INVOICE_SQL = """
SELECT i.id, i.payment_method_code, i.invoice_status_code, i.total, i.paid, i.refund, i.refund_date,
       i.service_fees, i.gst, i.payment_account_id, i.cfs_account_id, i.corp_type_code,
       COALESCE(ct.refund_approval, false) AS refund_approval
FROM invoices i LEFT JOIN corp_types ct ON ct.code = i.corp_type_code
WHERE i.id = :id
"""
METHOD_SQL = "SELECT code, partial_refund, full_refund_statuses FROM payment_methods WHERE code = :code"
LINES_SQL = """
SELECT id, invoice_id, description, line_item_status_code, total, service_fees, statutory_fees_gst,
       service_fees_gst, fee_distribution_id
FROM payment_line_items WHERE invoice_id = :id ORDER BY id
"""
# earlier partial refunds/credits per line and pool; declined requests took nothing
PARTIALS_SQL = """
SELECT payment_line_item_id, (refund_type = :service) AS is_service, SUM(refund_amount) AS amount
FROM refunds_partial
WHERE invoice_id = :id AND (status IS NULL OR status <> :declined)
GROUP BY payment_line_item_id, (refund_type = :service)
"""
CODES_SQL = """
SELECT distribution_code_id, name, client, responsibility_centre, service_line, stob, project_code,
       start_date, end_date, service_fee_distribution_code_id, statutory_fees_gst_distribution_code_id,
       service_fee_gst_distribution_code_id
FROM distribution_codes WHERE distribution_code_id = ANY(:ids)
"""
ACCOUNT_SQL = "SELECT id, name, pad_credit, version FROM payment_accounts WHERE id = :id"
CFS_BY_ID_SQL = """
SELECT id, cfs_party, cfs_account, cfs_site, status, payment_method FROM cfs_accounts WHERE id = :id
"""
# the account's PAD row that is not INACTIVE (find_effective_by_payment_method), else the newest one
CFS_EFFECTIVE_SQL = """
SELECT id, cfs_party, cfs_account, cfs_site, status, payment_method FROM cfs_accounts
WHERE account_id = :account AND payment_method = :method
ORDER BY (status IS DISTINCT FROM :inactive) DESC, id DESC
LIMIT 1
"""
# the reference CFS knows the invoice by: not CANCELLED, newest first
REFERENCE_SQL = """
SELECT id, invoice_number, status_code FROM invoice_references
WHERE invoice_id = :id AND status_code <> :cancelled
ORDER BY (status_code = :completed) DESC, id DESC
LIMIT 1
"""
OWNERS_SQL = "SELECT id, invoice_id FROM payment_line_items WHERE id = ANY(:ids)"


def _method_facts(conn: Connection, code: str) -> MethodFacts:
    row = fetch_one(conn, METHOD_SQL, {"code": code})
    if row is not None and row.get("partial_refund") is not None:
        statuses = row.get("full_refund_statuses") or []
        return MethodFacts(code, bool(row["partial_refund"]), frozenset(str(s) for s in statuses))
    # a pay-db without the columns: the seeded facts (paynb.enums)
    try:
        method = PaymentMethod(code)
    except ValueError:
        return MethodFacts(code, False, frozenset())
    from paynb.enums import PARTIAL_REFUND_ALLOWED

    return MethodFacts(
        code,
        PARTIAL_REFUND_ALLOWED.get(method, False),
        frozenset(s.value for s in REFUNDABLE_STATUSES.get(method, frozenset())),
    )


def _active(start: date | None, end: date | None, today: date) -> bool:
    return (start is None or start <= today) and (end is None or end >= today)


def load_codes(conn: Connection, first: Iterable[int], today: date) -> dict[int, DistCode]:
    """The distribution codes named, plus the service-fee and GST codes they point to."""
    codes: dict[int, DistCode] = {}
    wanted = {c for c in first if c is not None}
    while wanted:
        rows = fetch_all(conn, CODES_SQL, {"ids": sorted(wanted)})
        wanted = set()
        for r in rows:
            code = DistCode(
                id=int(r["distribution_code_id"]),
                name=r["name"] or "",
                account=gl_account(
                    r["client"], r["responsibility_centre"], r["service_line"], r["stob"], r["project_code"]
                ),
                active=_active(r["start_date"], r["end_date"], today),
                service_fee_code_id=r["service_fee_distribution_code_id"],
                statutory_gst_code_id=r["statutory_fees_gst_distribution_code_id"],
                service_gst_code_id=r["service_fee_gst_distribution_code_id"],
            )
            codes[code.id] = code
            for nxt in (code.service_fee_code_id, code.statutory_gst_code_id, code.service_gst_code_id):
                if nxt is not None and nxt not in codes:
                    wanted.add(nxt)
        wanted -= set(codes)
    return codes


def load_credit_facts(conn: Connection, invoice_id: int, today: date) -> CreditFacts:
    """Everything a credit plan is computed from. Raises InputError when the invoice does not exist."""
    row = fetch_one(conn, INVOICE_SQL, {"id": invoice_id})
    if row is None:
        raise InputError(f"invoice {invoice_id} does not exist in pay-db", field="invoice_id")
    invoice = InvoiceFacts(
        id=int(row["id"]),
        payment_method=row["payment_method_code"],
        status=row["invoice_status_code"],
        total=money(row["total"]),
        paid=None if row["paid"] is None else money(row["paid"]),
        refund=None if row["refund"] is None else money(row["refund"]),
        refund_date=row["refund_date"],
        service_fees=None if row["service_fees"] is None else money(row["service_fees"]),
        gst=money(row["gst"]),
        payment_account_id=row["payment_account_id"],
        cfs_account_id=row["cfs_account_id"],
        corp_type_code=row["corp_type_code"],
        refund_approval=bool(row["refund_approval"]),
    )
    method = _method_facts(conn, invoice.payment_method)
    credited: dict[tuple[int, bool], Decimal] = {}
    for r in fetch_all(
        conn,
        PARTIALS_SQL,
        {"id": invoice_id, "service": SERVICE, "declined": RefundsPartialStatus.REFUND_DECLINED.value},
    ):
        credited[(int(r["payment_line_item_id"]), bool(r["is_service"]))] = money(r["amount"])
    lines: dict[int, LineFacts] = {}
    for r in fetch_all(conn, LINES_SQL, {"id": invoice_id}):
        lid = int(r["id"])
        lines[lid] = LineFacts(
            id=lid,
            invoice_id=int(r["invoice_id"]),
            description=r["description"] or "",
            status=r["line_item_status_code"],
            total=money(r["total"]),
            service_fees=money(r["service_fees"]),
            statutory_fees_gst=money(r["statutory_fees_gst"]),
            service_fees_gst=money(r["service_fees_gst"]),
            fee_distribution_id=r["fee_distribution_id"],
            credited_fees=credited.get((lid, False), money(0)),
            credited_service_fees=credited.get((lid, True), money(0)),
        )
    codes = load_codes(
        conn, (ln.fee_distribution_id for ln in lines.values() if ln.fee_distribution_id), today
    )
    account = None
    if invoice.payment_account_id is not None:
        a = fetch_one(conn, ACCOUNT_SQL, {"id": invoice.payment_account_id})
        if a is not None:
            account = AccountFacts(
                int(a["id"]),
                a["name"],
                None if a["pad_credit"] is None else money(a["pad_credit"]),
                int(a["version"] or 1),
            )
    cfs = _cfs_account(conn, invoice)
    ref = fetch_one(
        conn,
        REFERENCE_SQL,
        {
            "id": invoice_id,
            "cancelled": InvoiceReferenceStatus.CANCELLED.value,
            "completed": InvoiceReferenceStatus.COMPLETED.value,
        },
    )
    reference = ReferenceFacts(int(ref["id"]), ref["invoice_number"], ref["status_code"]) if ref else None
    return CreditFacts(invoice, method, lines, codes, account, cfs, reference)


def _cfs_account(conn: Connection, invoice: InvoiceFacts) -> CfsAccountFacts | None:
    def build(r: dict[str, Any], source: str) -> CfsAccountFacts:
        return CfsAccountFacts(
            int(r["id"]),
            r["cfs_party"],
            r["cfs_account"],
            r["cfs_site"],
            r["status"],
            r["payment_method"],
            source,
        )

    # sbc-pay posts the memo to the CFS account the invoice was created on (invoices.cfs_account_id)
    if invoice.cfs_account_id is not None:
        r = fetch_one(conn, CFS_BY_ID_SQL, {"id": invoice.cfs_account_id})
        if r is not None:
            return build(r, "invoice")
    if invoice.payment_account_id is None:
        return None
    r = fetch_one(
        conn,
        CFS_EFFECTIVE_SQL,
        {
            "account": invoice.payment_account_id,
            "method": invoice.payment_method,
            "inactive": CfsAccountStatus.INACTIVE.value,
        },
    )
    return build(r, "effective") if r is not None else None


def line_owners(conn: Connection, ids: Iterable[int]) -> dict[int, int]:
    """Which invoice each line item id belongs to (for "belongs to another invoice" messages)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {int(r["id"]): int(r["invoice_id"]) for r in fetch_all(conn, OWNERS_SQL, {"ids": wanted})}


# credits pay-db holds for an invoice (its memos by number), to tell which CFS memos have no pay-db rows
INVOICE_CREDITS_SQL = """
SELECT id, cfs_identifier, amount, details FROM credits WHERE created_invoice_id = :id ORDER BY id
"""


def invoice_credits(conn: Connection, invoice_id: int) -> list[dict[str, Any]]:
    """The ``credits`` rows created for ``invoice_id`` (sbc-pay's and paynb's)."""
    return fetch_all(conn, INVOICE_CREDITS_SQL, {"id": invoice_id})
