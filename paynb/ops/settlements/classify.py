"""What pay-queue would do with each row of a settlement CSV, read from pay-db (the replay plan's rows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from paynb import db
from paynb.formats.settlement_csv import (
    RecordType,
    SettlementFile,
    SettlementRow,
    TargetStatus,
    TargetType,
)
from paynb.ids import consolidated_invoice_number

if TYPE_CHECKING:
    pass


# -- the replay plan ----------------------------------------------------------------------------------------
class Disposition:
    """What a replay would do with one CSV row."""

    APPLY = "apply"  # safe and not yet applied: goes into the filtered CSV
    ALREADY_APPLIED = "already_applied"
    NSF_RISK = "nsf_risk"  # Not PAID / PADR / PAYR: never replayed by this planner
    BLOCKED = "blocked"  # pay-queue would log an error for the row, or abort the file
    NO_EFFECT = "no_effect"  # logged or skipped by pay-queue
    UNSUPPORTED = "unsupported"  # unknown record type / status / target type, or ONAP

    ALL = (APPLY, ALREADY_APPLIED, NSF_RISK, BLOCKED, NO_EFFECT, UNSUPPORTED)


@dataclass
class _Context:
    refs: dict[str, list[dict]]  # invoice number -> references joined with their invoice
    payments: dict[str, list[dict]]  # invoice number -> payments
    nsf_numbers: set[str]
    credits: set[str]  # credits.cfs_identifier
    applied_credit_ids: set[int]  # applied_credits.application_id
    account_cfs: dict[int, set[str]]  # payment account id -> its cfs_accounts.cfs_account values
    paid_in_file: dict[str, int] = field(default_factory=dict)  # number -> first line that pays it


@dataclass(frozen=True)
class RowPlan:
    line: int
    record_type: str
    source_number: str
    target_type: str
    target_number: str
    status: str
    amount: Decimal
    customer_account: str
    disposition: str
    reason: str
    nsf_risk: bool
    changes: tuple[dict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "record_type": self.record_type,
            "source_number": self.source_number,
            "target_type": self.target_type,
            "target_number": self.target_number,
            "status": self.status,
            "amount": self.amount,
            "customer_account": self.customer_account,
            "disposition": self.disposition,
            "reason": self.reason,
            "nsf_risk": self.nsf_risk,
            "changes": list(self.changes),
        }


_REFS_SQL = """
SELECT ir.id AS reference_id, ir.invoice_id, ir.invoice_number, ir.status_code, ir.is_consolidated,
       i.invoice_status_code, i.payment_method_code, i.total, i.paid, i.payment_account_id,
       ca.cfs_account AS invoice_cfs_account
  FROM invoice_references ir
  JOIN invoices i ON i.id = ir.invoice_id
  LEFT JOIN cfs_accounts ca ON ca.id = i.cfs_account_id
 WHERE ir.invoice_number = ANY(:numbers)
 ORDER BY ir.invoice_number, ir.invoice_id, ir.id
"""
_PAYMENTS_SQL = """
SELECT id, invoice_number, receipt_number, payment_status_code, paid_amount
  FROM payments WHERE invoice_number = ANY(:numbers) ORDER BY id
"""
_NSF_SQL = "SELECT DISTINCT invoice_number FROM non_sufficient_funds WHERE invoice_number = ANY(:numbers)"
_CREDITS_SQL = "SELECT DISTINCT cfs_identifier FROM credits WHERE cfs_identifier = ANY(:ids)"
_APPLIED_SQL = "SELECT DISTINCT application_id FROM applied_credits WHERE application_id = ANY(:ids)"
_ACCOUNTS_SQL = """
SELECT account_id, cfs_account FROM cfs_accounts WHERE account_id = ANY(:ids) AND cfs_account IS NOT NULL
"""
GUARD_SQL = """
SELECT id, file_name, received_on, processed_on FROM cas_settlements WHERE file_name = ANY(:names) ORDER BY id
"""
DELETE_GUARD_SQL = "DELETE FROM cas_settlements WHERE id = :id AND file_name = :file_name"
# what pay-queue does when a file finishes (payment_reconciliations.py), with paynb's clock (naive UTC)
FINISH_GUARD_SQL = (
    "UPDATE cas_settlements SET processed_on = (now() AT TIME ZONE 'UTC')"
    " WHERE id = :id AND file_name = :file_name AND processed_on IS NULL"
)
# what pay-queue does for a file it sees first (_create_cas_settlement) and then finishes, in one step
INSERT_GUARD_SQL = (
    "INSERT INTO cas_settlements (file_name, received_on, processed_on)"
    " VALUES (:file_name, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')"
)


def guard_rows(conn, names: Iterable[str]) -> dict[str, list[dict]]:
    """``cas_settlements`` rows by file name (the table has no unique constraint: a list per name)."""
    wanted = sorted(set(names))
    out: dict[str, list[dict]] = {n: [] for n in wanted}
    if not wanted:
        return out
    for row in db.fetch_all(conn, GUARD_SQL, {"names": wanted}):
        out.setdefault(row["file_name"], []).append(row)
    return out


def guard_state(rows: Sequence[Mapping[str, Any]]) -> str:
    """``absent`` (never reached the queue), ``processing_failed`` (a row with processed_on NULL) or
    ``processed`` (also after a replay apply closed the original's row: ``docs/settlement-replay.md``)."""
    if not rows:
        return "absent"
    if any(r.get("processed_on") is None for r in rows):
        return "processing_failed"
    return "processed"


def _load_context(conn, parsed: SettlementFile) -> _Context:
    numbers = sorted({r.target_transaction_number for r in parsed.rows if r.target_transaction_number})
    wanted = sorted({*numbers, *(consolidated_invoice_number(n) for n in numbers)})
    refs: dict[str, list[dict]] = {}
    for row in db.fetch_all(conn, _REFS_SQL, {"numbers": wanted}):
        refs.setdefault(row["invoice_number"], []).append(row)
    payments: dict[str, list[dict]] = {}
    for row in db.fetch_all(conn, _PAYMENTS_SQL, {"numbers": numbers}):
        payments.setdefault(row["invoice_number"], []).append(row)
    nsf = {r["invoice_number"] for r in db.fetch_all(conn, _NSF_SQL, {"numbers": numbers})}
    sources = sorted({r.source_transaction_number for r in parsed.rows if r.source_transaction_number})
    credits = {r["cfs_identifier"] for r in db.fetch_all(conn, _CREDITS_SQL, {"ids": sources})}
    app_ids = sorted({r.application_id for r in parsed.rows if r.application_id is not None})
    applied = {int(r["application_id"]) for r in db.fetch_all(conn, _APPLIED_SQL, {"ids": app_ids})}
    account_ids = sorted(
        {r["payment_account_id"] for rs in refs.values() for r in rs if r["payment_account_id"]}
    )
    account_cfs: dict[int, set[str]] = {}
    for row in db.fetch_all(conn, _ACCOUNTS_SQL, {"ids": account_ids}):
        account_cfs.setdefault(int(row["account_id"]), set()).add(str(row["cfs_account"]))
    return _Context(refs, payments, nsf, credits, applied, account_cfs)


def _change(ref: Mapping[str, Any], to_status: str) -> dict[str, Any]:
    return {
        "invoice_id": ref["invoice_id"],
        "reference_id": ref["reference_id"],
        "from_status": ref["invoice_status_code"],
        "to_status": to_status,
        "total": db.to_money(ref["total"]),
        "payment_method": ref["payment_method_code"],
    }


def _account_mismatch(refs: Sequence[Mapping[str, Any]], account: str, ctx: _Context) -> dict | None:
    """The first reference whose invoice's CFS account differs from the CSV ``Customer Account``
    (sbc-pay's ``_validate_account`` raises, which aborts the rest of the file)."""
    for ref in refs:
        expected = ref.get("invoice_cfs_account")
        known = (
            {str(expected)} if expected else ctx.account_cfs.get(int(ref["payment_account_id"] or 0), set())
        )
        if known and account not in known:
            return {"invoice_id": ref["invoice_id"], "cfs_account": sorted(known)}
    return None


def _classify(row: SettlementRow, ctx: _Context) -> tuple[str, str, tuple[dict, ...]]:
    """(disposition, reason, invoice changes) for one row, following pay-queue's reconcile_payments."""
    rtype = row.record_type_enum
    status = row.status
    number = row.target_transaction_number
    refs = ctx.refs.get(number, [])
    active = [r for r in refs if r["status_code"] == "ACTIVE"]
    completed = [r for r in refs if r["status_code"] == "COMPLETED"]
    if row.is_nsf_risk:
        if number in ctx.nsf_numbers or any(
            p["payment_status_code"] == "FAILED" for p in ctx.payments.get(number, [])
        ):
            return (
                Disposition.NSF_RISK,
                "NSF already recorded for this invoice (pay-queue would ignore it); never replayed",
                (),
            )
        paid = [r for r in completed if r["payment_method_code"] == "PAD"]
        ids = ", ".join(str(r["invoice_id"]) for r in paid) or "none yet"
        return (
            Disposition.NSF_RISK,
            f"would run the NSF branch: freeze CFS account {row.customer_account}, set has_nsf_invoices, stop PAD "
            f"(BCR-PAD Stop), reverse PAID invoices ({ids}) to SETTLEMENT_SCHED and create an NSF fee invoice",
            (),
        )
    if rtype is None or rtype is RecordType.ONAP:
        why = (
            "ONAP has no handler in pay-queue (error row)"
            if rtype is RecordType.ONAP
            else "unknown record type"
        )
        return Disposition.UNSUPPORTED, why, ()
    if rtype in (RecordType.ADJS, RecordType.EFTR):
        return Disposition.NO_EFFECT, f"{rtype.value} rows are only logged by pay-queue", ()
    if status is None:
        return Disposition.UNSUPPORTED, f"unknown target status {row.target_transaction_status!r}", ()
    if row.target_type is None:
        return Disposition.UNSUPPORTED, f"unknown target type {row.target_transaction_type!r}", ()
    if row.application_amount == 0 and not row.is_pad:
        return Disposition.NO_EFFECT, "application amount is 0: pay-queue skips the row", ()

    if row.is_pad:  # PADP Fully PAID (the NSF cases were handled above)
        if row.target_type is not TargetType.INV:
            return Disposition.NO_EFFECT, "PAD row whose target is not an invoice", ()
        if status is not TargetStatus.FULLY_PAID:
            return (
                Disposition.BLOCKED,
                f"PAD row with status {row.target_transaction_status!r}: pay-queue logs an error",
                (),
            )
        return _paid_rows(row, active, completed, ctx, pad=True)
    if rtype in (RecordType.BOLP, RecordType.EFTP):
        if rtype is RecordType.EFTP and row.source_transaction_type == "BC REG EFT Wire Cheque":
            return (
                Disposition.NO_EFFECT,
                "EFTP from 'BC REG EFT Wire Cheque' is ignored (the EFT job handles it)",
                (),
            )
        if row.target_type is not TargetType.INV:
            return Disposition.NO_EFFECT, f"{rtype.value} row whose target is not an invoice", ()
        if len(active) > 1:
            return (
                Disposition.BLOCKED,
                f"{len(active)} ACTIVE references for {number}; pay-queue expects exactly one",
                (),
            )
        if not active:
            if len(completed) == 1:
                return Disposition.ALREADY_APPLIED, f"{number} is already COMPLETED", ()
            return Disposition.BLOCKED, f"no ACTIVE reference for {number}: pay-queue logs an error", ()
        if status is TargetStatus.FULLY_PAID:
            return _paid_rows(row, active, completed, ctx, pad=False)
        if status is TargetStatus.PARTIALLY_PAID:
            return (
                Disposition.APPLY,
                "partial payment: the invoice becomes PARTIAL_PAID",
                (_change(active[0], "PARTIAL_PAID"),),
            )
        return (
            Disposition.BLOCKED,
            f"{rtype.value} with status {row.target_transaction_status!r}: pay-queue logs an error",
            (),
        )
    # ONAC / CMAP / DRWP
    if row.target_type is TargetType.RECEIPT:
        if rtype is RecordType.ONAC:
            if row.source_transaction_number in ctx.credits:
                return Disposition.ALREADY_APPLIED, "the on-account credit already exists in credits", ()
            return (
                Disposition.APPLY,
                f"creates a credits row for on-account receipt {row.source_transaction_number}",
                (),
            )
        return Disposition.NO_EFFECT, f"{rtype.value} row on a receipt", ()
    if row.target_type is not TargetType.INV:
        return Disposition.NO_EFFECT, f"{rtype.value} row whose target is not an invoice", ()
    credit_pending = rtype is RecordType.CMAP and row.application_id not in ctx.applied_credit_ids
    if status is TargetStatus.FULLY_PAID:
        disp, reason, changes = _paid_rows(row, active, completed, ctx, pad=False)
        if disp == Disposition.ALREADY_APPLIED and credit_pending:
            return (
                Disposition.APPLY,
                "invoices already PAID; records the applied credit (applied_credits)",
                (),
            )
        return disp, reason, changes
    if status is TargetStatus.PARTIALLY_PAID:
        if credit_pending:
            return Disposition.APPLY, "partial credit application: records applied_credits only", ()
        return Disposition.NO_EFFECT, "Partially PAID credit rows are ignored by pay-queue", ()
    return (
        Disposition.BLOCKED,
        f"{rtype.value} with status {row.target_transaction_status!r}: pay-queue logs an error",
        (),
    )


def _paid_rows(
    row: SettlementRow, active: list[dict], completed: list[dict], ctx: _Context, *, pad: bool
) -> tuple[str, str, tuple[dict, ...]]:
    number = row.target_transaction_number
    if active:
        if any(r["payment_method_code"] == "CC" for r in active):
            return (
                Disposition.NO_EFFECT,
                "an ACTIVE reference belongs to a CC invoice (NSF fee / consolidated): pay-queue skips the row",
                (),
            )
        mismatch = _account_mismatch(active, row.customer_account, ctx)
        if mismatch is not None:
            return (
                Disposition.BLOCKED,
                f"Customer Account {row.customer_account} is not invoice {mismatch['invoice_id']}'s CFS account "
                f"({', '.join(mismatch['cfs_account'])}): pay-queue raises and aborts the rest of the file",
                (),
            )
        first = ctx.paid_in_file.setdefault(number, row.line_number)
        if first != row.line_number:
            return (
                Disposition.APPLY,
                f"line {first} of this file pays the invoices; this row records its payment",
                (),
            )
        ids = ", ".join(str(r["invoice_id"]) for r in active)
        return (
            Disposition.APPLY,
            f"{len(active)} invoice(s) -> PAID ({ids})",
            tuple(_change(r, "PAID") for r in active),
        )
    if completed:
        paid = any(
            p["payment_status_code"] == "COMPLETED" and p["receipt_number"] == row.source_transaction_number
            for p in ctx.payments.get(number, [])
        )
        note = "payment recorded" if paid else "no payments row for this receipt"
        return Disposition.ALREADY_APPLIED, f"references of {number} are COMPLETED ({note})", ()
    if not pad:
        return Disposition.NO_EFFECT, f"no ACTIVE reference for {number}: nothing to pay", ()
    cons = ctx.refs.get(consolidated_invoice_number(number), [])
    if any(r["status_code"] == "COMPLETED" for r in cons):
        return (
            Disposition.ALREADY_APPLIED,
            f"paid by credit card through {consolidated_invoice_number(number)}",
            (),
        )
    if number.startswith("REGUT"):
        return Disposition.NO_EFFECT, "REGUT (DEV) invoice: pay-queue skips it", ()
    return Disposition.BLOCKED, f"no invoice found for {number}: pay-queue logs an error", ()
