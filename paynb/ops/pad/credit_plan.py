"""Planning a PAD credit (read-only): the operator's request, its idempotency key, the checks, and the
plan body — the exact CFS credit-memo payload and every pay-db change with before/after values.

See :mod:`paynb.ops.pad.credit` for the whole flow and the apply state machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine

from paynb import db
from paynb.canonical import canonical_sha256, to_jsonable
from paynb.cfs import CfsClient
from paynb.context import Env, resolve_env
from paynb.enums import (
    CfsAccountStatus,
    InvoiceReferenceStatus,
    InvoiceStatus,
    PaymentMethod,
    RefundsPartialStatus,
)
from paynb.errors import CfsError, InputError, PaynbError, PlanError
from paynb.ops.pad import intents
from paynb.ops.pad.credit_facts import CreditFacts, invoice_credits, line_owners, load_credit_facts
from paynb.ops.pad.credit_lines import (
    ZERO,
    CreditEntry,
    GstEntry,
    build_memo_lines,
    check_lines,
    entry_code,
    exhausts_pools,
    gst_code,
    money,
    normalize_lines,
    parse_amount,
    remaining_totals,
    spread_amount,
)
from paynb.plan import Plan
from paynb.settings import Settings
from paynb.timez import pacific_today

if TYPE_CHECKING:
    from paynb.ledger import Intent

PLAN_KIND = "pad.partial_credit"
KEY_PREFIX = "pcr-"
BATCH_SOURCE = "MANUAL-OTHER"  # CFS_CM_BATCH_SOURCE
CUST_TRX_TYPE = "BC_REG_CREDIT_MEMO"  # CFS_CMS_TRX_TYPE
AT_APPLY = "<apply time, UTC>"
MEMO_NUMBER = "<credit_memo_number from CFS>"
RUN_STAMP = "paynb:<run id>"
CONFIRMER = "<operator who confirms the apply>"
REFUND_ID = "<refunds.id of the new row>"
# sbc-pay's refund-approval flow (pay_api.utils.enums RefundType / RefundStatus): see docs/pad-credit.md
REFUND_TYPE_INVOICE = "INVOICE"
REFUND_APPROVED = "APPROVED"
REFUND_APPROVAL_NOT_REQUIRED = "APPROVAL_NOT_REQUIRED"
_TICKET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./#")


class CreditAlreadyApplied(PlanError):
    """A credit with this idempotency key was already applied; ``evidence`` says what it made."""

    hint = "nothing to do; for a further credit on the same invoice use a new ticket"

    def __init__(self, message: str, evidence: dict[str, Any]) -> None:
        super().__init__(message)
        self.evidence = evidence


class CreditInProgress(PlanError):
    """Another credit on the same invoice stopped half-way (its intent is pending or sent)."""

    def __init__(self, message: str, *, hint: str, open_keys: list[str]) -> None:
        super().__init__(message, hint=hint)
        self.open_keys = open_keys


class OverCredit(PlanError):
    """CFS already holds credit memos for the invoice; with this credit they would exceed its total."""


# -- request --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreditRequest:
    invoice_id: int
    form: str  # "lines" | "amount"
    lines: tuple[tuple[int, Decimal, str], ...]
    amount: Decimal | None
    reason: str
    ticket: str

    @property
    def key(self) -> str:
        return idempotency_key(
            self.invoice_id, self.lines if self.form == "lines" else None, self.amount, self.ticket
        )

    def to_dict(self) -> dict[str, Any]:
        if self.form == "amount":
            return {"form": "amount", "amount": self.amount}
        # sorted like the key, so the same credit always records the same request
        return {"form": "lines", "lines": sorted([i, a, t] for i, a, t in self.lines)}

    def params(self, requested_by: str) -> dict[str, Any]:
        """The keyword arguments :func:`plan_partial_credit` re-plans from (``Plan.body["params"]``)."""
        out: dict[str, Any] = {
            "invoice_id": self.invoice_id,
            "reason": self.reason,
            "ticket": self.ticket,
            "requested_by": requested_by,
        }
        if self.form == "amount":
            out["amount"] = self.amount
        else:
            out["lines"] = sorted([i, a, t] for i, a, t in self.lines)
        return out


def idempotency_key(
    invoice_id: int,
    lines: Sequence[tuple[int, Decimal, str]] | None,
    amount: Decimal | None,
    ticket: str,
) -> str:
    """``pcr-`` + 24 hex digits of sha256 over (invoice, lines and amounts or the amount, ticket)."""
    what: dict[str, Any] = {"invoice_id": int(invoice_id), "ticket": ticket}
    if lines is not None:
        what["lines"] = sorted([int(i), str(a), str(t)] for i, a, t in lines)
    else:
        what["amount"] = str(amount)
    return KEY_PREFIX + canonical_sha256(what)[:24]


def _check_text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"a {name} is required (it is recorded with the credit)", field=name)
    text = " ".join(value.split())
    if len(text) > limit:
        raise InputError(f"the {name} is {len(text)} characters; at most {limit}", field=name)
    return text


def build_request(invoice_id: Any, lines: Any, amount: Any, reason: Any, ticket: Any) -> CreditRequest:
    """Check the operator's input (no database needed)."""
    if isinstance(invoice_id, bool) or not isinstance(invoice_id, int) or invoice_id <= 0:
        raise InputError(f"{invoice_id!r} is not an invoice id (a positive whole number)", field="invoice_id")
    if (lines is None) == (amount is None):
        raise InputError(
            "give either lines=[(payment_line_item_id, amount[, refund_type])…] or amount=", field="lines"
        )
    reason_text = _check_text(reason, "reason", 150)
    ticket_text = _check_text(ticket, "ticket", 40)
    if not set(ticket_text) <= _TICKET_CHARS:
        raise InputError("a ticket holds letters, digits and - _ . / # only (e.g. OPS-1234)", field="ticket")
    if amount is not None:
        return CreditRequest(
            invoice_id, "amount", (), parse_amount(amount, "amount"), reason_text, ticket_text
        )
    checked = normalize_lines(lines)
    return CreditRequest(invoice_id, "lines", tuple(checked), None, reason_text, ticket_text)


def check_operator(value: Any) -> str:
    """``refunds.requested_by`` is varchar(50): the operator's name as given, at most 50 characters."""
    return _check_text(value, "requested_by", 50)


def request_from_plan(plan: Plan) -> CreditRequest:
    body = plan.body
    req = body["request"]
    lines = None if req["form"] == "amount" else [tuple(x) for x in req["lines"]]
    return build_request(body["invoice"]["id"], lines, req.get("amount"), body["reason"], body["ticket"])


# -- plan -----------------------------------------------------------------------------------------------------
def _memo_comments(full: bool, invoice_id: int, invoice_number: str, key: str, ticket: str) -> str:
    kind = "Full" if full else "Partial"
    return f"{kind} invoice credit for {invoice_id} ({invoice_number}) paynb:{key} ticket {ticket}"


def refund_reason(ticket: str, reason: str) -> str:
    """``refunds.reason`` (varchar 250): the ticket, then the operator's reason."""
    return f"{ticket}: {reason}"[:250]


def credit_details(key: str, ticket: str, reason: str) -> str:
    """``credits.details`` (varchar 200): the key first, so pay-db can be searched for it."""
    return f"paynb:{key} {ticket}: {reason}"[:200]


def _check_method_and_status(facts: CreditFacts) -> None:
    """Refuse an invoice that is not PAD or whose status allows no credit (payment_methods facts)."""
    inv = facts.invoice
    if inv.payment_method != PaymentMethod.PAD.value:
        raise InputError(
            f"invoice {inv.id} is paid by {inv.payment_method}, not PAD; this fix credits PAD invoices only",
            field="invoice_id",
        )
    if not facts.method.partial_refund:
        raise PlanError(
            f"payment_methods.partial_refund is false for {inv.payment_method}; no credit possible"
        )
    if inv.status not in facts.method.full_refund_statuses:
        if inv.status in {s.value for s in InvoiceStatus.full_refund_statuses()}:
            raise PlanError(
                f"invoice {inv.id} (invoices.invoice_status_code) is {inv.status}: it was already refunded or "
                "credited in full"
            )
        allowed = ", ".join(sorted(facts.method.full_refund_statuses))
        raise PlanError(
            f"invoice {inv.id} (invoices.invoice_status_code) is {inv.status}; a {inv.payment_method} credit needs "
            f"one of {allowed} (payment_methods.full_refund_statuses)"
        )
    if inv.status == InvoiceStatus.APPROVED.value:
        ref = facts.reference
        if ref is None or ref.status != InvoiceReferenceStatus.ACTIVE.value:
            raise PlanError(
                f"invoice {inv.id} is APPROVED and not in a CFS invoice yet (no ACTIVE invoice_references row): "
                "cancel it instead (sbc-pay sets CANCELLED, no credit memo)"
            )


def _status_after(facts: CreditFacts, full: bool) -> str:
    inv = facts.invoice
    if inv.status == InvoiceStatus.APPROVED.value and not full:
        raise PlanError(
            f"invoice {inv.id} is APPROVED: partial credits need a PAID invoice (sbc-pay refuses a partial refund "
            "of an unpaid invoice); an APPROVED invoice already in CFS can only be credited in full"
        )
    return InvoiceStatus.CREDITED.value if full else inv.status


def _check_cfs_account(facts: CreditFacts) -> list[str]:
    cfs = facts.cfs_account
    inv = facts.invoice
    if cfs is None:
        raise PlanError(
            f"invoice {inv.id} has no CFS account (invoices.cfs_account_id is empty and payment account "
            f"{inv.payment_account_id} has no PAD row in cfs_accounts)"
        )
    if not cfs.complete:
        raise PlanError(f"CFS account {cfs.id} lacks cfs_party/cfs_account/cfs_site; CFS cannot be called")
    if cfs.status == CfsAccountStatus.FREEZE.value:
        raise PlanError(
            f"CFS account {cfs.id} (cfs_accounts.status) is FREEZE — the PAD account is locked after an NSF; "
            "settle the NSF first, then credit"
        )
    warnings = []
    if cfs.status != CfsAccountStatus.ACTIVE.value:
        warnings.append(f"CFS account {cfs.id} is {cfs.status}, not ACTIVE")
    if cfs.source == "effective":
        warnings.append(f"invoices.cfs_account_id is empty; using the account's PAD CFS account {cfs.id}")
    return warnings


def _find_cfs_invoice(facts: CreditFacts, cfs: CfsClient) -> dict[str, Any]:
    ref = facts.reference
    if ref is None or not ref.invoice_number:
        raise PlanError(
            f"invoice {facts.invoice.id} has no CFS invoice number (no usable invoice_references row)"
        )
    acct = facts.cfs_account
    assert acct is not None and acct.party and acct.account and acct.site
    try:
        return cfs.get_invoice(acct.party, acct.account, acct.site, ref.invoice_number)
    except CfsError as err:
        if err.status == 404:
            raise PlanError(
                f"CFS has no invoice {ref.invoice_number} on site {acct.party}/{acct.account}/{acct.site} "
                f"(invoice_references {ref.id})"
            ) from None
        raise


def _resolve(
    request: CreditRequest, facts: CreditFacts, owners: dict[int, int]
) -> tuple[list[CreditEntry], list[GstEntry]]:
    if request.form == "amount":
        assert request.amount is not None
        return spread_amount(request.amount, facts.lines.values())
    return check_lines(request.lines, facts.lines, request.invoice_id, owners), []


def applied_credit_row(conn: Connection, invoice_id: int, key: str) -> dict[str, Any] | None:
    """The ``credits`` row an applied credit with ``key`` left (``details`` starts with ``paynb:<key>``)."""
    return db.fetch_one(
        conn,
        "SELECT id, cfs_identifier, amount, created_on FROM credits "
        "WHERE created_invoice_id = :inv AND details LIKE :prefix ORDER BY id LIMIT 1",
        {"inv": invoice_id, "prefix": f"paynb:{key}%"},
    )


def plan_partial_credit(
    invoice_id: int,
    lines: Sequence[Any] | None = None,
    amount: Any = None,
    *,
    reason: str,
    ticket: str,
    requested_by: str | None = None,
    env: Env | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
    cfs: CfsClient | None = None,
) -> Plan:
    """Plan a credit on a PAD invoice (read-only: pay-db reads, the ledger's intents, CFS GETs).

    ``lines``: ``[(payment_line_item_id, amount[, refund_type]), …]`` (refund_type defaults to BASE_FEES),
    or ``amount``: spread over the lines (see :mod:`paynb.ops.pad.credit_lines`). Amounts are strings or
    Decimals with at most 2 decimals. ``requested_by`` (``refunds.requested_by``) defaults to the operator.

    Refuses (InputError/PlanError naming the field; nothing written) when the credit is not possible, when
    another credit on the invoice stopped half-way (:class:`CreditInProgress`), or when the credit memos
    CFS already holds for the invoice plus this credit exceed its total (:class:`OverCredit`).
    """
    env = resolve_env(env, settings=settings, engine=engine, cfs=cfs)
    request = build_request(invoice_id, lines, amount, reason, ticket)
    operator = check_operator(requested_by if requested_by is not None else env.operator)
    with env.read() as conn:
        facts = load_credit_facts(conn, request.invoice_id, pacific_today())
        owners = line_owners(conn, [i for i, _, _ in request.lines if i not in facts.lines])
        marker = applied_credit_row(conn, request.invoice_id, request.key)
        credits_rows = invoice_credits(conn, request.invoice_id)
    _refuse_if_applied(request.key, marker, env.settings)
    _refuse_if_in_progress(request, env.settings)
    _check_method_and_status(facts)
    entries, gst_entries = _resolve(request, facts, owners)
    credit_total = sum((e.amount for e in entries), ZERO) + sum((g.amount for g in gst_entries), ZERO)
    refund_before = facts.invoice.refund or ZERO
    refund_after = refund_before + credit_total
    if refund_after > facts.invoice.total:
        raise InputError(
            f"the credit {credit_total} would take invoices.refund to {refund_after}, above the invoice total "
            f"{facts.invoice.total}",
            field="amount" if request.form == "amount" else "lines",
        )
    full = refund_after == facts.invoice.total
    status_after = _status_after(facts, full)
    warnings = _check_cfs_account(facts)
    cfs_invoice = _find_cfs_invoice(facts, env.cfs)
    memos = invoice_memos(env.cfs, facts, cfs_invoice, request.key, credits_rows)
    warnings += _check_cfs_credit(facts, memos, credit_total)
    warnings += _plan_warnings(facts, entries, gst_entries, full)
    if facts.invoice.refund_approval:
        warnings.append(
            f"corp type {facts.invoice.corp_type_code} needs refund approval in sbc-pay: the refunds row is "
            "recorded APPROVED with the confirming operator as decision_made_by; have a second person confirm"
        )
    body = _plan_body(
        request,
        facts,
        entries,
        gst_entries,
        cfs_invoice,
        credit_total,
        refund_after,
        full,
        status_after,
        memos,
        operator,
    )
    ref = facts.reference
    summary = (
        f"Credit {credit_total} on PAD invoice {facts.invoice.id} ({ref.invoice_number if ref else '?'}) as a CFS "
        f"credit memo; invoice {facts.invoice.status} -> {status_after}, refund {refund_before} -> {refund_after}"
    )
    return Plan(kind=PLAN_KIND, body=to_jsonable(body), summary=summary, warnings=tuple(warnings))


# -- what CFS already holds for the invoice -------------------------------------------------------------------
def memo_amount(memo: dict[str, Any]) -> Decimal | None:
    """A CFS credit memo's amount, positive (CFS shows credit memo totals negative)."""
    total = memo.get("total")
    if total is None:
        lines = memo.get("lines") or []
        try:
            total = sum((money(ln.get("unit_price")) * int(ln.get("quantity", 1)) for ln in lines), ZERO)
        except (TypeError, ValueError):
            return None
    return abs(money(total))


def _mentions(invoice_id: int, invoice_number: str | None) -> re.Pattern[str]:
    """Memo comments that name the invoice: its CFS number, or sbc-pay's "… invoice credit for <id>"."""
    parts = [rf"\bcredit for {int(invoice_id)}(?![0-9])"]
    if invoice_number:
        parts.append(rf"(?<![A-Za-z0-9]){re.escape(invoice_number)}(?![A-Za-z0-9])")
    return re.compile("|".join(parts))


def invoice_memos(
    cfs: CfsClient,
    facts: CreditFacts,
    cfs_invoice: dict[str, Any],
    key: str,
    credits_rows: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every credit memo of the invoice's CFS site that concerns the invoice (the invoice lists it, or its
    comments name the invoice), with what pay-db knows of it. Sorted by memo number.

    ``this_credit``: the memo carries this plan's key (an apply stopped after posting; applying resumes).
    ``in_pay_db``: a ``credits`` row of the invoice names the memo. A memo that is neither is an *orphan*:
    credit posted in CFS with no pay-db rows.
    """
    acct = facts.cfs_account
    assert acct is not None and acct.party and acct.account and acct.site
    listed = {
        str(cm.get("credit_memo_number"))
        for cm in cfs_invoice.get("credit_memos") or []
        if isinstance(cm, dict)
    }
    pattern = _mentions(facts.invoice.id, facts.reference.invoice_number if facts.reference else None)
    known = {str(r["cfs_identifier"]) for r in credits_rows if r.get("cfs_identifier")}
    found: dict[str, dict[str, Any]] = {}
    for cm in cfs.iter_credit_memos(acct.party, acct.account, acct.site):
        number = str(cm.get("credit_memo_number"))
        comments = str(cm.get("comments") or "")
        if number in listed or pattern.search(comments):
            found[number] = {
                "credit_memo_number": number,
                "amount": memo_amount(cm),
                "this_credit": key in comments,
                "in_pay_db": number in known,
            }
    return [found[n] for n in sorted(found)]


def _check_cfs_credit(facts: CreditFacts, memos: list[dict[str, Any]], credit_total: Decimal) -> list[str]:
    """Refuse when CFS credit already posted for the invoice plus this credit exceeds its total; warn about
    orphan memos (credit in CFS that pay-db does not know)."""
    inv = facts.invoice
    others = [m for m in memos if not m["this_credit"]]
    posted = sum((m["amount"] or ZERO for m in others), ZERO)
    orphans = [m for m in others if not m["in_pay_db"]]
    listing = ", ".join(f"{m['credit_memo_number']} ({m['amount']})" for m in orphans)
    if posted + credit_total > inv.total:
        raise OverCredit(
            f"CFS already holds {posted} of credit memos for invoice {inv.id} "
            f"({', '.join(m['credit_memo_number'] for m in others)}); with this credit of {credit_total} that "
            f"is {posted + credit_total}, above the invoice total {inv.total}"
            + (f". Orphan memos (in CFS, not in pay-db): {listing}" if orphans else ""),
            hint="find out where the orphan memo came from (an apply that stopped half-way resumes with "
            "`paynb pad credit apply` on its plan); plan a smaller credit only once CFS and pay-db agree",
        )
    warnings = []
    if orphans:
        warnings.append(
            f"ORPHAN credit memo(s) in CFS for invoice {inv.id} with no pay-db credits row: {listing}; "
            "this credit counts them against the invoice total"
        )
    if any(m["this_credit"] for m in memos):
        warnings.append(
            "this credit's memo is already in CFS (an apply stopped after posting); applying resumes"
        )
    return warnings


def _refuse_if_in_progress(request: CreditRequest, settings: Settings) -> None:
    """An unfinished intent of another credit on the invoice blocks this plan until it is resumed or
    resolved: the other memo may be in CFS without pay-db rows yet."""
    try:
        open_ = [
            i
            for i in intents.open_intents_for_invoice(request.invoice_id, settings=settings)
            if i.key != request.key
        ]
    except PaynbError:
        open_ = []  # an unreachable ledger must not hide CFS: the memo check below still runs
    if not open_:
        return
    described = "; ".join(_describe_intent(i) for i in open_)
    first = open_[0]
    sha = first.evidence.get("plan_sha256") or "<its plan's sha256>"
    raise CreditInProgress(
        f"another credit on invoice {request.invoice_id} stopped half-way: {described}",
        hint=(
            f"resume it first: `paynb pad credit resume --key {first.key} --confirm {sha}` (or apply its plan "
            "file again); if it never reached CFS and must not happen: "
            f"`paynb pad credit resolve --key {first.key} --reason …`"
        ),
        open_keys=[i.key for i in open_],
    )


def _describe_intent(intent: Intent) -> str:
    ev = intent.evidence
    memo = ev.get("credit_memo_number")
    ticket = (intent.payload or {}).get("ticket") if isinstance(intent.payload, dict) else None
    return (
        f"intent {intent.key} (ticket {ticket or '?'}, amount {ev.get('amount', '?')}) is {intent.state}"
        + (f", memo {memo} is in CFS" if memo else "")
        + f", last update {intent.updated_at}"
    )


def _refuse_if_applied(key: str, marker: dict[str, Any] | None, settings: Settings | None) -> None:
    if marker is not None:
        raise CreditAlreadyApplied(
            f"a credit with key {key} is already in pay-db (credits {marker['id']}, memo {marker['cfs_identifier']})",
            {"credit_id": marker["id"], "credit_memo_number": marker["cfs_identifier"]},
        )
    try:
        intent = intents.get_intent(key, settings=settings)
    except PaynbError:
        intent = None  # an unreachable ledger must not block a read-only plan; apply will need it
    if intent is not None and intent.state == intents.CONFIRMED:
        raise CreditAlreadyApplied(
            f"a credit with key {key} was applied on {getattr(intent, 'updated_at', '?')} (memo "
            f"{intent.evidence.get('credit_memo_number')})",
            intent.evidence,
        )


def _plan_warnings(
    facts: CreditFacts, entries: list[CreditEntry], gst_entries: list[GstEntry], full: bool
) -> list[str]:
    warnings = []
    active = [ln for ln in facts.lines.values() if ln.active]
    line_sum = sum(
        (ln.total + ln.service_fees + ln.statutory_fees_gst + ln.service_fees_gst for ln in active), ZERO
    )
    if line_sum != facts.invoice.total:
        warnings.append(
            f"the active line items add up to {line_sum}; the invoice total is {facts.invoice.total}"
        )
    _, gst = remaining_totals(active)
    if not full and not gst_entries and gst > 0 and exhausts_pools(entries, active):
        warnings.append(
            f"every line is credited but GST {gst} stays; to credit the invoice in full, give amount= everything "
            "that remains (GST included)"
        )
    return warnings


def _plan_body(
    request: CreditRequest,
    facts: CreditFacts,
    entries: list[CreditEntry],
    gst_entries: list[GstEntry],
    cfs_invoice: dict[str, Any],
    credit_total: Decimal,
    refund_after: Decimal,
    full: bool,
    status_after: str,
    memos: list[dict[str, Any]],
    operator: str,
) -> dict[str, Any]:
    inv = facts.invoice
    acct = facts.cfs_account
    ref = facts.reference
    assert acct is not None and ref is not None and ref.invoice_number
    key = request.key
    memo_lines = build_memo_lines(entries, gst_entries, facts.lines, facts.codes)
    credit_lines = []
    for e in entries:
        line = facts.lines[e.payment_line_item_id]
        code = entry_code(e, line, facts.codes)
        credit_lines.append(
            {
                "payment_line_item_id": e.payment_line_item_id,
                "description": line.description,
                "refund_type": e.refund_type,
                "amount": e.amount,
                "pool": "service_fees" if e.refund_type == "SERVICE_FEES" else "total",
                "pool_amount": line.pool_amount(e.refund_type),
                "credited_before": line.credited(e.refund_type),
                "remaining_before": line.remaining(e.refund_type),
                "distribution_code_id": code.id,
                "gl_account": code.account,
            }
        )
    # remaining_after per pool, after every entry of that pool
    drawn: dict[tuple[int, str], Decimal] = {}
    for row in credit_lines:
        k = (row["payment_line_item_id"], row["pool"])
        drawn[k] = drawn.get(k, ZERO) + row["amount"]
        row["remaining_after"] = row["remaining_before"] - drawn[k]
    gst_rows = []
    for g in gst_entries:
        code = gst_code(g, facts.lines[g.payment_line_item_id], facts.codes)
        gst_rows.append(
            {
                "payment_line_item_id": g.payment_line_item_id,
                "kind": g.kind,
                "amount": g.amount,
                "distribution_code_id": code.id,
                "gl_account": code.account,
            }
        )
    pad_before = facts.account.pad_credit if facts.account else None
    version_before = facts.account.version if facts.account else 1
    run_by = RUN_STAMP
    details = credit_details(key, request.ticket, request.reason)
    approval = inv.refund_approval
    return {
        "params": request.params(operator),
        "idempotency_key": key,
        "ticket": request.ticket,
        "reason": request.reason,
        "requested_by": operator,
        "request": request.to_dict(),
        "invoice": {
            "id": inv.id,
            "payment_method": inv.payment_method,
            "status": inv.status,
            "total": inv.total,
            "paid": inv.paid,
            "refund": inv.refund,
            "refund_date": inv.refund_date,
            "service_fees": inv.service_fees,
            "gst": inv.gst,
            "payment_account_id": inv.payment_account_id,
            "cfs_account_id": inv.cfs_account_id,
        },
        "credit": {
            "total": credit_total,
            "full": full,
            "status_after": status_after,
            "lines": credit_lines,
            "gst": gst_rows,
        },
        "cfs": {
            "party": acct.party,
            "account": acct.account,
            "site": acct.site,
            "cfs_account_id": acct.id,
            "cfs_account_status": acct.status,
            "invoice": {
                "invoice_number": ref.invoice_number,
                "reference_id": ref.id,
                "reference_status": ref.status,
                "total": cfs_invoice.get("total"),
                "amount_due": cfs_invoice.get("amount_due"),
            },
            # every memo of the site that concerns this invoice, before this credit (see invoice_memos)
            "invoice_memos": memos,
            "credit_memo": {
                "method": "POST",
                "path": f"/cfs/parties/{acct.party}/accs/{acct.account}/sites/{acct.site}/cms/",
                "payload": {
                    "batch_source": BATCH_SOURCE,
                    "cust_trx_type": CUST_TRX_TYPE,
                    "comments": _memo_comments(full, inv.id, ref.invoice_number, key, request.ticket),
                    "lines": memo_lines,
                },
                "stamped_at_post": ["transaction_date", "gl_date"],
            },
        },
        "pay_db": {
            # what sbc-pay's refund API writes for a credit (docs/pad-credit.md)
            "refunds": {
                "insert": {
                    "type": REFUND_TYPE_INVOICE,
                    "invoice_id": inv.id,
                    "status": REFUND_APPROVED if approval else REFUND_APPROVAL_NOT_REQUIRED,
                    "requested_by": operator,
                    "requested_date": AT_APPLY,
                    "reason": refund_reason(request.ticket, request.reason),
                    "staff_comment": f"paynb:{key}",
                    "decision_made_by": CONFIRMER if approval else None,
                    "decision_date": AT_APPLY if approval else None,
                }
            },
            "credits": {
                "insert": {
                    "cfs_identifier": MEMO_NUMBER,
                    "is_credit_memo": True,
                    "amount": credit_total,
                    "remaining_amount": credit_total,
                    "account_id": inv.payment_account_id,
                    "details": details,
                    "created_on": AT_APPLY,
                    "cfs_site": acct.site,
                    "created_invoice_id": inv.id,
                }
            },
            "payment_accounts": {
                "id": inv.payment_account_id,
                "pad_credit": {"before": pad_before, "after": (pad_before or ZERO) + credit_total},
                # sql_versioning: the row as it was goes to payment_accounts_history, version + 1
                "version": {"before": version_before, "after": version_before + 1},
                "history": {"insert": "the row before the update", "version": version_before},
            },
            "refunds_partial": {
                "insert": [
                    {
                        "payment_line_item_id": row["payment_line_item_id"],
                        "invoice_id": inv.id,
                        "refund_type": row["refund_type"],
                        "refund_amount": row["amount"],
                        "is_credit": True,
                        "status": RefundsPartialStatus.REFUND_PROCESSED.value,
                        "refund_id": REFUND_ID,
                        "version": 1,
                        "created_on": AT_APPLY,
                        "created_by": run_by,
                    }
                    for row in credit_lines
                ]
            },
            "invoices": {
                "id": inv.id,
                "refund": {"before": inv.refund, "after": refund_after},
                "refund_date": {"before": inv.refund_date, "after": AT_APPLY},
                "invoice_status_code": {"before": inv.status, "after": status_after},
                "updated_by": {"after": run_by},
            },
        },
        "ledger_note": (
            f"PAD credit {credit_total} on invoice {inv.id} ({ref.invoice_number}), ticket {request.ticket}: CFS "
            f"credit memo on site {acct.party}/{acct.account}/{acct.site} (comments carry {key}); pay-db credits "
            f"row for account {inv.payment_account_id}, {len(credit_lines)} refunds_partial row(s), pad_credit "
            f"+{credit_total}. CAS applies the memo to a later PAD invoice; the settlement CSV then carries CMAP "
            "rows (applied_credits)."
        ),
    }
