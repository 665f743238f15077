"""The ``statements.generate`` fix: a reviewed generation plan applied once, recorded in the ledger.

:func:`paynb.ops.statements.generation.apply_on` already re-plans inside the write transaction, under an
advisory lock, and refuses unless the plan still hashes to the confirmed sha256; so the fix's freshness
check is that one (same snapshot as the writes), not a second dry run before it. A refused apply is
recorded as failed.

Example::

    from paynb.fixes import apply_fix
    plan = generate("2025-03-08").to_plan()
    apply_fix(GenerateFix(), plan, confirm=plan.sha256, ticket="OPS-3", reason="missing weekly statements")
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from paynb.errors import InputError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.ops.statements.generation import (
    PLAN_KIND,
    GenerationPlan,
    GenerationResult,
    apply_on,
    plan_on,
    written_statement_ids,
)
from paynb.ops.statements.periods import check_range, parse_account, require_day
from paynb.plan import Plan

if TYPE_CHECKING:
    from paynb.context import Env


_RECENT: OrderedDict[str, Plan] = OrderedDict()
_RECENT_MAX = 16


def remember(plan: GenerationPlan) -> GenerationPlan:
    """Keep a dry run's plan by sha256, so ``generate(..., apply=True, confirm=sha)`` in the same process
    hands the reviewed plan to the fix without a second dry run (the apply re-plans in its transaction)."""
    as_plan = plan.to_plan()
    _RECENT[as_plan.sha256] = as_plan
    _RECENT.move_to_end(as_plan.sha256)
    while len(_RECENT) > _RECENT_MAX:
        _RECENT.popitem(last=False)
    return plan


def recall(
    confirm: str | None,
    from_date: date,
    to_date: date,
    *,
    account: str | None,
    override: bool,
    missing_only: bool,
) -> Plan | None:
    """The remembered plan with this sha256, if it is a plan for exactly these arguments."""
    plan = _RECENT.get((confirm or "").strip().lower())
    wanted = plan_params(from_date, to_date, account, override, missing_only)
    return plan if plan is not None and _params(plan) == wanted else None


def _params(plan: Plan) -> dict[str, Any]:
    params = plan.body.get("params")
    if not isinstance(params, dict):
        raise InputError(
            "the plan has no params to re-plan from (made by an older paynb?)", field="body.params"
        )
    return {
        "from_date": require_day(params["from_date"], "from_date"),
        "to_date": require_day(params["to_date"], "to_date"),
        "account": parse_account(params.get("account")),
        "override": bool(params.get("override", True)),
        "missing_only": bool(params.get("missing_only", False)),
    }


class GenerateFix(Fix):
    """Write the statements and statement_invoices of a generation plan in one transaction.

    ``run_time`` pins ``statements.created_on`` (tests); by default it is the UTC date of the apply."""

    kind = PLAN_KIND
    title = "generate statements like GENERATE_STATEMENTS, set-based"

    def __init__(self, *, run_time: datetime | None = None) -> None:
        self.run_time = run_time
        self.last: GenerationResult | None = None

    def plan(self, env: Env, **params: Any) -> Plan:
        p = _params(Plan(PLAN_KIND, {"params": params}))
        check_range(p["from_date"], p["to_date"])
        with env.read() as conn:
            return plan_on(conn, run_time=self.run_time, **_positional(p)).to_plan()

    def replan(self, env: Env, plan: Plan) -> Plan:
        # execute re-plans inside its write transaction, under the lock, and refuses on any difference
        _params(plan)
        return plan

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        p = _params(plan)
        with run.transaction() as conn:
            gplan, written = apply_on(conn, confirm=plan.sha256, run_time=self.run_time, **_positional(p))
            ids = written_statement_ids(conn)
        self.last = GenerationResult(plan=gplan, run_id=run.apply_id, written=written, statement_ids=ids)
        tables = {
            "statements": written["statements_inserted"] + written["statements_updated"],
            "statement_invoices": written["statement_invoices_inserted"]
            + written["statement_invoices_deleted"],
        }
        total = sum(written.values())
        return Outcome(
            status="applied" if total else "nothing_to_do",
            rows_affected=total,
            before={"counts": plan.body.get("counts", {})},
            after={"written": written},
            touched={
                "rows": [{"table": t, "count": n} for t, n in tables.items() if n],
                "objects": [],
                "cfs": [],
            },
            detail={"written": written, "created_on": gplan.created_on.isoformat(), "statement_ids": ids},
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> dict[str, Any]:
        """The database's own row counts (from the apply's transaction) against the confirmed plan's.

        The plan was re-made inside that transaction under the lock, so the counts must agree exactly; a
        second read here would cost as much as a dry run on a large pay-db for no more certainty."""
        from paynb.errors import PlanError

        counts = plan.body.get("counts", {}).values()
        expected = {
            "statements_inserted": sum(c["new"] for c in counts),
            "statement_invoices_inserted": sum(c["links_added"] for c in counts),
            "statement_invoices_deleted": sum(c["links_removed"] for c in counts),
        }
        written = dict(outcome.detail.get("written", {}))
        wrong = {k: (v, written.get(k)) for k, v in expected.items() if written.get(k) != v}
        if wrong:
            raise PlanError(
                f"the apply wrote other row counts than the plan says (planned, written): {wrong}"
            )
        return {"counts_match_plan": True, **expected}


GENERATE_FIX = register_fix(GenerateFix())


def _positional(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "from_date": p["from_date"],
        "to_date": p["to_date"],
        "account": p["account"],
        "override": p["override"],
        "missing_only": p["missing_only"],
    }


def apply_generation(
    plan: GenerationPlan | Plan,
    confirm: str | None,
    *,
    env: Env | None = None,
    ticket: str = "",
    reason: str = "",
    run_time: datetime | None = None,
) -> GenerationResult:
    """Apply a reviewed generation plan through :func:`paynb.fixes.apply_fix` (recorded in the ledger)."""
    from paynb.fixes import apply_fix

    fix = GenerateFix(run_time=run_time)
    as_plan = plan.to_plan() if isinstance(plan, GenerationPlan) else plan
    result = apply_fix(fix, as_plan, confirm, env=env, ticket=ticket, reason=reason)
    assert fix.last is not None
    return GenerationResult(
        plan=fix.last.plan,
        run_id=result.apply_id,
        written=fix.last.written,
        statement_ids=fix.last.statement_ids,
    )


def plan_params(
    from_date: date, to_date: date, account: str | None, override: bool, missing_only: bool
) -> dict:
    """What a generation plan's ``body["params"]`` holds."""
    return {
        "from_date": from_date,
        "to_date": to_date,
        "account": account,
        "override": override,
        "missing_only": missing_only,
    }
