"""Findings and reports of the reconciliations, and what each mismatch class means (docs/reconciliation.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class MismatchClass:
    name: str
    check: str  # cfs, bcol or disbursements
    meaning: str
    command: str  # the paynb command (or sbc-pay job) that addresses it


CLASSES: dict[str, MismatchClass] = {
    c.name: c
    for c in (
        MismatchClass(
            "paid_in_cas_not_paydb",
            "cfs",
            "CAS shows the transaction paid (nothing due) but pay-db's reference is still ACTIVE: a "
            "settlement CSV was not processed.",
            "paynb pad triage; then paynb settlement plan-replay FILE",
        ),
        MismatchClass(
            "paid_in_paydb_open_in_cas",
            "cfs",
            "pay-db's reference is COMPLETED (paid) but CAS still has an amount due.",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "total_differs",
            "cfs",
            "The CAS transaction amount differs from pay-db's invoice total (sum over a PAD roll-up).",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "reference_missing_in_cas",
            "cfs",
            "pay-db has an ACTIVE or COMPLETED reference that CAS does not have (CFS answers 404).",
            "paynb invoice explain NUMBER; paynb pad triage for PAD",
        ),
        MismatchClass(
            "cas_txn_without_reference",
            "cfs",
            "CAS has a BC Registries transaction whose number no pay-db invoice reference carries.",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "consolidated_unlinked",
            "cfs",
            "CAS has a consolidated '-C' transaction that pay-db does not reference (the reference "
            "was not switched to the -C number).",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "credit_memo_without_credit",
            "cfs",
            "CAS has a credit memo with no pay-db credits row.",
            "paynb invoice explain NUMBER; paynb pad credit plan for a PAD credit",
        ),
        MismatchClass(
            "credit_memo_amount_differs",
            "cfs",
            "A CAS credit memo's amount differs from its pay-db credit.",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "bcol_refunded_not_marked",
            "bcol",
            "BCOL holds the full refund (qty -1, total + total_amt = 0) but pay-db still says "
            "REFUND_REQUESTED: sbc-pay's BCOL_REFUND_CONFIRMATION job has not run since.",
            "run sbc-pay's BCOL_REFUND_CONFIRMATION job; paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "bcol_refund_mismatch",
            "bcol",
            "BCOL's refund does not cancel the invoice total; the job logs it and never marks it REFUNDED.",
            "paynb invoice explain NUMBER; correct the refund in BC Online",
        ),
        MismatchClass(
            "bcol_refund_missing",
            "bcol",
            "pay-db says REFUNDED but BCOL has no refund row for the key.",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "bcol_key_missing",
            "bcol",
            "A DRAWDOWN invoice's reference number has no BCOL billing record at all.",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "bcol_amount_mismatch",
            "bcol",
            "BCOL charged another amount than pay-db's invoice total.",
            "paynb invoice explain NUMBER",
        ),
        MismatchClass(
            "disbursement_stuck",
            "disbursements",
            "A partner disbursement WAITING_FOR_JOB or UPLOADED for longer than the limit: the job "
            "did not pick it up, or FEEDBACK never came.",
            "paynb ejv health; paynb ejv redate plan when FEEDBACK never came",
        ),
        MismatchClass(
            "disbursement_errored",
            "disbursements",
            "A partner disbursement ERRORED: FEEDBACK rejected it.",
            "paynb ejv search ID (read the FEEDBACK return message)",
        ),
        MismatchClass(
            "distribution_stop_ejv",
            "disbursements",
            "A distribution code has stop_ejv set: EJV for its invoices is paused.",
            "paynb ejv health (after fixing the GL, clear stop_ejv in pay-ui)",
        ),
    )
}
CHECKS = ("cfs", "bcol", "disbursements")


def cents(value: Any) -> Decimal | None:
    """Whole cents (int) as Decimal money."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Finding:
    mismatch_class: str
    key: str  # the number (invoice, transaction, credit memo) or the row id
    paydb_amount: Decimal | None = None
    other_amount: Decimal | None = None  # CAS or BCOL
    since: date | None = None
    invoice_ids: tuple[int, ...] = ()
    detail: str = ""

    @property
    def ident(self) -> str:
        return f"{self.mismatch_class}|{self.key}"


FRAME_COLUMNS = [
    "class",
    "key",
    "paydb_amount",
    "other_amount",
    "since",
    "age_days",
    "invoice_ids",
    "detail",
    "command",
]


@dataclass
class ReconcileReport:
    """One reconciliation (or several combined). ``complete`` is False when a source could not be read
    in full (then the findings are a lower bound and the report says so)."""

    check: str
    source: str
    as_of: date
    date_from: date | None = None
    date_to: date | None = None
    findings: list[Finding] = field(default_factory=list)
    compared: int = 0
    classes_checked: tuple[str, ...] = ()
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    amounts: pd.DataFrame | None = None  # disbursements: amounts per partner and month
    previous_run: str | None = None
    new: list[str] | None = None
    resolved: list[str] | None = None

    def age(self, f: Finding) -> int | None:
        return (self.as_of - f.since).days if f.since else None

    def to_frame(self) -> pd.DataFrame:
        rows = [
            [
                f.mismatch_class,
                f.key,
                f.paydb_amount,
                f.other_amount,
                f.since,
                self.age(f),
                ",".join(str(i) for i in f.invoice_ids),
                f.detail,
                CLASSES[f.mismatch_class].command,
            ]
            for f in sorted(self.findings, key=lambda f: (f.mismatch_class, f.key))
        ]
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)

    def by_class(self) -> pd.DataFrame:
        """One row per class checked: how many findings, their pay-db amount, new and resolved."""
        rows = []
        for name in self.classes_checked:
            found = [f for f in self.findings if f.mismatch_class == name]
            amount = sum((f.paydb_amount or Decimal("0") for f in found), Decimal("0.00"))
            rows.append(
                {
                    "class": name,
                    "findings": len(found),
                    "paydb_amount": amount,
                    "new": sum(1 for k in self.new or [] if k.startswith(name + "|")),
                    "resolved": sum(1 for k in self.resolved or [] if k.startswith(name + "|")),
                    "meaning": CLASSES[name].meaning,
                }
            )
        return pd.DataFrame(rows, columns=["class", "findings", "paydb_amount", "new", "resolved", "meaning"])

    def idents(self) -> list[str]:
        return sorted(f.ident for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "source": self.source,
            "as_of": self.as_of,
            "from": self.date_from,
            "to": self.date_to,
            "complete": self.complete,
            "compared": self.compared,
            "classes_checked": list(self.classes_checked),
            "counts": {row["class"]: row["findings"] for row in self.by_class().to_dict("records")},
            "findings": self.to_frame().to_dict("records"),
            "notes": list(self.notes),
            "previous_run": self.previous_run,
            "new": self.new,
            "resolved": self.resolved,
        }
        if self.amounts is not None:
            out["amounts"] = self.amounts.to_dict("records")
        return out


def combine(reports: list[ReconcileReport], *, check: str = "daily") -> ReconcileReport:
    """Several reports as one (the daily job): findings, classes and notes joined; complete only if all are."""
    first = reports[0]
    amounts = next((r.amounts for r in reports if r.amounts is not None), None)
    return ReconcileReport(
        check=check,
        source="+".join(dict.fromkeys(r.source for r in reports)),
        as_of=first.as_of,
        date_from=first.date_from,
        date_to=first.date_to,
        findings=[f for r in reports for f in r.findings],
        compared=sum(r.compared for r in reports),
        classes_checked=tuple(c for r in reports for c in r.classes_checked),
        complete=all(r.complete for r in reports),
        notes=[n for r in reports for n in r.notes],
        amounts=amounts,
    )
