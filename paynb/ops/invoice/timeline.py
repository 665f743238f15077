"""Every timestamp around an invoice, each with what it means (the dates are often misread: pay-db's
``payment_date`` and ``refund_date`` are when paynb's jobs *heard* of the money, not when it moved)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from typing import Any

from paynb.ops.invoice.facts import InvoiceFacts


@dataclass(frozen=True)
class Event:
    at: datetime
    what: str
    meaning: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_INVOICE_DATES = {
    "created_on": ("invoice created", "when pay-api accepted the filing's payment request"),
    "payment_date": (
        "payment_date",
        "when pay-db moved the invoice to PAID, i.e. when the feedback (CSV, FEEDBACK file, callback) arrived, "
        "not when the money moved",
    ),
    "refund_date": (
        "refund_date",
        "when pay-db moved it to CANCELLED/CREDITED/REFUNDED on receiving feedback, not when money moved",
    ),
    "disbursement_date": ("disbursement_date", "when the partner disbursement was confirmed by FEEDBACK"),
    "overdue_date": ("overdue_date", "when the invoice became overdue (EFT statements)"),
}


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, time())
    return None


def build_timeline(
    facts: InvoiceFacts, *, feedback: list[dict[str, Any]], csv_rows: list[dict[str, Any]]
) -> list[Event]:
    events: list[Event] = []

    def add(value: Any, what: str, meaning: str, source: str) -> None:
        at = _as_datetime(value)
        if at is not None:
            events.append(Event(at, what, meaning, source))

    for column, (what, meaning) in _INVOICE_DATES.items():
        add(facts.invoice.get(column), what, meaning, f"invoices.{column}")
    for ref in facts.references:
        add(
            ref.get("created_on"),
            f"reference {ref.get('invoice_number')} ({ref.get('status_code')})",
            "CREATE_INVOICES (or the EJV job) linked the invoice to a CFS number; status is today's",
            "invoice_references.created_on",
        )
    for p in facts.payments:
        add(
            p.get("payment_date"),
            f"payment {p.get('id')} {p.get('payment_status_code')} {p.get('paid_amount')}",
            "when the payment row was written from the settlement feedback",
            "payments.payment_date",
        )
    for r in facts.receipts:
        add(
            r.get("receipt_date"),
            f"receipt {r.get('receipt_number')} {r.get('receipt_amount')}",
            "CFS receipt date",
            "receipts",
        )
    for r in facts.refunds:
        add(
            r.get("requested_date"),
            f"refund requested ({r.get('status')})",
            "who asked and why is in the row",
            "refunds",
        )
    for r in facts.refunds_partial:
        add(
            r.get("created_on"),
            f"partial refund/credit {r.get('refund_amount')}",
            "line-level refund or credit",
            "refunds_partial",
        )
    for s in facts.statements:
        add(
            s.get("created_on"),
            f"{s.get('frequency')} statement {s.get('id')} ({s.get('from_date')}..{s.get('to_date')})",
            "the statement job listed the invoice",
            "statements.created_on",
        )
    for e in facts.ejv:
        add(
            e.get("file_created_on"),
            f"EJV file {e.get('file_ref')} ({e.get('file_status')})",
            "the INBOX file was written",
            "ejv_files.created_on",
        )
        add(
            e.get("completed_on"),
            f"EJV file {e.get('file_ref')} completed",
            "FEEDBACK was processed",
            "ejv_files.completed_on",
        )
    for d in facts.partner_disbursements:
        add(
            d.get("created_on"),
            f"partner disbursement {d.get('id')} ({d.get('status_code')})",
            "queued for the partner",
            "partner_disbursements",
        )
        add(
            d.get("feedback_on"),
            f"partner disbursement {d.get('id')} feedback",
            "FEEDBACK for the disbursement",
            "partner_disbursements.feedback_on",
        )
    for m in feedback:
        add(
            m.get("effective_date"),
            f"{m['kind']} {m['name']} line {m['line']} ({m.get('return_code') or 'sent'})",
            "the journal's effective date in the file",
            "FEEDBACK/INBOX file",
        )
    for row in csv_rows:
        add(
            row.get("application_date") or row.get("file_date"),
            f"CSV {row['file_name']} line {row['line']} {row.get('record_type')} {row.get('status')}",
            "CAS applied the payment in this settlement file",
            "CAS settlement CSV",
        )
    events.sort(key=lambda e: (e.at, e.what))
    return events
