"""PAD partial credit as a guarded data fix: plan, confirm, apply exactly once.

"We don't do PAD refunds; we credit the CFS account" (docs/cfs-api.md#partial-credit-of-a-pad-invoice, docs/runbook.md#pad-partial-credit). A credit
is a CFS credit memo (``POST …/cms/``) plus pay-db rows: a ``credits`` row, ``payment_accounts.pad_credit``,
``refunds_partial`` rows (``is_credit``, ``REFUND_PROCESSED``) and ``invoices.refund``/``refund_date``/status.

* :func:`plan_partial_credit` is read-only and returns a :class:`~paynb.plan.Plan` listing the exact memo
  payload and every pay-db change with before/after values. It holds nothing that moves by itself with
  time: the memo's ``transaction_date``/``gl_date`` and the pay-db timestamps are stamped at apply.
* :func:`apply_partial_credit` posts the memo at most once and writes pay-db in one transaction.

Idempotency key: ``pcr-`` + 24 hex digits of sha256 over (invoice, the request's lines and amounts — or
the ``amount`` — and the ticket). The key is written where each store can be searched for it: the ledger
intent, the memo's ``comments`` in CFS, and ``credits.details`` in pay-db (``paynb:<key> …``).

State machine of one apply (under a PostgreSQL advisory lock on the invoice, held to the end)::

    confirm ok? ──no──> ConfirmMismatch (nothing happens)
        │
    ledger intent "confirmed" ────────────────────────────────────────> ALREADY APPLIED (verify, no-op)
        │ no
    pay-db has credits.details "paynb:<key>…" ──> mark confirmed ────> RESUMED (a run died after commit)
        │ no
    memo known? (intent "sent" with its number, else CFS memos of the site searched for the key)
        │ no                                              │ yes (a run died after the post)
    re-plan, check_fresh (refuse on any change)           │ memo amount must equal the plan's total
    [before_intent] record intent "pending" (+ the        │ intent recorded/marked "sent" if behind
                    reconciliation note, plan sha256)     │
    [after_intent]  POST …/cms/ (a lost response is       │
                    recovered by searching for the key)   │
    [after_post]    mark intent "sent" + memo number      │
        ├─────────────────────────────────────────────────┘
    [before_db] one write transaction (run id stamped): lock invoice and account rows (FOR UPDATE);
                if the key is already in credits -> nothing to do; guards: status, refund and earlier
                partial credits still as planned (else StalePlanError: memo posted, pay-db changed,
                reconcile by hand); insert credits, add to pad_credit, [mid_db], insert refunds_partial,
                update the invoice; commit
    [after_commit] mark intent "confirmed" with the row ids   [after_done]  verify: re-read CFS and pay-db

A crash at any ``[boundary]`` leaves one of: nothing; an intent without a memo (the re-run re-plans and
posts); a memo without pay-db rows (the re-run finds it by key and does only the DB step); pay-db rows
with the ledger behind (the re-run marks it confirmed). Neither the memo nor the rows can be made twice: the
memo is looked for by key before every post, and the rows are looked for by key inside the transaction
that would write them, after the invoice row lock. Once the memo exists, the apply no longer re-plans
(that would refuse on a trivial change such as ``pad_credit`` moving when CAS applies credits); the
transaction's guards protect what matters and ``pad_credit`` is added to, not overwritten.

``faults`` (tests): a callable given each boundary name; raising from it simulates a crash there.

Modules: :mod:`~paynb.ops.pad.credit_plan` (request, key, checks, plan body), :mod:`~paynb.ops.pad.credit_apply`
(this state machine), :mod:`~paynb.ops.pad.credit_lines` (pure money and line rules, memo lines),
:mod:`~paynb.ops.pad.credit_facts` (pay-db reads), :mod:`~paynb.ops.pad.intents` (ledger intents),
:mod:`~paynb.ops.pad.credit_view` (tables, notebook confirmation).

Example::

    plan = plan_partial_credit(10, amount="1.00", reason="duplicate filing", ticket="OPS-123")
    print(plan.to_json(), plan.sha256)                # review
    result = apply_partial_credit(plan, confirm=plan.sha256)
    result.outcome                                    # 'applied' (again: 'already_applied')
"""

from __future__ import annotations

from paynb.ops.pad.credit_apply import (
    LOCK_NAMESPACE,
    STEPS,
    ApplyResult,
    FaultHook,
    applied_evidence,
    apply_partial_credit,
    check_consistent,
    invoice_lock,
)
from paynb.ops.pad.credit_plan import (
    PLAN_KIND,
    CreditAlreadyApplied,
    CreditRequest,
    build_request,
    idempotency_key,
    plan_partial_credit,
    request_from_plan,
    sandbox_candidate_invoice,
)

__all__ = [
    "LOCK_NAMESPACE",
    "PLAN_KIND",
    "STEPS",
    "ApplyResult",
    "CreditAlreadyApplied",
    "CreditRequest",
    "FaultHook",
    "applied_evidence",
    "apply_partial_credit",
    "build_request",
    "check_consistent",
    "idempotency_key",
    "invoice_lock",
    "plan_partial_credit",
    "request_from_plan",
    "sandbox_candidate_invoice",
]
