"""Which runbook situation an invoice is in, and the paynb command to run next.

Pure rules over :class:`~paynb.ops.invoice.facts.InvoiceFacts` plus the external evidence (CFS, files,
the PAD triage verdict, statement gaps). See docs/runbook.md for the situations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from paynb.ops.invoice.facts import InvoiceFacts
from paynb.timez import business_days_between

FEEDBACK_BUSINESS_DAYS = 3
DISBURSEMENT_BUSINESS_DAYS = 3
STUCK_DAYS = 20


@dataclass(frozen=True)
class Situation:
    code: str
    title: str
    detail: str
    next_command: str
    severity: str = "error"  # error: money or data stuck; warning: needs a look

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# triage action -> situation code
_PAD_SITUATIONS = {
    "wait_pad_activation": "pad_stuck_no_reference",
    "wait_cfs_account": "pad_stuck_no_reference",
    "no_pad_cfs_account": "pad_stuck_no_reference",
    "check_create_invoices": "pad_stuck_no_reference",
    "account_frozen_nsf": "nsf",
    "escalate_cas_not_debited": "pad_stuck_uncharged",
    "replay_settlement_csv": "csv_not_processed",
    "settlement_failed_midway": "csv_not_processed",
    "settlement_row_not_applied": "csv_not_processed",
    "ask_cas_for_csv": "csv_not_processed",
    "cas_invoice_missing": "cfs_invoice_missing",
}
TITLES = {
    "pad_stuck_no_reference": "PAD invoice stuck in APPROVED: not in CFS yet",
    "pad_stuck_uncharged": "PAD invoice stuck in APPROVED: CAS has not debited the customer",
    "csv_not_processed": "paid in CAS, but the settlement CSV was not processed",
    "cfs_invoice_missing": "pay-db points at a CFS invoice that CAS does not have",
    "nsf": "PAD payment returned NSF",
    "ejv_feedback_missing": "EJV FEEDBACK never came",
    "ejv_feedback_errored": "EJV FEEDBACK came back with errors",
    "ejv_stop_ejv": "EJV blocked: the distribution code has stop_ejv set",
    "orphan_credit_memo": "a CFS credit memo with no pay-db credit",
    "statement_gap": "a statement is missing for this invoice's period",
    "statement_duplicate": "the invoice's period has two statements",
    "partner_disbursement_stuck": "partner disbursement stuck",
    "routing_slip_with_transactions": "linked to a routing slip that cannot simply be voided",
    "stuck_approved": "stuck in APPROVED",
}


def _situation(code: str, detail: str, command: str, severity: str = "error") -> Situation:
    return Situation(code, TITLES[code], detail, command, severity)


def diagnose(
    facts: InvoiceFacts,
    *,
    as_of: datetime,
    pad_verdict: Mapping[str, Any] | None,
    memos: Sequence[Mapping[str, Any]],
    statement_findings: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[Situation]:
    inv = facts.invoice
    status = inv["invoice_status_code"]
    method = inv["payment_method_code"]
    account = (facts.account or {}).get("auth_account_id") or ""
    today = as_of.date()
    out: list[Situation] = []

    if pad_verdict is not None:
        code = _PAD_SITUATIONS.get(pad_verdict["action"])
        if code:
            out.append(_situation(code, pad_verdict["action_text"], _pad_command(code, pad_verdict, account)))

    if facts.nsf or (
        status == "SETTLEMENT_SCHED" and any(p.get("payment_status_code") == "FAILED" for p in facts.payments)
    ):
        if not any(s.code == "nsf" for s in out):
            out.append(
                _situation(
                    "nsf",
                    "the PAD debit was returned (non_sufficient_funds row / FAILED payment); the CFS account "
                    "is frozen until the customer pays the NSF (-C) invoice",
                    f"paynb pad triage --auth-account {account} --days 0",
                )
            )

    if method == "EJV":
        out.extend(_ejv(facts, today))

    for memo in _orphan_memos(facts, memos):
        out.append(
            _situation(
                "orphan_credit_memo",
                f"CFS memo {memo.get('credit_memo_number')} ({memo.get('amount')}) mentions this invoice but "
                "pay-db has no credit for it: an apply stopped after the post",
                f"paynb pad credit plan {facts.id} --resume (or review with `paynb runs list --applies`)",
            )
        )

    for row in statement_findings.get("missing", ()):
        out.append(
            _situation(
                "statement_gap",
                f"no {row['frequency']} statement for {row['from_date']}..{row['to_date']} (account {account})",
                f"paynb statements generate plan {row['statement_day']} --auth-account {account} --out plan.json",
            )
        )
    periods: dict[tuple[Any, ...], list[int]] = {}
    for st in facts.statements:
        periods.setdefault((st.get("frequency"), st.get("from_date"), st.get("to_date")), []).append(st["id"])
    for (frequency, start, end), ids in periods.items():
        if len(ids) > 1:
            out.append(
                _situation(
                    "statement_duplicate",
                    f"{len(ids)} {frequency} statements for {start}..{end} list this invoice: ids {ids}",
                    f"paynb statements gaps --auth-account {account} --from {start} --to {end}",
                    "warning",
                )
            )

    for pd_row in facts.partner_disbursements:
        if pd_row.get("status_code") in ("UPLOADED", "WAITING_FOR_JOB"):
            since = pd_row.get("created_on")
            age = business_days_between(since.date(), today) if isinstance(since, datetime) else 0
            if age >= DISBURSEMENT_BUSINESS_DAYS:
                out.append(
                    _situation(
                        "partner_disbursement_stuck",
                        f"partner disbursement {pd_row['id']} ({pd_row.get('partner_code')}) has been "
                        f"{pd_row['status_code']} for {age} business days",
                        "paynb ejv health",
                    )
                )

    slip = facts.routing_slip
    if slip and slip.get("status") not in ("VOID", "CORRECTION", "LINKED"):
        out.append(
            _situation(
                "routing_slip_with_transactions",
                f"routing slip {slip['number']} ({slip.get('status')}) has invoices, so it cannot be voided "
                "until they are refunded, unassociated and re-associated",
                f"paynb routing-slip show {slip['number']}",
                "warning",
            )
        )

    if not out and status == "APPROVED" and method in ("PAD", "EJV", "ONLINE_BANKING"):
        created = inv["created_on"]
        if isinstance(created, datetime) and (as_of - created).days > STUCK_DAYS:
            out.append(
                _situation(
                    "stuck_approved",
                    f"APPROVED for {(as_of - created).days} days with no known cause",
                    f"paynb stale --days {STUCK_DAYS} --method {method}",
                )
            )
    return out


def _pad_command(code: str, verdict: Mapping[str, Any], account: str) -> str:
    evidence = verdict.get("evidence") or {}
    if code == "csv_not_processed" and evidence.get("file"):
        return f"paynb settlement plan-replay {evidence['file']} --out replay.json"
    return f"paynb pad triage --auth-account {account}"


def _ejv(facts: InvoiceFacts, today: date) -> list[Situation]:
    out: list[Situation] = []
    inv = facts.invoice
    errored = [
        e
        for e in facts.ejv
        if "ERRORED" in (e.get("link_status"), e.get("header_status"), e.get("file_status"))
    ]
    if errored:
        e = errored[-1]
        message = e.get("link_message") or e.get("header_message") or e.get("file_message") or "no message"
        out.append(
            _situation(
                "ejv_feedback_errored",
                f"{e['file_ref']}: FEEDBACK says ERRORED ({str(message).strip()[:120]})",
                f"paynb ejv search {facts.id}",
            )
        )
    if facts.distribution_stop_ejv and inv["invoice_status_code"] == "APPROVED":
        codes = ", ".join(str(d["id"]) for d in facts.distribution_stop_ejv)
        out.append(
            _situation(
                "ejv_stop_ejv",
                f"distribution code(s) {codes} of the account have stop_ejv=true: the EJV job skips the account",
                "paynb ejv health",
            )
        )
    latest = facts.ejv[-1] if facts.ejv else None
    if (
        latest
        and not errored
        and inv["invoice_status_code"] == "APPROVED"
        and not latest.get("feedback_file_ref")
        and latest.get("file_created_on")
    ):
        age = business_days_between(latest["file_created_on"].date(), today)
        if age > FEEDBACK_BUSINESS_DAYS:
            out.append(
                _situation(
                    "ejv_feedback_missing",
                    f"{latest['file_ref']} was sent {age} business days ago and no FEEDBACK names it",
                    f"paynb ejv redate plan {latest['file_ref']} --out redate.json",
                )
            )
    return out


def _orphan_memos(facts: InvoiceFacts, memos: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    known = {str(c.get("cfs_identifier")) for c in facts.credits if c.get("cfs_identifier")}
    return [m for m in memos if str(m.get("credit_memo_number")) not in known]
