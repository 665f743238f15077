"""Applying a routing slip void plan exactly once, resumable after a crash at any point.

It is the fix ``routing_slip.void`` on :mod:`paynb.fixes` (every apply goes through ``apply_fix``: confirm,
re-plan, ledger entries). Under a PostgreSQL advisory lock on the slip, held to the end::

    operator in PAYNB_RS_VOID_OPERATORS? (else OperatorNotAllowed, nothing written)
    ledger intent <key> confirmed? ──yes──> ALREADY APPLIED (verify only)
    void under way (marker comment in pay-db)? no -> re-plan now, refuse on any difference
    intent <key> pending

    mode reverse_receipts (paynb reverses, as the job would):
      [before_void_tx] one transaction: lock slip and invoices; unassociate the invoices, [mid_void_tx]
          status VOID, remaining_amount 0, CFS account INACTIVE (so the job does not act too), re-associate
          the invoices, marker comment; commit            [after_void_tx]
      per receipt i (slip, then children): intent <key>:<receipt>; CFS says REV already? -> confirm; else
          [before_reverse:i] POST …/reverse (a lost answer: read the receipt back) [after_reverse:i] confirm
      [before_finish_tx] cas_version_suffix = planned + 1 (once)   [after_finish_tx]

    mode job (pay-api's status change, then sbc-pay's job):
      [before_detach_tx] one transaction: unassociate the invoices, [mid_detach_tx] status VOID,
          remaining_amount 0, marker comment; commit      [after_detach_tx]
      the job has run? (CFS account INACTIVE, suffix bumped, every receipt REV) -- no -> VoidWaitingForJob:
          "re-run this apply after the routing slip job" (the ledger shows what is committed)
      [before_reassociate_tx] re-associate the invoices [mid_reassociate_tx]; commit  [after_reassociate_tx]

    intent <key> confirmed   [after_done]   verify: re-read pay-db and CFS

A crash anywhere leaves the slip untouched, or with a committed transaction that a re-run finds (by its
marker comment, its suffix, CFS's receipt status) and continues from. In ``reverse_receipts`` mode no
receipt is ever reversed while an invoice is detached: the detach and re-attach share the transaction
that commits before the first reversal. In ``job`` mode sbc-pay's job reverses the receipts while the
invoices are detached (it refuses otherwise); the re-run re-attaches them (docs/routing-slips.md).

``env.overrides["faults"]`` (tests): a callable given each ``[boundary]`` name; raising simulates a crash.
``env.overrides["job_wait_s"]``: how long to wait for the job (default 0: look once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paynb import db
from paynb.context import Env
from paynb.errors import CfsError, PaynbError, PlanError, StalePlanError
from paynb.fixes import Fix, FixRun, Outcome, known_fixes, register_fix
from paynb.ops.routing_slips import facts
from paynb.ops.routing_slips.plan import PLAN_KIND, check_operator, plan_void
from paynb.plan import Plan, check_fresh
from paynb.timez import utcnow_naive

LOCK_NAMESPACE = 0x52535644  # "RSVD": advisory locks of this flow, keyed (namespace, slip id)
REVERSE_STEPS = (
    "before_void_tx",
    "mid_void_tx",
    "after_void_tx",
    "before_reverse",
    "after_reverse",
    "before_finish_tx",
    "after_finish_tx",
    "after_done",
)
JOB_STEPS = (
    "before_detach_tx",
    "mid_detach_tx",
    "after_detach_tx",
    "before_reassociate_tx",
    "mid_reassociate_tx",
    "after_reassociate_tx",
    "after_done",
)
REVERSAL_REASON = "PAYMENT REVERSAL"  # sbc-pay CFS_PAYMENT_REVERSAL_REASON
REVERSAL_COMMENT = "Created In Error"  # sbc-pay _build_reversal_comment(VOID)

FaultHook = Callable[[str], None]


class VoidWaitingForJob(PaynbError):
    """The slip is VOID with its invoices detached; sbc-pay's routing slip job has not acted yet."""

    hint = "re-run the same apply after the routing slip job has run: it checks the job's result and re-associates"


class VoidNotVerified(PaynbError):
    """Re-reading pay-db and CFS after the void found a difference from the plan."""

    hint = "do not change anything by hand; compare `paynb routing-slip show NUMBER` with the plan"


def slip_lock(engine: Engine, slip_id: int, wait_s: float = 30.0) -> AbstractContextManager[None]:
    """A session advisory lock on (this flow, slip); released with the connection if the process dies."""
    busy = PlanError(f"another apply holds routing slip {slip_id}; try again when it has finished")
    return db.advisory_lock(engine, LOCK_NAMESPACE, slip_id, wait_s=wait_s, busy=busy)


def void_started(env: Env, plan: Plan) -> str | None:
    """Why this plan's void is already under way (its first transaction committed), or None."""
    with env.read() as conn:
        if facts.read_marker(conn, plan.body["slip"]["number"], plan.body["key"]) is not None:
            return "pay-db holds its marker comment"
    return None


class _Void:
    def __init__(self, env: Env, plan: Plan, run: FixRun) -> None:
        self.env, self.plan, self.run_ = env, plan, run
        self.body = plan.body
        self.key: str = self.body["key"]
        self.number: str = self.body["slip"]["number"]
        self.slip_id = int(self.body["slip"]["id"])
        self.invoice_ids = [int(i["id"]) for i in self.body["invoices"]]
        self.suffix = int(self.body["slip"]["cas_version_suffix"] or 1)
        acc = self.body["cfs_account"]
        self.site = (acc["cfs_party"], acc["cfs_account"], acc["cfs_site"])
        self.faults: FaultHook | None = env.overrides.get("faults")
        self.steps: list[str] = []
        self.rows = 0
        self.reversed: list[str] = []

    def hook(self, name: str) -> None:
        if self.faults is not None:
            self.faults(name)

    # -- the flow -----------------------------------------------------------------------------------------
    def run(self) -> str:
        intent = self.run_.get_intent(self.key)
        if intent is not None and intent.state == "confirmed":
            self.steps.append("ledger: already confirmed")
            return "already_applied"
        if intent is not None and intent.state in ("failed", "abandoned"):
            raise PlanError(f"the ledger marks void {self.key} as {intent.state}; it will not be retried")
        started = void_started(self.env, self.plan) is not None
        if not started:
            check_fresh(self.plan, plan_void(**self.body["params"], env=self.env))
            self.steps.append("re-planned under the lock: unchanged")
        self.run_.intent(
            self.key,
            {
                "kind": PLAN_KIND,
                "number": self.number,
                "ticket": self.body["ticket"],
                "mode": self.body["mode"],
            },
        )
        if intent is None or "plan_sha256" not in intent.evidence:
            self.run_.mark(self.key, "pending", plan_sha256=self.plan.sha256, plan=self.plan.to_dict())
        if self.body["mode"] == "reverse_receipts":
            self._reverse_mode(started)
        else:
            self._job_mode(started)
        self.run_.mark(self.key, "confirmed", reversed=self.reversed, rows=self.rows)
        self.steps.append("ledger: confirmed")
        self.hook("after_done")
        return "resumed" if started else "applied"

    def _reverse_mode(self, started: bool) -> None:
        if not started:
            self.hook("before_void_tx")
            with self.run_.transaction() as conn:
                self._guard(conn)
                self._unassociate(conn)
                self.hook("mid_void_tx")
                self._set_void(conn, inactive=True)
                self._reassociate(conn, must=len(self.invoice_ids))
                self._marker(conn)
            self.steps.append(
                "pay-db: unassociated, VOID, CFS account INACTIVE, re-associated (one transaction)"
            )
            self.run_.committed(
                f"routing slip {self.number} VOID in pay-db (invoices re-associated, CFS account INACTIVE)",
                next_step="re-run the same apply: it reverses the receipts still open, once each",
            )
            self.hook("after_void_tx")
            self.run_.mark(self.key, "sent", voided=True)
        for i, r in enumerate(self.body["receipts"]):
            self._reverse_once(i, r["receipt_number"])
        self.hook("before_finish_tx")
        with self.run_.transaction() as conn:
            n = conn.execute(
                sa.text(
                    "UPDATE routing_slips SET cas_version_suffix = :new, updated_on = :now WHERE id = :id "
                    "AND coalesce(cas_version_suffix, 1) = :old"
                ),
                {"new": self.suffix + 1, "old": self.suffix, "id": self.slip_id, "now": utcnow_naive()},
            ).rowcount
            self.rows += n
        self.steps.append("pay-db: cas_version_suffix bumped" if n else "pay-db: suffix already bumped")
        self.hook("after_finish_tx")

    def _job_mode(self, started: bool) -> None:
        if not started:
            self.hook("before_detach_tx")
            with self.run_.transaction() as conn:
                self._guard(conn)
                self._unassociate(conn)
                self.hook("mid_detach_tx")
                self._set_void(conn, inactive=False)
                self._marker(conn)
            self.steps.append("pay-db: invoices unassociated, slip VOID (one transaction)")
            self.run_.committed(
                f"routing slip {self.number} VOID in pay-db with its {len(self.invoice_ids)} invoice(s) unassociated",
                next_step="let sbc-pay's routing slip job run, then re-run the same apply: it re-associates the "
                "invoices; never re-associate by hand before the job has run (the job refuses a slip with invoices)",
            )
            self.hook("after_detach_tx")
            self.run_.mark(self.key, "sent", voided=True)
        with self.env.read() as conn:
            attached = conn.execute(
                sa.text("SELECT count(*) FROM invoices WHERE id = ANY(:ids) AND routing_slip = :n"),
                {"ids": self.invoice_ids or [-1], "n": self.number},
            ).scalar_one()
        if attached < len(self.invoice_ids):
            self._wait_for_job()
            self.hook("before_reassociate_tx")
            with self.run_.transaction() as conn:
                conn.execute(
                    sa.text("SELECT id FROM routing_slips WHERE id = :id FOR UPDATE"), {"id": self.slip_id}
                )
                self._reassociate(conn)
                self.hook("mid_reassociate_tx")
            self.steps.append("pay-db: invoices re-associated")
            self.hook("after_reassociate_tx")
        for r in self.body["receipts"]:
            self.reversed.append(r["receipt_number"])

    # -- steps --------------------------------------------------------------------------------------------
    def _guard(self, conn: Connection) -> None:
        slip = facts.read_slip(conn, self.number, lock=True)
        if slip is None or slip["status"] != self.body["slip"]["status"]:
            raise StalePlanError(f"routing slip {self.number} changed since the re-plan; nothing was written")
        rows = facts.read_invoices(conn, [self.number], lock=True)
        if sorted(int(r["id"]) for r in rows) != sorted(self.invoice_ids):
            raise StalePlanError(
                f"the invoices of slip {self.number} changed since the re-plan; nothing was written"
            )

    def _unassociate(self, conn: Connection) -> None:
        n = conn.execute(
            sa.text(
                "UPDATE invoices SET routing_slip = NULL, updated_on = :now, updated_by = :by WHERE id = ANY(:ids) "
                "AND routing_slip = :n"
            ),
            {"ids": self.invoice_ids or [-1], "n": self.number, "now": utcnow_naive(), "by": self._by()},
        ).rowcount
        if n != len(self.invoice_ids):
            raise StalePlanError(
                f"expected to unassociate {len(self.invoice_ids)} invoice(s), found {n}; rolled back"
            )
        self.rows += n

    def _reassociate(self, conn: Connection, must: int | None = None) -> None:
        n = conn.execute(
            sa.text(
                "UPDATE invoices SET routing_slip = :n, updated_on = :now, updated_by = :by WHERE id = ANY(:ids) "
                "AND routing_slip IS NULL"
            ),
            {"ids": self.invoice_ids or [-1], "n": self.number, "now": utcnow_naive(), "by": self._by()},
        ).rowcount
        if must is not None and n != must:
            raise StalePlanError(f"expected to re-associate {must} invoice(s), found {n}; rolled back")
        self.rows += n

    def _set_void(self, conn: Connection, *, inactive: bool) -> None:
        now = utcnow_naive()
        self.rows += conn.execute(
            sa.text(
                "UPDATE routing_slips SET status = 'VOID', remaining_amount = 0, updated_on = :now, "
                "updated_by = :by WHERE id = :id"
            ),
            {"id": self.slip_id, "now": now, "by": self._by()},
        ).rowcount
        if inactive:
            self.rows += conn.execute(
                sa.text("UPDATE cfs_accounts SET status = 'INACTIVE' WHERE id = :id AND status = 'ACTIVE'"),
                {"id": int(self.body["cfs_account"]["id"])},
            ).rowcount

    def _marker(self, conn: Connection) -> None:
        text = (
            f"Voided by paynb:{self.key} ({self.body['mode']}), ticket {self.body['ticket']}: "
            f"{self.body['reason']}"
        )[:4096]
        conn.execute(
            sa.text(
                'INSERT INTO comments (comment, "timestamp", routing_slip_number, submitter_name) '
                "VALUES (:c, now(), :n, :by)"
            ),
            {"c": text, "n": self.number, "by": self.env.operator[:50]},
        )
        self.rows += 1

    def _by(self) -> str:
        return f"paynb:{self.key}"[:50]

    def _reverse_once(self, index: int, number: str) -> None:
        key = f"{self.key}:{number}"
        intent = self.run_.intent(
            key, {"kind": PLAN_KIND + ".receipt", "receipt": number, "site": list(self.site)}
        )
        if intent.state == "confirmed":
            self.reversed.append(number)
            return
        cfs = self.env.cfs_fas
        if facts.receipt_state(cfs, self.site, number)["status"] == facts.REVERSED:
            self.run_.mark(key, "confirmed", found_reversed=True)
            self.reversed.append(number)
            self.steps.append(f"cfs: receipt {number} already reversed")
            return
        self.hook(f"before_reverse:{index}")
        try:
            cfs.reverse_receipt(*self.site, number, reason=REVERSAL_REASON, comment=REVERSAL_COMMENT)
        except CfsError as err:
            # a lost answer (or a retry after one): the receipt tells whether CFS acted
            if facts.receipt_state(cfs, self.site, number)["status"] != facts.REVERSED:
                raise
            self.steps.append(f"cfs: receipt {number} reversal answer lost, found reversed ({err.status})")
        self.run_.committed(f"CFS receipt {number} reversed")
        self.hook(f"after_reverse:{index}")
        self.run_.mark(key, "confirmed", reversed_by=self.run_.apply_id)
        self.reversed.append(number)
        self.steps.append(f"cfs: receipt {number} reversed")

    def _wait_for_job(self) -> None:
        wait = float(self.env.overrides.get("job_wait_s") or 0.0)
        deadline = time.monotonic() + wait
        while True:
            done = self._job_done()
            if done is None:
                return
            if time.monotonic() >= deadline:
                raise VoidWaitingForJob(
                    f"routing slip {self.number} is VOID with its invoices unassociated; {done}"
                )
            time.sleep(min(1.0, max(0.05, wait / 20)))

    def _job_done(self) -> str | None:
        """None when the job's result is there (CFS account INACTIVE, suffix bumped, receipts REV), else why not."""
        with self.env.read() as conn:
            slip = facts.read_slip(conn, self.number)
            acc = facts.read_cfs_account(conn, self.body["slip"]["payment_account_id"])
        if (
            acc is None
            or acc["status"] != "INACTIVE"
            or int(slip["cas_version_suffix"] or 1) != self.suffix + 1
        ):
            return "the routing slip job has not processed it yet (CFS account still ACTIVE)"
        open_ = [
            r["receipt_number"]
            for r in self.body["receipts"]
            if facts.receipt_state(self.env.cfs_fas, self.site, r["receipt_number"])["status"]
            != facts.REVERSED
        ]
        if open_:
            return f"the job ran but receipt(s) {', '.join(open_)} are not reversed in CFS"
        self.steps.append("job result: CFS account INACTIVE, suffix bumped, receipts reversed")
        return None


def verify_void(env: Env, plan: Plan) -> dict[str, Any]:
    """Re-read pay-db and CFS; the slip must be fully voided with its invoices re-associated."""
    body = plan.body
    number = body["slip"]["number"]
    problems = []
    with env.read() as conn:
        slip = facts.read_slip(conn, number)
        acc = facts.read_cfs_account(conn, body["slip"]["payment_account_id"])
        invoices = facts.read_invoices(conn, [number])
    if slip is None or slip["status"] != "VOID":
        problems.append(f"slip status is {slip and slip['status']}, expected VOID")
    if slip is not None and slip["remaining_amount"] not in (None, 0):
        problems.append(f"remaining_amount is {slip['remaining_amount']}, expected 0")
    want = int(body["after"]["routing_slips.cas_version_suffix"])
    if slip is not None and int(slip["cas_version_suffix"] or 1) != want:
        problems.append(f"cas_version_suffix is {slip['cas_version_suffix']}, expected {want}")
    if acc is None or acc["status"] != "INACTIVE":
        problems.append(f"CFS account is {acc and acc['status']}, expected INACTIVE")
    ids = sorted(int(i["id"]) for i in body["invoices"])
    if sorted(int(i["id"]) for i in invoices) != ids:
        problems.append(f"invoices on the slip are {sorted(int(i['id']) for i in invoices)}, expected {ids}")
    site = (
        body["cfs_account"]["cfs_party"],
        body["cfs_account"]["cfs_account"],
        body["cfs_account"]["cfs_site"],
    )
    receipts = {
        r["receipt_number"]: facts.receipt_state(env.cfs_fas, site, r["receipt_number"])["status"]
        for r in body["receipts"]
    }
    problems += [f"receipt {n} is {s}, expected REV" for n, s in receipts.items() if s != facts.REVERSED]
    if problems:
        raise VoidNotVerified(f"void of routing slip {number}: " + "; ".join(problems))
    return {
        "verified": True,
        "status": "VOID",
        "invoices": ids,
        "receipts": receipts,
        "cas_version_suffix": want,
    }


class RoutingSlipVoidFix(Fix):
    """``routing_slip.void``: unassociate, void (job or paynb's own reversal), re-associate; exactly once."""

    kind = PLAN_KIND
    title = "routing slip void (unassociate the invoices, void, re-associate)"

    def plan(self, env: Env, **params: Any) -> Plan:
        return plan_void(env=env, **params)

    def table(self, plan: Plan) -> Any:
        from paynb.ops.routing_slips.view import plan_table

        return plan_table(plan)

    def replan(self, env: Env, plan: Plan) -> Plan:
        """Who may apply is checked first (nothing written on a refusal). A void already under way is
        resumed, not re-planned: the data it was planned on moved because of it."""
        if plan.kind != PLAN_KIND:
            raise PlanError(f"this is a {plan.kind!r} plan, not a {PLAN_KIND!r} plan")
        check_operator(env)
        _check_consistent(plan)
        if void_started(env, plan) is not None:
            return plan
        return super().replan(env, plan)

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        check_operator(env)
        _check_consistent(plan)
        wait = float(env.overrides.get("lock_wait_s") or 30.0)
        with slip_lock(env.write_engine, int(plan.body["slip"]["id"]), wait):
            void = _Void(env, plan, run)
            status = void.run()
        body = plan.body
        return Outcome(
            status=status,  # type: ignore[arg-type]
            rows_affected=void.rows,
            before={
                "status": body["slip"]["status"],
                "cas_version_suffix": body["slip"]["cas_version_suffix"],
                "cfs_account": body["cfs_account"]["status"],
            },
            after=dict(body["after"]),
            touched={
                "rows": [
                    {"table": "routing_slips", "id": body["slip"]["id"]},
                    {"table": "cfs_accounts", "id": body["cfs_account"]["id"]},
                    *[{"table": "invoices", "id": i["id"]} for i in body["invoices"]],
                ],
                "cfs": [{"receipt": n, "action": "reverse"} for n in void.reversed],
            },
            detail={"steps": void.steps, "reversed": void.reversed, "key": void.key},
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> Mapping[str, Any]:
        return verify_void(env, plan)


def _check_consistent(plan: Plan) -> None:
    """Refuse a plan whose parts disagree (a hand-edited file whose sha256 was recomputed)."""
    from paynb.ops.routing_slips.plan import clean_params, void_key

    try:
        body = plan.body
        params = clean_params(**body["params"])
        mode = "reverse_receipts" if params["reverse_receipts"] else "job"
        ok = (
            body["key"] == void_key(params["number"], params["ticket"], mode)
            and body["mode"] == mode
            and body["slip"]["number"] == params["number"]
            and body["ticket"] == params["ticket"]
            and all(i["routing_slip"] == params["number"] for i in body["invoices"])
        )
    except (KeyError, TypeError, ValueError) as err:
        raise PlanError(f"the plan is incomplete or malformed ({type(err).__name__}: {err})") from None
    if not ok:
        raise PlanError(
            "the plan does not add up (key, mode, slip or invoices); was it edited? Make a new plan"
        )


if PLAN_KIND not in known_fixes():
    register_fix(RoutingSlipVoidFix())


def get_void_fix() -> Fix:
    from paynb.fixes import get_fix

    return get_fix(PLAN_KIND)


def apply_void(
    plan: Plan,
    confirm: str | None,
    *,
    env: Env | None = None,
    ticket: str | None = None,
    reason: str | None = None,
    operator: str | None = None,
    **overrides: Any,
) -> Any:
    """Apply a reviewed void plan through :func:`paynb.fixes.apply_fix`. ``overrides`` (``faults``,
    ``job_wait_s``, ``lock_wait_s``) go to the Env. Safe to re-run after any failure."""
    from paynb.context import resolve_env
    from paynb.fixes import apply_fix

    env = resolve_env(env, **overrides)
    if operator and operator != env.operator:
        env = Env(settings=env.settings, run_id=env.run_id, operator=operator, overrides=dict(env.overrides))
    body = plan.body if isinstance(plan.body, dict) else {}
    return apply_fix(
        get_void_fix(),
        plan,
        confirm,
        env=env,
        ticket=ticket or str(body.get("ticket", "")),
        reason=reason or str(body.get("reason", "")),
        operator=operator,
    )
