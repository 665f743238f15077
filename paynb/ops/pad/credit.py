"""PAD partial credit as a guarded data fix: plan, confirm, apply exactly once.

PAD payments are not refunded to the bank: the CFS account is credited instead (docs/pad-credit.md). A credit
is a CFS credit memo (``POST …/cms/``) plus the pay-db rows sbc-pay's refund API writes: a ``refunds`` row
(type ``INVOICE``), ``refunds_partial`` rows linked to it (``is_credit``, ``REFUND_PROCESSED``), a ``credits``
row, ``payment_accounts.pad_credit`` (with sql_versioning's ``version`` bump and ``payment_accounts_history``
row) and ``invoices.refund``/``refund_date``/status.

It is the registered fix ``pad.partial_credit`` (:class:`PartialCreditFix`) on :mod:`paynb.fixes`: every apply
(CLI, library, notebook button) goes through :func:`paynb.fixes.apply_fix` and lands in the ledger.

* :func:`plan_partial_credit` is read-only and returns a :class:`~paynb.plan.Plan` listing the exact memo
  payload and every pay-db change with before/after values. It holds nothing that moves by itself with
  time: the memo's ``transaction_date``/``gl_date`` and the pay-db timestamps are stamped at apply.
  Money safety first: it refuses while another credit on the invoice has an unfinished intent
  (:class:`CreditInProgress`: resume or resolve it first), lists every CFS memo that concerns the invoice
  (orphans: in CFS, not in pay-db), and refuses when that CFS credit plus this one exceeds the invoice total
  (:class:`OverCredit`).
* :func:`apply_partial_credit` (= ``apply_fix``) posts the memo at most once and writes pay-db in one
  transaction on the writer role.

Idempotency key: ``pcr-`` + 24 hex digits of sha256 over (invoice, the request's lines and amounts — or
the ``amount`` — and the ticket). The key is written where each store can be searched for it: the ledger
intent, the memo's ``comments`` in CFS, and ``credits.details`` in pay-db (``paynb:<key> …``).

State machine of one apply (under a PostgreSQL advisory lock on the invoice, held to the end)::

    confirm ok? ──no──> ConfirmMismatch (nothing happens)
        │
    credit already under way (its rows, a sent/confirmed intent, or its memo)? ─yes─> no re-plan (resume)
        │ no: re-plan now; any difference, an open intent of another credit, or CFS over-credit -> refuse
    [apply_fix: apply-started ledger entry]
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
    [before_db] one write transaction (writer role, apply id stamped): lock invoice and account rows
                (FOR UPDATE); if the key is already in credits -> nothing to do; guards: status, refund and
                earlier partial credits still as planned (else StalePlanError: memo posted, pay-db changed,
                reconcile by hand); insert refunds, credits, payment_accounts_history, add to pad_credit and
                bump version, [mid_db], insert refunds_partial (refund_id), update the invoice; commit
                (pay-db failing here: CreditOutcomeUnknown, "the memo is posted, re-run")
    [after_commit] mark intent "confirmed" with the row ids   [after_done]  verify: re-read CFS and pay-db
                (unreachable after the commit: the result says the credit is done and to run `verify`)
    [apply_fix: apply-finished ledger entry]

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
:mod:`~paynb.ops.pad.view` (tables, notebook confirmation).

Example::

    plan = plan_partial_credit(10, amount="1.00", reason="duplicate filing", ticket="OPS-123")
    print(plan.to_json(), plan.sha256)                # review
    result = apply_partial_credit(plan, confirm=plan.sha256)
    result.outcome                                    # 'applied' (again: 'already_applied')

    # the same through the protocol
    from paynb.fixes import apply_fix, get_fix
    fix = get_fix("pad.partial_credit")
    apply_fix(fix, fix.plan(env, invoice_id=10, amount="1.00", reason="…", ticket="OPS-123"), confirm=…, env=env)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from paynb.context import Env, resolve_env
from paynb.fixes import ApplyResult as FixApplyResult
from paynb.fixes import Fix, FixRun, Outcome, apply_fix, get_fix, known_fixes, register_fix
from paynb.ops.pad.credit_apply import (
    LOCK_NAMESPACE,
    STEPS,
    ApplyResult,
    CreditNotVerified,
    CreditOutcomeUnknown,
    FaultHook,
    applied_evidence,
    check_consistent,
    credit_started,
    execute_credit,
    invoice_lock,
    verify_credit,
)
from paynb.ops.pad.credit_plan import (
    PLAN_KIND,
    CreditAlreadyApplied,
    CreditInProgress,
    CreditRequest,
    OverCredit,
    build_request,
    idempotency_key,
    plan_partial_credit,
    request_from_plan,
)
from paynb.plan import Plan

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from paynb.cfs import CfsClient
    from paynb.settings import Settings

__all__ = [
    "LOCK_NAMESPACE",
    "PLAN_KIND",
    "STEPS",
    "ApplyResult",
    "CreditAlreadyApplied",
    "CreditInProgress",
    "CreditNotVerified",
    "CreditOutcomeUnknown",
    "CreditRequest",
    "FaultHook",
    "OverCredit",
    "PartialCreditFix",
    "applied_evidence",
    "apply_partial_credit",
    "build_request",
    "check_consistent",
    "credit_result",
    "idempotency_key",
    "invoice_lock",
    "plan_of_intent",
    "plan_partial_credit",
    "request_from_plan",
    "resolve_credit",
    "resume_credit",
    "verify_plan",
]


class PartialCreditFix(Fix):
    """``pad.partial_credit``: a CFS credit memo plus the pay-db rows of sbc-pay's refund API, exactly once."""

    kind = PLAN_KIND
    title = "PAD partial credit: CFS credit memo + pay-db refund rows, exactly once"

    def plan(self, env: Env, **params: Any) -> Plan:
        return plan_partial_credit(env=env, **params)

    def table(self, plan: Plan) -> Any:
        """Every pay-db and CFS change, before -> after (the CLI and the notebook helper show it)."""
        from paynb.ops.pad.view import changes_frame

        return changes_frame(plan)

    def replan(self, env: Env, plan: Plan) -> Plan:
        """A credit already under way (an earlier apply got past the post) is resumed, not re-planned: the
        data it was planned on moved because of it. The guards inside the write transaction still hold."""
        check_consistent(plan)
        if credit_started(env, plan) is not None:
            return plan
        try:
            return super().replan(env, plan)
        except CreditAlreadyApplied:
            # a concurrent apply of this plan finished between the look-up above and the re-plan: execute
            # finds it under the invoice lock and answers "already applied"
            return plan

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        result = execute_credit(env, plan, run)
        body = plan.body
        touched = {
            "rows": [
                *([{"table": "credits", "id": result.credit_id}] if result.credit_id else []),
                *([{"table": "refunds", "id": result.refund_id}] if result.refund_id else []),
                *[{"table": "refunds_partial", "id": i} for i in result.refunds_partial_ids],
                {"table": "payment_accounts", "id": body["pay_db"]["payment_accounts"]["id"]},
                {"table": "invoices", "id": result.invoice_id},
            ],
            "cfs": [
                {
                    "credit_memo": result.credit_memo_number,
                    "site": "/".join((body["cfs"]["party"], body["cfs"]["account"], body["cfs"]["site"])),
                }
            ],
        }
        inv = body["pay_db"]["invoices"]
        return Outcome(
            status=result.outcome,  # type: ignore[arg-type]  # applied | resumed | already_applied
            rows_affected=result.rows_affected,
            before={
                "invoices.refund": inv["refund"]["before"],
                "invoices.invoice_status_code": inv["invoice_status_code"]["before"],
                "pad_credit": body["pay_db"]["payment_accounts"]["pad_credit"]["before"],
            },
            after={
                "invoices.refund": inv["refund"]["after"],
                "invoices.invoice_status_code": inv["invoice_status_code"]["after"],
                "credit_memo_number": result.credit_memo_number,
            },
            touched=touched,
            detail={"result": result.to_dict()},
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> Mapping[str, Any]:
        """Re-read CFS and pay-db. A difference raises CreditNotVerified; an unreachable pay-db or CFS after
        the commit does not (the credit is done): the result says so and names ``paynb pad credit verify``."""
        result = ApplyResult.from_dict(dict(outcome.detail["result"]))
        verify_credit(env, plan, result)
        if result.problems:
            raise CreditNotVerified(
                f"credit {result.idempotency_key} (memo {result.credit_memo_number}): "
                + "; ".join(result.problems)
            )
        return {"verified": result.verified, "result": result.to_dict()}


if PLAN_KIND not in known_fixes():
    register_fix(PartialCreditFix())


def _env(
    env: Env | None, settings: Settings | None, engine: Engine | None, cfs: CfsClient | None, **extra: Any
) -> Env:
    return resolve_env(env, settings=settings, engine=engine, write_engine=engine, cfs=cfs, **extra)


def apply_partial_credit(
    plan: Plan,
    confirm: str | None,
    *,
    env: Env | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
    cfs: CfsClient | None = None,
    run_id: str | None = None,  # kept for old callers: the apply id now comes from the ledger
    faults: FaultHook | None = None,
    lock_wait_s: float | None = None,
    ticket: str | None = None,
    reason: str | None = None,
    operator: str | None = None,
) -> ApplyResult:
    """Apply a reviewed plan through :func:`paynb.fixes.apply_fix` (ledger entries, re-plan, confirm) and
    return the credit's own result: what it wrote and what CFS and pay-db hold afterwards.

    Refuses (nothing changed) on a wrong ``confirm`` or when re-planning gives a different plan. Safe to
    re-run at any point: see the state machine in the module docstring. ``ticket`` must be the plan's (it
    is part of the key); ``reason`` (default: the plan's) and ``operator`` go to the ledger entry.
    """
    del run_id
    env = _env(env, settings, engine, cfs, faults=faults, lock_wait_s=lock_wait_s)
    body = plan.body if isinstance(plan.body, dict) else {}
    planned_ticket = str(body.get("ticket", ""))
    if ticket and ticket.strip() != planned_ticket:
        from paynb.errors import InputError

        raise InputError(
            f"the plan is for ticket {planned_ticket!r}, not {ticket.strip()!r} (the ticket is part of the "
            "credit's key); make a new plan for another ticket",
            field="ticket",
        )
    if operator and operator != env.operator:  # the confirming operator is refunds.decision_made_by too
        env = Env(settings=env.settings, run_id=env.run_id, operator=operator, overrides=dict(env.overrides))
    applied = apply_fix(
        get_fix(PLAN_KIND),
        plan,
        confirm,
        env=env,
        ticket=planned_ticket,
        reason=reason or str(body.get("reason", "")),
        operator=operator,
    )
    return credit_result(applied)


def credit_result(applied: FixApplyResult) -> ApplyResult:
    """The credit's own result (what it wrote, what CFS and pay-db hold) from apply_fix's result."""
    result = ApplyResult.from_dict(
        dict(applied.verification.get("result") or applied.outcome.detail["result"])
    )
    result.run_id = applied.apply_id
    return result


def verify_plan(plan: Plan, *, env: Env | None = None) -> ApplyResult:
    """Check an applied plan again (read-only): its memo in CFS, its rows in pay-db. For after an apply
    could not verify (pay-db or CFS unreachable right after the commit)."""
    env = resolve_env(env)
    check_consistent(plan)
    body = plan.body
    key = body["idempotency_key"]
    evidence = applied_evidence(key, int(body["invoice"]["id"]), env=env)
    if evidence is None:
        raise CreditInProgress(
            f"credit {key} is not in pay-db (no credits row carries it)",
            hint="apply the plan (it resumes if its memo is already in CFS), or check the ledger intent",
            open_keys=[key],
        )
    from paynb.ops.pad.credit_apply import committed_evidence
    from paynb.ops.pad.credit_plan import applied_credit_row

    with env.read() as conn:
        marker = applied_credit_row(conn, int(body["invoice"]["id"]), key)
    if marker is not None:
        evidence = {**evidence, **committed_evidence(env, int(body["invoice"]["id"]), key, marker)}
    result = ApplyResult(
        outcome="already_applied",
        message=f"credit {key} checked",
        idempotency_key=key,
        plan_sha256=plan.sha256,
        run_id="",
        invoice_id=int(body["invoice"]["id"]),
        credit_memo_number=evidence.get("credit_memo_number"),
        credit_id=evidence.get("credit_id"),
        refund_id=evidence.get("refund_id"),
        refunds_partial_ids=list(evidence.get("refunds_partial_ids") or []),
        evidence=dict(evidence),
    )
    verify_credit(env, plan, result)
    return result


def plan_of_intent(key: str, *, env: Env | None = None) -> Plan:
    """The plan an unfinished credit was applied from (kept in its ledger intent before the post)."""
    from paynb.errors import InputError
    from paynb.ops.pad import intents

    env = resolve_env(env)
    intent = intents.get_intent(key, settings=env.settings)
    if intent is None:
        raise InputError(f"the ledger has no credit intent {key}", field="key")
    raw = intent.evidence.get("plan")
    if not isinstance(raw, dict):
        raise InputError(
            f"intent {key} keeps no plan (it was recorded before plans were kept); apply its plan file again",
            field="key",
        )
    return Plan.from_dict(raw, source=f"ledger intent {key}")


def resume_credit(key: str, confirm: str | None, *, env: Env | None = None) -> ApplyResult:
    """Finish a credit that stopped half-way, from the plan its intent keeps (same checks as an apply)."""
    env = resolve_env(env)
    return apply_partial_credit(plan_of_intent(key, env=env), confirm, env=env)


def resolve_credit(key: str, reason: str, *, env: Env | None = None) -> dict[str, Any]:
    """Mark an unfinished credit that never reached CFS as ``abandoned`` (it will not be retried), so other
    credits on its invoice can be planned. Refused when its memo is in CFS or its rows are in pay-db: such
    a credit must be resumed (`paynb pad credit resume`), never dropped."""
    from paynb.errors import InputError, PlanError
    from paynb.ops.pad import intents

    env = resolve_env(env)
    text = " ".join(str(reason or "").split())
    if not text:
        raise InputError("a reason is required (it is recorded in the ledger intent)", field="reason")
    plan = plan_of_intent(key, env=env)
    intent = intents.get_intent(key, settings=env.settings)
    assert intent is not None
    if intent.state not in intents.UNFINISHED:
        raise PlanError(f"intent {key} is {intent.state}; only a pending or sent credit can be resolved")
    with invoice_lock(env.write_engine, int(plan.body["invoice"]["id"])):
        why = credit_started(env, plan)
        if why is not None:
            raise PlanError(
                f"credit {key} cannot be dropped: {why}",
                hint=f"finish it: paynb pad credit resume --key {key} --confirm {plan.sha256}",
            )
        intents.mark_intent(key, intents.ABANDONED, settings=env.settings, reason=text, by=env.operator)
    return {"key": key, "state": intents.ABANDONED, "invoice_id": plan.body["invoice"]["id"], "reason": text}
