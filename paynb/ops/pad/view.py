"""How the PAD area shows things: the credit plan and its result as tables for people (CLI and notebook),
the notebook's confirmation flow (headless parameter or an ipywidgets button), and the run record.

Nothing here talks to pay-db or CFS except through :mod:`paynb.ops.pad.credit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from paynb.context import Env
from paynb.errors import InputError
from paynb.ops.pad.credit import (
    ApplyResult,
    CreditAlreadyApplied,
    plan_partial_credit,
)
from paynb.plan import Plan

__all__ = [
    "Decision",
    "NotebookPlan",
    "changes_frame",
    "confirm_and_apply",
    "display_plan",
    "display_result",
    "invoice_memos_frame",
    "lines_frame",
    "memo_frame",
    "notebook_plan",
    "plan_text",
    "record_job",
    "resolve_invoice",
    "result_frame",
]


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    return str(value)


def lines_frame(plan: Plan) -> pd.DataFrame:
    """What is credited on each line item, and what remains before and after."""
    rows = [
        {
            "line item": r["payment_line_item_id"],
            "description": r["description"],
            "refund type": r["refund_type"],
            "credit": r["amount"],
            "pool": f"{r['pool']} {r['pool_amount']}",
            "remaining before": r["remaining_before"],
            "remaining after": r["remaining_after"],
            "GL account": r["gl_account"],
        }
        for r in plan.body["credit"]["lines"]
    ]
    rows += [
        {
            "line item": g["payment_line_item_id"],
            "description": g["kind"],
            "refund type": "(GST, full credit)",
            "credit": g["amount"],
            "pool": "",
            "remaining before": g["amount"],
            "remaining after": "0.00",
            "GL account": g["gl_account"],
        }
        for g in plan.body["credit"]["gst"]
    ]
    return pd.DataFrame(rows)


def memo_frame(plan: Plan) -> pd.DataFrame:
    """The CFS credit-memo lines exactly as they will be posted."""
    payload = plan.body["cfs"]["credit_memo"]["payload"]
    return pd.DataFrame(
        [
            {
                "line": ln["line_number"],
                "description": ln["description"],
                "unit_price": ln["unit_price"],
                "account": d["account"],
                "amount": d["amount"],
            }
            for ln in payload["lines"]
            for d in ln["distribution"]
        ]
    )


def changes_frame(plan: Plan) -> pd.DataFrame:
    """Every pay-db and CFS change of the plan, with its value before and after."""
    b = plan.body
    db = b["pay_db"]
    cfs = b["cfs"]
    ins = db["credits"]["insert"]
    rows = [
        {
            "where": "CFS",
            "row": f"{cfs['party']}/{cfs['account']}/{cfs['site']}",
            "column": "credit memo (POST …/cms/)",
            "before": "(none)",
            "after": f"{b['credit']['total']} credit, comments carry {b['idempotency_key']}",
        },
        {
            "where": "credits",
            "row": "new",
            "column": "amount / remaining_amount",
            "before": "(none)",
            "after": ins["amount"],
        },
        {
            "where": "credits",
            "row": "new",
            "column": "cfs_identifier / cfs_site",
            "before": "(none)",
            "after": f"{ins['cfs_identifier']} / {ins['cfs_site']}",
        },
        {
            "where": "payment_accounts",
            "row": db["payment_accounts"]["id"],
            "column": "pad_credit",
            "before": _show(db["payment_accounts"]["pad_credit"]["before"]),
            "after": _show(db["payment_accounts"]["pad_credit"]["after"]),
        },
    ]
    version = db["payment_accounts"].get("version")
    if version:
        rows += [
            {
                "where": "payment_accounts",
                "row": db["payment_accounts"]["id"],
                "column": "version",
                "before": version["before"],
                "after": version["after"],
            },
            {
                "where": "payment_accounts_history",
                "row": "new",
                "column": f"the account as it was, version {version['before']}",
                "before": "(none)",
                "after": "(row)",
            },
        ]
    refund = db.get("refunds", {}).get("insert")
    if refund:
        rows.append(
            {
                "where": "refunds",
                "row": "new",
                "column": "type / status / requested_by",
                "before": "(none)",
                "after": f"{refund['type']} / {refund['status']} / {refund['requested_by']}",
            }
        )
    for r in db["refunds_partial"]["insert"]:
        rows.append(
            {
                "where": "refunds_partial",
                "row": "new",
                "column": f"{r['refund_type']} of line {r['payment_line_item_id']}",
                "before": "(none)",
                "after": f"{r['refund_amount']} ({r['status']}, is_credit)",
            }
        )
    inv = db["invoices"]
    for column in ("refund", "refund_date", "invoice_status_code"):
        rows.append(
            {
                "where": "invoices",
                "row": inv["id"],
                "column": column,
                "before": _show(inv[column]["before"]),
                "after": _show(inv[column]["after"]),
            }
        )
    return pd.DataFrame(rows)


def invoice_memos_frame(plan: Plan) -> pd.DataFrame:
    """The CFS credit memos that already concern the invoice: in pay-db, an orphan, or this credit's own."""
    rows = [
        {
            "credit memo": m["credit_memo_number"],
            "amount": m["amount"],
            "pay-db": "this credit (resumes)"
            if m["this_credit"]
            else ("credits row" if m["in_pay_db"] else "ORPHAN: none"),
        }
        for m in plan.body["cfs"].get("invoice_memos", [])
    ]
    return pd.DataFrame(rows, columns=["credit memo", "amount", "pay-db"])


def result_frame(result: ApplyResult) -> pd.DataFrame:
    """Before/after values re-read from pay-db and CFS after the apply."""
    df = result.to_frame()
    for col in ("before", "after"):
        df[col] = df[col].map(_show)
    return df


def plan_text(plan: Plan) -> str:
    """A short header for the plan: summary, warnings, key and sha256."""
    lines = [plan.summary]
    lines += [f"WARNING: {w}" for w in plan.warnings]
    lines.append(f"idempotency key: {plan.body['idempotency_key']}")
    lines.append(f"plan sha256:     {plan.sha256}")
    return "\n".join(lines)


# -- notebook flow ---------------------------------------------------------------------------------------------
@dataclass
class NotebookPlan:
    """The plan of a notebook run, or why there is none (already applied)."""

    invoice_id: int
    plan: Plan | None
    already: CreditAlreadyApplied | None = None


def resolve_invoice(invoice_id: int) -> int:
    """``invoice_id``, checked: the notebook has no default invoice (in the sandbox, ``paynb sandbox
    scenarios`` lists the ``pad_partial_credit_candidate`` invoice to pass as ``-p invoice_id N``)."""
    if isinstance(invoice_id, bool) or not isinstance(invoice_id, int) or invoice_id <= 0:
        raise InputError(
            "give the invoice to credit: -p invoice_id <pay-db invoice id> (in the sandbox, `paynb sandbox "
            "scenarios` lists the pad_partial_credit_candidate invoice)",
            field="invoice_id",
        )
    return invoice_id


def notebook_plan(
    invoice_id: int, amount: str, reason: str, ticket: str, *, env: Env | None = None
) -> NotebookPlan:
    """Plan for the notebook. A credit already applied under the same key is reported, not raised."""
    try:
        plan = plan_partial_credit(invoice_id, amount=amount, reason=reason, ticket=ticket, env=env)
    except CreditAlreadyApplied as done:
        return NotebookPlan(invoice_id, None, done)
    return NotebookPlan(invoice_id, plan)


def display_plan(np_: NotebookPlan) -> None:
    from IPython.display import Markdown, display

    if np_.plan is None:
        assert np_.already is not None
        display(Markdown(f"**Already applied — nothing to do.** {np_.already}"))
        return
    plan = np_.plan
    display(Markdown("### Plan\n```\n" + plan_text(plan) + "\n```"))
    display(Markdown("**Credited per line item**"))
    display(lines_frame(plan))
    display(Markdown("**CFS credit memo** (POST `" + plan.body["cfs"]["credit_memo"]["path"] + "`)"))
    display(memo_frame(plan))
    memos = invoice_memos_frame(plan)
    if len(memos):
        display(Markdown("**CFS credit memos already on this invoice**"))
        display(memos)


@dataclass
class Decision:
    """What the confirmation step decided, and the credit's result when it applied."""

    state: str  # already_applied | dry_run | waiting | applied (| failed, after a click)
    message: str
    result: ApplyResult | None = None
    widget: Any = None  # the confirm button (interactive runs)


def confirm_and_apply(
    np_: NotebookPlan, *, dry_run: bool, confirm: str, env: Env | None = None, operator: str | None = None
) -> Decision:
    """The common fix helper (:func:`paynb.fixes.widgets.show_plan`): shows the plan's changes and sha256;
    ``dry_run`` applies nothing; a ``confirm`` (or any headless run) must equal the sha256, else the cell
    fails (ConfirmMismatch); interactively with no ``confirm`` a button applies once. Every apply goes
    through :func:`paynb.fixes.apply_fix` and the ledger."""
    from IPython.display import Markdown, display

    from paynb.fixes import get_fix
    from paynb.fixes.widgets import show_plan
    from paynb.ops.pad.credit import PLAN_KIND, credit_result

    if np_.plan is None:
        decision = Decision("already_applied", "already applied; nothing to confirm")
        display(Markdown(f"**{decision.message}**"))
        return decision
    body = np_.plan.body
    shown = show_plan(
        get_fix(PLAN_KIND),
        np_.plan,
        dry_run=dry_run,
        confirm=confirm or None,
        env=env,
        ticket=body["ticket"],
        reason=body["reason"],
        operator=operator,
    )
    result = credit_result(shown.result) if shown.result is not None else None
    state = "already_applied" if result is not None and result.no_op else shown.state
    message = f"{shown.message} {result.message}" if result is not None else shown.message
    return Decision(state, message, result, shown.widget)


def display_result(decision: Decision) -> None:
    from IPython.display import Markdown, display

    result = decision.result
    if result is None:
        return
    if result.unverified_reason:
        status = f"done, NOT YET VERIFIED: {result.unverified_reason}; next: {result.next_step}"
    else:
        status = "verified" if result.verified else "NOT VERIFIED: " + "; ".join(result.problems)
    display(
        Markdown(
            f"### Result: {result.outcome} ({status})\n\nCredit memo `{result.credit_memo_number}`, "
            f"apply `{result.run_id}`, rows written: {result.rows_affected}"
        )
    )
    display(result_frame(result))


def record_job(np_: NotebookPlan, decision: Decision) -> None:
    """Report plan sha256, rows affected, dry run and idempotency key to the run record (``paynb.jobs``),
    when the job layer is installed. A no-op apply reports ``dry_run=True``: nothing changed."""
    try:
        from paynb import jobs
    except ImportError:
        return
    record = getattr(jobs, "record", None)
    if record is None:
        return
    plan = np_.plan
    result = decision.result
    record(
        plan_sha256=plan.sha256 if plan else None,
        rows_affected=result.rows_affected if result else 0,
        dry_run=decision.state != "applied",
        idempotency_key=plan.body["idempotency_key"] if plan else None,
    )
