"""pay-db and CFS reads about one routing slip: the slip, its links, invoices, refunds, receipts.

Rules and their sbc-pay sources: docs/routing-slips.md.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from paynb import db
from paynb.errors import CfsError

#: statuses pay-api lets a slip move to VOID from (RoutingSlipStatusTransitionService.STATUS_TRANSITIONS)
VOIDABLE = ("ACTIVE", "COMPLETE", "HOLD")
#: invoice statuses that leave nothing owed on the slip
SETTLED = ("REFUNDED", "CANCELLED", "CREDITED", "MANUALLY_REFUNDED")
REVERSED = "REV"  # sbc-pay CfsReceiptStatus.REV


def receipt_number(number: str, parent_number: str | None, cas_version_suffix: int | None) -> str:
    """sbc-pay ``RoutingSlip.generate_cas_receipt_number``."""
    text = number + ("L" if parent_number else "")
    suffix = int(cas_version_suffix or 1)
    return text + (f"R{suffix}" if suffix > 1 else "")


def money(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)).quantize(Decimal("0.01")))


SLIP_SQL = (
    "SELECT id, number, status, total, remaining_amount, refund_amount, refund_status, parent_number, "
    "cas_version_suffix, cas_mismatch, payment_account_id, routing_slip_date FROM routing_slips WHERE number = :n"
)


def read_slip(conn: Connection, number: str, *, lock: bool = False) -> dict[str, Any] | None:
    return db.fetch_one(conn, SLIP_SQL + (" FOR UPDATE" if lock else ""), {"n": number})


def read_cfs_account(conn: Connection, payment_account_id: int | None) -> dict[str, Any] | None:
    """The slip's INTERNAL CFS account (the newest row, as ``find_effective_by_payment_method``)."""
    if payment_account_id is None:
        return None
    return db.fetch_one(
        conn,
        "SELECT id, cfs_party, cfs_account, cfs_site, status FROM cfs_accounts WHERE account_id = :a "
        "AND payment_method = 'INTERNAL' ORDER BY id DESC LIMIT 1",
        {"a": payment_account_id},
    )


def read_children(conn: Connection, number: str) -> list[dict[str, Any]]:
    return db.fetch_all(
        conn,
        "SELECT id, number, status, total, parent_number, cas_version_suffix, payment_account_id FROM "
        "routing_slips WHERE parent_number = :n ORDER BY id",
        {"n": number},
    )


INVOICES_SQL = (
    "SELECT id, routing_slip, invoice_status_code AS status, total, paid, refund FROM invoices WHERE "
    "routing_slip = ANY(:n) AND payment_method_code = 'INTERNAL' ORDER BY id"
)


def read_invoices(conn: Connection, numbers: list[str], *, lock: bool = False) -> list[dict[str, Any]]:
    """INTERNAL invoices linked to the slips (the ``RoutingSlip.invoices`` relationship of sbc-pay)."""
    sql = INVOICES_SQL + " FOR UPDATE" if lock else INVOICES_SQL
    return db.fetch_all(conn, sql, {"n": numbers})


def read_pending_refunds(
    conn: Connection, invoice_ids: list[int], slip_ids: list[int]
) -> list[dict[str, Any]]:
    """Refund work not finished yet: refunds awaiting approval, partial refunds not processed."""
    rows = db.fetch_all(
        conn,
        "SELECT 'refunds' AS source, id, invoice_id, routing_slip_id, status FROM refunds WHERE "
        "(invoice_id = ANY(:inv) OR routing_slip_id = ANY(:rs)) AND status = 'PENDING_APPROVAL' "
        "UNION ALL SELECT 'refunds_partial', id, invoice_id, NULL, status FROM refunds_partial WHERE "
        "invoice_id = ANY(:inv) AND status IN ('REFUND_REQUESTED', 'REFUND_PROCESSING') ORDER BY 1, 2",
        {"inv": invoice_ids or [-1], "rs": slip_ids or [-1]},
    )
    return rows


def read_refunds(conn: Connection, invoice_ids: list[int], slip_id: int) -> list[dict[str, Any]]:
    return db.fetch_all(
        conn,
        "SELECT id, invoice_id, routing_slip_id, status, type, requested_date, decision_date FROM refunds "
        "WHERE invoice_id = ANY(:inv) OR routing_slip_id = :rs ORDER BY id",
        {"inv": invoice_ids or [-1], "rs": slip_id},
    )


def read_marker(conn: Connection, number: str, key: str) -> dict[str, Any] | None:
    """The ``comments`` row paynb writes in the void's first transaction: proof it committed."""
    return db.fetch_one(
        conn,
        'SELECT id, comment, "timestamp" FROM comments WHERE routing_slip_number = :n AND comment LIKE :k '
        "ORDER BY id LIMIT 1",
        {"n": number, "k": f"%paynb:{key}%"},
    )


def receipt_state(cfs: Any, site: tuple[str, str, str], number: str) -> dict[str, Any]:
    """A receipt as CFS holds it (FAS credentials): status, amounts; ``status: MISSING`` on 404."""
    try:
        doc = cfs.get_receipt(*site, number)
    except CfsError as err:
        if err.status == 404:
            return {"receipt_number": number, "status": "MISSING"}
        raise
    return {
        "receipt_number": number,
        "status": str(doc.get("status") or ""),
        "receipt_amount": money(doc.get("receipt_amount")),
        "unapplied_amount": money(doc.get("unapplied_amount")),
    }
