"""Applying a PAD credit plan exactly once: the state machine described in :mod:`paynb.ops.pad.credit`
(advisory lock, ledger intent, CFS look-up by key, post, one pay-db transaction on the writer role, verify).

:func:`execute_credit` is the body of the fix's ``execute`` (called by :func:`paynb.fixes.apply_fix`, which
records the apply in the ledger); :func:`verify_credit` the body of its ``verify``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paynb import db
from paynb.canonical import to_jsonable
from paynb.enums import RefundsPartialStatus
from paynb.errors import CfsError, DatabaseError, PaynbError, PlanError, StalePlanError
from paynb.ops.pad import intents
from paynb.ops.pad.credit_lines import ZERO, money
from paynb.ops.pad.credit_plan import (
    PLAN_KIND,
    applied_credit_row,
    memo_amount,
    plan_partial_credit,
    request_from_plan,
)
from paynb.plan import Plan, check_fresh
from paynb.timez import PACIFIC, utcnow_naive

if TYPE_CHECKING:
    from paynb.cfs import CfsClient
    from paynb.context import Env
    from paynb.fixes import FixRun

LOCK_NAMESPACE = 0x50414443  # "PADC": advisory locks of this flow, keyed (namespace, invoice id)
STEPS = ("before_intent", "after_intent", "after_post", "before_db", "mid_db", "after_commit", "after_done")

FaultHook = Callable[[str], None]


class CreditNotVerified(PaynbError):
    """Re-reading CFS and pay-db after the apply found a difference from the plan."""

    hint = "do not post anything by hand; compare CFS and pay-db for the key (paynb pad credit verify)"


class CreditOutcomeUnknown(PaynbError):
    """The memo is in CFS but pay-db failed while its rows were written: committed or not is unknown."""

    hint = "re-run the same apply when pay-db is back: it finds the rows by key, or writes them once"


# -- result ---------------------------------------------------------------------------------------------------
@dataclass
class ApplyResult:
    """What an apply did and what pay-db and CFS hold afterwards."""

    outcome: str  # applied | resumed | already_applied
    message: str
    idempotency_key: str
    plan_sha256: str
    run_id: str
    invoice_id: int
    credit_memo_number: str | None = None
    credit_id: int | None = None
    refund_id: int | None = None
    refunds_partial_ids: list[int] = field(default_factory=list)
    rows_affected: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)
    cfs_memo: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    #: why verification could not run (pay-db or CFS unreachable after the commit), and what to run next
    unverified_reason: str = ""
    next_step: str = ""
    #: what the writes left (row ids, versions, amounts before), for verification
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def no_op(self) -> bool:
        return self.outcome == "already_applied"

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApplyResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_frame(self) -> pd.DataFrame:
        """Before/after values, one row per changed value."""
        return pd.DataFrame(self.changes, columns=["where", "row", "column", "before", "after"])


def invoice_lock(engine: Engine, invoice_id: int, wait_s: float = 30.0) -> AbstractContextManager[None]:
    """A session advisory lock on (this flow, invoice) held until the block ends. Waits up to ``wait_s``.
    A killed process loses its connection, and PostgreSQL releases the lock with it."""
    busy = PlanError(f"another apply for invoice {invoice_id} holds the lock; try again when it has finished")
    return db.advisory_lock(engine, LOCK_NAMESPACE, invoice_id, wait_s=wait_s, busy=busy)


def _stamped_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The planned payload plus the dates CFS needs, Pacific local time as sbc-pay formats it."""
    now = datetime.now(PACIFIC).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = dict(body["cfs"]["credit_memo"]["payload"])
    return {**payload, "transaction_date": now, "gl_date": now}


def _site(body: dict[str, Any]) -> tuple[str, str, str]:
    c = body["cfs"]
    return c["party"], c["account"], c["site"]


def find_memo(cfs: CfsClient, body: dict[str, Any]) -> dict[str, Any] | None:
    """The CFS memo carrying this plan's key, or None. More than one is refused (reconcile by hand)."""
    key = body["idempotency_key"]
    found = cfs.find_credit_memos(*_site(body), comment_contains=key)
    if len(found) > 1:
        numbers = ", ".join(str(m.get("credit_memo_number")) for m in found)
        raise PlanError(f"CFS holds {len(found)} credit memos carrying {key} ({numbers}); reconcile by hand")
    return found[0] if found else None


def check_consistent(plan: Plan) -> None:
    """Refuse a plan whose parts disagree (a hand-edited file): the key must be the request's, and every
    amount must add up to the credit total. Runs before anything else, so even a resume (which does not
    re-plan once the memo exists) never writes rows a real plan would not have."""
    if plan.kind != PLAN_KIND:
        raise PlanError(f"this is a {plan.kind!r} plan, not a {PLAN_KIND!r} plan")
    try:
        body = plan.body
        total = money(body["credit"]["total"])
        db_ = body["pay_db"]
        parts = sum((money(r["refund_amount"]) for r in db_["refunds_partial"]["insert"]), ZERO)
        parts += sum((money(g["amount"]) for g in body["credit"]["gst"]), ZERO)
        memo = -sum(
            (
                money(ln["unit_price"]) * int(ln["quantity"])
                for ln in body["cfs"]["credit_memo"]["payload"]["lines"]
            ),
            ZERO,
        )
        pad = db_["payment_accounts"]["pad_credit"]
        refund = db_["invoices"]["refund"]
        params = body["params"]
        checks = {
            "idempotency_key": request_from_plan(plan).key == body["idempotency_key"],
            "params": int(params["invoice_id"]) == int(body["invoice"]["id"])
            and params["ticket"] == body["ticket"]
            and params["requested_by"] == body["requested_by"],
            "refunds_partial": parts == total,
            "credit memo lines": memo == total,
            "credits.amount": money(db_["credits"]["insert"]["amount"]) == total,
            "pad_credit": money(pad["after"]) == money(pad["before"]) + total,
            "invoices.refund": money(refund["after"]) == money(refund["before"]) + total,
            "invoice": int(db_["invoices"]["id"]) == int(body["invoice"]["id"]),
        }
    except (KeyError, TypeError, ValueError, ArithmeticError) as err:
        raise PlanError(f"the plan is incomplete or malformed ({type(err).__name__}: {err})") from None
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise PlanError(f"the plan does not add up ({', '.join(bad)}); was it edited? Make a new plan")


def credit_started(env: Env, plan: Plan) -> str | None:
    """Why this plan's credit is already under way (an earlier apply got past the post), or None.

    pay-db holds its rows, the ledger marks it sent/confirmed, or CFS holds a memo carrying its key. Such a
    credit is not re-planned before it is resumed: the data it was planned on has moved because of it."""
    body = plan.body
    key = body["idempotency_key"]
    with env.read() as conn:
        if applied_credit_row(conn, int(body["invoice"]["id"]), key) is not None:
            return "pay-db holds its rows"
    intent = intents.get_intent(key, settings=env.settings)
    if intent is not None and intent.state in (intents.SENT, intents.CONFIRMED):
        return f"the ledger marks it {intent.state}"
    if find_memo(env.cfs, body) is not None:
        return "CFS holds its memo"
    return None


# -- apply ----------------------------------------------------------------------------------------------------
def execute_credit(env: Env, plan: Plan, run: FixRun) -> ApplyResult:
    """Do the writes of a confirmed plan (the fix's ``execute``). Safe to call again at any point.

    ``env.overrides`` may hold ``faults`` (tests: a hook given each step name; raising simulates a crash)
    and ``lock_wait_s``."""
    check_consistent(plan)
    faults = env.overrides.get("faults")
    wait = float(env.overrides.get("lock_wait_s") or 30.0)
    with invoice_lock(env.write_engine, int(plan.body["invoice"]["id"]), wait):
        return _Apply(env, plan, run, faults).run()


class _Apply:
    """One apply, step by step (see the module docstring of :mod:`paynb.ops.pad.credit`)."""

    def __init__(self, env: Env, plan: Plan, run: FixRun, faults: FaultHook | None) -> None:
        self.env = env
        self.plan = plan
        self.body = plan.body
        self.key: str = self.body["idempotency_key"]
        self.invoice_id = int(self.body["invoice"]["id"])
        self.settings = env.settings
        self.cfs = env.cfs
        self.run_ = run
        self.run_id = run.apply_id
        self.faults = faults
        self.steps: list[str] = []

    def hook(self, step: str) -> None:
        if self.faults is not None:
            self.faults(step)

    def result(self, outcome: str, message: str, evidence: dict[str, Any], wrote: int) -> ApplyResult:
        return ApplyResult(
            outcome=outcome,
            message=message,
            idempotency_key=self.key,
            plan_sha256=self.plan.sha256,
            run_id=self.run_id,
            invoice_id=self.invoice_id,
            credit_memo_number=evidence.get("credit_memo_number"),
            credit_id=evidence.get("credit_id"),
            refund_id=evidence.get("refund_id"),
            refunds_partial_ids=list(evidence.get("refunds_partial_ids") or []),
            rows_affected=wrote,
            steps=self.steps,
            evidence=dict(evidence),
        )

    def run(self) -> ApplyResult:
        intent = self.run_.get_intent(self.key)
        if intent is not None and intent.state == intents.CONFIRMED:
            self.steps.append("ledger: already confirmed")
            return self.result(
                "already_applied",
                f"already applied (key {self.key}); nothing was changed",
                intent.evidence,
                0,
            )
        if intent is not None and intent.state not in intents.UNFINISHED:
            raise PlanError(
                f"the ledger marks the credit {self.key} as {intent.state}; it will not be retried under this key",
                hint="check CFS and pay-db for it; for a new attempt use a new ticket",
            )
        with self.env.read() as conn:
            marker = applied_credit_row(conn, self.invoice_id, self.key)
        if marker is not None:
            evidence = self._evidence_from_db(marker)
            self._ensure_intent()
            self.run_.mark(self.key, intents.CONFIRMED, found_in_pay_db=True, **evidence)
            self.steps.append("pay-db: already committed; ledger marked confirmed")
            return self.result(
                "resumed",
                "pay-db already held this credit (an earlier run stopped after its "
                "commit); the ledger is now up to date",
                evidence,
                0,
            )
        memo_number = self._known_memo(intent)
        resumed = memo_number is not None
        if memo_number is None:
            memo_number = self._post()
        self.hook("before_db")
        try:
            evidence, wrote = self._write_db(memo_number)
        except DatabaseError as err:
            raise CreditOutcomeUnknown(
                f"credit memo {memo_number} is posted in CFS (key {self.key}), but pay-db failed while its rows "
                f"were written ({err.args[0] if err.args else err}); whether they were committed is unknown"
            ) from None
        self.hook("after_commit")
        self.run_.mark(self.key, intents.CONFIRMED, **evidence)
        self.steps.append("ledger: confirmed")
        self.hook("after_done")
        if wrote == 0:
            return self.result("resumed", "pay-db already held this credit; nothing was written", evidence, 0)
        if resumed:
            msg = (
                f"resumed: credit memo {memo_number} was already in CFS; wrote the pay-db rows ({wrote} rows)"
            )
            return self.result("resumed", msg, evidence, wrote)
        return self.result(
            "applied", f"applied: credit memo {memo_number}, {wrote} pay-db rows", evidence, wrote
        )

    # -- steps --------------------------------------------------------------------------------------------
    def _ensure_intent(self) -> None:
        """Record the intent. Its payload holds only what the key is made of, so every run of the same
        credit records the same payload; run-specific facts go into the evidence."""
        req = request_from_plan(self.plan)
        payload = {
            "kind": PLAN_KIND,
            "invoice_id": self.invoice_id,
            "request": req.to_dict(),
            "ticket": req.ticket,
        }
        self.run_.intent(self.key, to_jsonable(payload))

    def _note_intent(self) -> None:
        """The reconciliation note and this run's plan (so `paynb pad credit resume --key` can finish it),
        in the ledger before the memo is posted."""
        self.run_.mark(
            self.key,
            intents.PENDING,
            note=self.body["ledger_note"],
            plan_sha256=self.plan.sha256,
            amount=self.body["credit"]["total"],
            cfs_site="/".join(_site(self.body)),
            plan=self.plan.to_dict(),
        )

    def _known_memo(self, intent: intents.Intent | None) -> str | None:
        """The memo of an earlier run: from the ledger, else from CFS (searched by key)."""
        number = intent.evidence.get("credit_memo_number") if intent is not None else None
        memo = None
        if number:
            memo = self.cfs.get_credit_memo(*_site(self.body), str(number))
        else:
            memo = find_memo(self.cfs, self.body)
        if memo is None:
            return None
        number = str(memo.get("credit_memo_number"))
        amount = memo_amount(memo)
        planned = money(self.body["credit"]["total"])
        if amount != planned:
            raise PlanError(
                f"credit memo {number} carries key {self.key} but is for {amount}, not {planned}; reconcile by hand"
            )
        self._ensure_intent()
        self.run_.mark(self.key, intents.SENT, credit_memo_number=number, found_in_cfs=True)
        self.steps.append(f"cfs: memo {number} already posted; resuming with the pay-db step")
        self._note_committed(number)
        return number

    def _note_committed(self, number: str) -> None:
        """The memo is in CFS for good: if the apply fails from here on, apply_fix says so and what to run."""
        self.run_.committed(
            f"CFS credit memo {number} (key {self.key}, {self.body['credit']['total']}) on invoice {self.invoice_id}",
            next_step=(
                "re-run the same apply (paynb pad credit apply --plan FILE --confirm SHA, or paynb pad credit "
                f"resume --key {self.key} --confirm {self.plan.sha256}): it finds the memo by key and writes "
                "the pay-db rows once; never post a memo by hand"
            ),
            credit_memo_number=number,
        )

    def _post(self) -> str:
        # under the invoice lock: the authoritative re-plan (other credits, intents and CFS memos of the invoice)
        fresh = plan_partial_credit(**self.body["params"], env=self.env)
        check_fresh(self.plan, fresh)
        self.steps.append("re-planned: unchanged")
        self.hook("before_intent")
        self._ensure_intent()
        self._note_intent()
        self.steps.append("ledger: intent recorded")
        self.hook("after_intent")
        answer = self.cfs.create_credit_memo(
            *_site(self.body), _stamped_payload(self.body), idempotency_key=self.key
        )
        number = answer.get("credit_memo_number")
        if not number:
            raise CfsError(
                "POST …/cms/ answered without a credit_memo_number; look for the key in CFS before retrying"
            )
        number = str(number)
        self.steps.append(
            f"cfs: memo {number} posted" + (" (lost answer recovered)" if answer.get("_recovered") else "")
        )
        self._note_committed(number)
        self.hook("after_post")
        self.run_.mark(self.key, intents.SENT, credit_memo_number=number)
        return number

    def _evidence_from_db(self, marker: dict[str, Any]) -> dict[str, Any]:
        return committed_evidence(self.env, self.invoice_id, self.key, marker)

    def _write_db(self, memo_number: str) -> tuple[dict[str, Any], int]:
        body = self.body
        now = utcnow_naive()
        stamp = f"paynb:{self.run_id}"[:50]
        with self.run_.transaction() as conn:
            inv = db.fetch_one(
                conn,
                "SELECT invoice_status_code, refund FROM invoices WHERE id = :id FOR UPDATE",
                {"id": self.invoice_id},
            )
            marker = applied_credit_row(conn, self.invoice_id, self.key)
            if marker is not None:  # another run committed while we waited for the row
                self.steps.append("pay-db: already committed by another run")
                return committed_evidence(self.env, self.invoice_id, self.key, marker, conn=conn), 0
            self._guard(conn, inv, memo_number)
            total = money(body["credit"]["total"])
            account_id = body["pay_db"]["payment_accounts"]["id"]
            acct = db.fetch_one(
                conn,
                "SELECT pad_credit, version FROM payment_accounts WHERE id = :id FOR UPDATE",
                {"id": account_id},
            )
            if acct is None:
                raise StalePlanError(
                    f"payment account {account_id} is gone; memo {memo_number} is posted — reconcile by hand"
                )
            refund_id = self._insert_refund(conn, now)
            ins = body["pay_db"]["credits"]["insert"]
            credit_id = conn.execute(
                sa.text(
                    "INSERT INTO credits (cfs_identifier, is_credit_memo, amount, remaining_amount, account_id, "
                    "details, created_on, cfs_site, created_invoice_id) VALUES (:cm, true, :amt, :amt, :acct, "
                    ":details, :now, :site, :inv) RETURNING id"
                ),
                {
                    "cm": memo_number,
                    "amt": total,
                    "acct": account_id,
                    "details": ins["details"],
                    "now": now,
                    "site": ins["cfs_site"],
                    "inv": self.invoice_id,
                },
            ).scalar_one()
            history = write_account_history(conn, account_id, now)
            n = conn.execute(
                sa.text(
                    "UPDATE payment_accounts SET pad_credit = COALESCE(pad_credit, 0) + :amt, "
                    "version = version + 1 WHERE id = :id"
                ),
                {"amt": total, "id": account_id},
            ).rowcount
            self.hook("mid_db")
            rp_ids = []
            for row in body["pay_db"]["refunds_partial"]["insert"]:
                rp_ids.append(
                    conn.execute(
                        sa.text(
                            "INSERT INTO refunds_partial (payment_line_item_id, invoice_id, refund_type, refund_amount, "
                            "created_on, created_by, created_name, status, is_credit, refund_id) VALUES (:pli, :inv, "
                            ":rtype, :amt, :now, :by, :name, :status, true, :refund) RETURNING id"
                        ),
                        {
                            "pli": row["payment_line_item_id"],
                            "inv": self.invoice_id,
                            "rtype": row["refund_type"],
                            "amt": money(row["refund_amount"]),
                            "now": now,
                            "by": stamp,
                            "name": f"paynb {body['ticket']}"[:100],
                            "status": row["status"],
                            "refund": refund_id,
                        },
                    ).scalar_one()
                )
            change = body["pay_db"]["invoices"]
            n += conn.execute(
                sa.text(
                    "UPDATE invoices SET refund = :refund, refund_date = :now, invoice_status_code = :status, "
                    "updated_on = :now, updated_by = :by WHERE id = :id AND invoice_status_code = :before"
                ),
                {
                    "refund": money(change["refund"]["after"]),
                    "now": now,
                    "status": change["invoice_status_code"]["after"],
                    "by": stamp,
                    "id": self.invoice_id,
                    "before": change["invoice_status_code"]["before"],
                },
            ).rowcount
            if n != 2:
                raise StalePlanError(f"expected 2 updated rows (account, invoice), got {n}; rolled back")
        wrote = 2 + 2 + len(rp_ids) + history
        self.steps.append(f"pay-db: committed {wrote} rows")
        evidence = {
            "credit_memo_number": memo_number,
            "credit_id": int(credit_id),
            "refund_id": int(refund_id),
            "refunds_partial_ids": [int(i) for i in rp_ids],
            "pad_credit_before": None if acct["pad_credit"] is None else money(acct["pad_credit"]),
            "account_version_before": int(acct["version"]),
            "committed_at": now,
        }
        return evidence, wrote

    def _insert_refund(self, conn: Connection, now: datetime) -> int:
        """The ``refunds`` row sbc-pay's refund API writes for the request (docs/pad-credit.md)."""
        r = self.body["pay_db"]["refunds"]["insert"]
        approved = r["decision_made_by"] is not None
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO refunds (invoice_id, type, status, requested_by, requested_date, reason, "
                    "staff_comment, decision_made_by, decision_date) VALUES (:inv, :type, :status, :by, :now, "
                    ":reason, :comment, :decided_by, :decided_on) RETURNING id"
                ),
                {
                    "inv": self.invoice_id,
                    "type": r["type"],
                    "status": r["status"],
                    "by": r["requested_by"][:50],
                    "now": now,
                    "reason": r["reason"],
                    "comment": r["staff_comment"],
                    "decided_by": self.env.operator[:50] if approved else None,
                    "decided_on": now if approved else None,
                },
            ).scalar_one()
        )

    def _guard(self, conn: Connection, inv: dict[str, Any] | None, memo_number: str) -> None:
        """Inside the transaction: the rows the credit builds on are still as planned."""
        body = self.body
        posted = (
            f"credit memo {memo_number} is posted in CFS; pay-db changed since the plan — reconcile by hand"
        )
        if inv is None:
            raise StalePlanError(f"invoice {self.invoice_id} is gone; {posted}")
        planned = body["invoice"]
        if inv["invoice_status_code"] != planned["status"]:
            raise StalePlanError(
                f"invoice status is {inv['invoice_status_code']}, planned {planned['status']}; {posted}"
            )
        if money(inv["refund"]) != money(planned["refund"]):
            raise StalePlanError(
                f"invoices.refund is {money(inv['refund'])}, planned {money(planned['refund'])}; {posted}"
            )
        credited: dict[tuple[int, bool], Decimal] = {}
        for r in db.fetch_all(
            conn,
            "SELECT payment_line_item_id AS pli, (refund_type = 'SERVICE_FEES') AS svc, SUM(refund_amount) AS amt "
            "FROM refunds_partial WHERE invoice_id = :inv AND (status IS NULL OR status <> :declined) GROUP BY 1, 2",
            {"inv": self.invoice_id, "declined": RefundsPartialStatus.REFUND_DECLINED.value},
        ):
            credited[(int(r["pli"]), bool(r["svc"]))] = money(r["amt"])
        for row in body["credit"]["lines"]:
            k = (int(row["payment_line_item_id"]), row["refund_type"] == "SERVICE_FEES")
            if credited.get(k, ZERO) != money(row["credited_before"]):
                raise StalePlanError(
                    f"line item {k[0]} has {credited.get(k, ZERO)} credited, planned {row['credited_before']}; {posted}"
                )


def write_account_history(conn: Connection, account_id: int, now: datetime) -> int:
    """What sql_versioning writes before an update of a versioned row: the row as it is now, with its
    current ``version``, into ``payment_accounts_history`` (``changed`` = now, UTC). The caller then bumps
    ``version``. Returns the rows written (0 on a pay-db without the history table)."""
    cols = db.table_columns(conn, "payment_accounts") & db.table_columns(conn, "payment_accounts_history")
    cols.discard("changed")
    if not cols:
        return 0
    names = ", ".join(f'"{c}"' for c in sorted(cols))
    return conn.execute(
        sa.text(
            f"INSERT INTO payment_accounts_history ({names}, changed) "  # noqa: S608 - names from the catalogue
            f"SELECT {names}, :now FROM payment_accounts WHERE id = :id"
        ),
        {"now": now, "id": account_id},
    ).rowcount


def committed_evidence(
    env: Env, invoice_id: int, key: str, marker: dict[str, Any], *, conn: Connection | None = None
) -> dict[str, Any]:
    """What pay-db holds for a committed credit: its credits, refunds and refunds_partial rows."""

    def read(c: Connection) -> dict[str, Any]:
        refund = db.fetch_one(
            c,
            "SELECT id FROM refunds WHERE invoice_id = :inv AND staff_comment = :k ORDER BY id LIMIT 1",
            {"inv": invoice_id, "k": f"paynb:{key}"},
        )
        if refund is not None:
            rows = db.fetch_all(
                c, "SELECT id FROM refunds_partial WHERE refund_id = :r ORDER BY id", {"r": refund["id"]}
            )
        else:  # rows written before paynb wrote a refunds row
            rows = db.fetch_all(
                c,
                "SELECT id FROM refunds_partial WHERE invoice_id = :inv AND created_on = :at AND is_credit ORDER BY id",
                {"inv": invoice_id, "at": marker["created_on"]},
            )
        return {
            "credit_memo_number": marker["cfs_identifier"],
            "credit_id": int(marker["id"]),
            "refund_id": int(refund["id"]) if refund else None,
            "refunds_partial_ids": [int(r["id"]) for r in rows],
            "committed_at": marker["created_on"],
        }

    if conn is not None:
        return read(conn)
    with env.read() as c:
        return read(c)


# -- verify ---------------------------------------------------------------------------------------------------
def verify_credit(env: Env, plan: Plan, res: ApplyResult) -> None:
    """Re-read CFS and pay-db; fill ``res.changes`` (before from the plan, after = now) and ``res.problems``.

    When pay-db or CFS cannot be reached (after the commit), says so in ``res.unverified_reason`` and
    ``res.next_step`` instead of raising: the credit is done, only the check is missing."""
    try:
        _verify(env, plan, res, res.evidence)
    except (DatabaseError, CfsError) as err:
        res.verified = False
        res.unverified_reason = f"{type(err).__name__}: {err.args[0] if err.args else err}"
        res.next_step = "paynb pad credit verify --plan <the plan file>"
        done = (
            f"The credit is DONE: CFS credit memo {res.credit_memo_number}; pay-db committed credits "
            f"{res.credit_id}, refunds {res.refund_id}, refunds_partial {res.refunds_partial_ids}"
        )
        res.message = (
            f"{res.message}. {done}. It could not be verified: {res.unverified_reason}. Next, when it is "
            f"reachable again: {res.next_step} (do not apply anything by hand)"
        )


def _verify(env: Env, plan: Plan, res: ApplyResult, evidence: dict[str, Any]) -> None:
    body = plan.body
    problems: list[str] = []
    total = money(body["credit"]["total"])
    key = body["idempotency_key"]
    inv_id = int(body["invoice"]["id"])
    memo_number = res.credit_memo_number
    memos = env.cfs.find_credit_memos(*_site(body), comment_contains=key)
    if len(memos) != 1:
        problems.append(f"CFS holds {len(memos)} credit memos carrying {key}, expected 1")
    memo = memos[0] if memos else {}
    if memo_number and memo and str(memo.get("credit_memo_number")) != str(memo_number):
        problems.append(
            f"CFS memo {memo.get('credit_memo_number')} carries the key; pay-db names {memo_number}"
        )
    if memo and memo_amount(memo) != total:
        problems.append(f"CFS memo amount is {memo_amount(memo)}, planned {total}")
    res.cfs_memo = {
        k: memo.get(k) for k in ("credit_memo_number", "total", "amount_due", "comments") if k in memo
    }
    with env.read() as conn:
        credits = db.fetch_all(
            conn,
            "SELECT id, cfs_identifier, amount FROM credits WHERE created_invoice_id = :inv AND details LIKE :p",
            {"inv": inv_id, "p": f"paynb:{key}%"},
        )
        rp = db.fetch_all(
            conn,
            "SELECT id, payment_line_item_id, refund_type, refund_amount, refund_id FROM refunds_partial "
            "WHERE id = ANY(:ids)",
            {"ids": res.refunds_partial_ids or [-1]},
        )
        refund = db.fetch_one(
            conn,
            "SELECT id, type, status, requested_by, reason FROM refunds WHERE invoice_id = :inv "
            "AND staff_comment = :k",
            {"inv": inv_id, "k": f"paynb:{key}"},
        )
        inv = db.fetch_one(
            conn,
            "SELECT invoice_status_code, refund, refund_date FROM invoices WHERE id = :id",
            {"id": inv_id},
        )
        account_id = body["pay_db"]["payment_accounts"]["id"]
        acct = db.fetch_one(
            conn, "SELECT pad_credit, version FROM payment_accounts WHERE id = :id", {"id": account_id}
        )
        version_before = evidence.get("account_version_before")
        history = None
        if version_before is not None:
            history = db.fetch_one(
                conn,
                "SELECT count(*) AS n FROM payment_accounts_history WHERE id = :id AND version = :v",
                {"id": account_id, "v": version_before},
            )
    if len(credits) != 1:
        problems.append(f"pay-db holds {len(credits)} credits rows carrying {key}, expected 1")
    elif money(credits[0]["amount"]) != total:
        problems.append(f"credits {credits[0]['id']} amount is {credits[0]['amount']}, planned {total}")
    elif memo_number and str(credits[0]["cfs_identifier"]) != str(memo_number):
        problems.append(
            f"credits {credits[0]['id']} names memo {credits[0]['cfs_identifier']}, not {memo_number}"
        )
    planned_rp = sorted(
        (int(r["payment_line_item_id"]), r["refund_type"], money(r["refund_amount"]))
        for r in body["pay_db"]["refunds_partial"]["insert"]
    )
    found_rp = sorted(
        (int(r["payment_line_item_id"]), r["refund_type"], money(r["refund_amount"])) for r in rp
    )
    if planned_rp != found_rp:
        problems.append(f"refunds_partial rows {found_rp} differ from the plan {planned_rp}")
    if refund is not None:
        planned_refund = body["pay_db"]["refunds"]["insert"]
        if (refund["type"], refund["status"]) != (planned_refund["type"], planned_refund["status"]):
            problems.append(
                f"refunds {refund['id']} is {refund['type']}/{refund['status']}, planned "
                f"{planned_refund['type']}/{planned_refund['status']}"
            )
        if any(r["refund_id"] != refund["id"] for r in rp):
            problems.append(f"refunds_partial rows do not all link to refunds {refund['id']}")
    elif evidence.get("refund_id") is not None:
        problems.append(f"refunds {evidence['refund_id']} is missing")
    if history is not None and int(history["n"]) != 1:
        problems.append(
            f"payment_accounts_history holds {history['n']} rows for account {account_id} version {version_before}"
        )
    change = body["pay_db"]["invoices"]
    pad_before = evidence.get("pad_credit_before", body["pay_db"]["payment_accounts"]["pad_credit"]["before"])
    res.changes = [
        {
            "where": "CFS credit memo",
            "row": "/".join(_site(body)),
            "column": "credit_memo_number",
            "before": None,
            "after": memo.get("credit_memo_number"),
        },
        {
            "where": "CFS credit memo",
            "row": memo.get("credit_memo_number"),
            "column": "amount_due",
            "before": None,
            "after": memo.get("amount_due"),
        },
        {
            "where": "refunds",
            "row": refund["id"] if refund else None,
            "column": "type / status",
            "before": None,
            "after": f"{refund['type']} / {refund['status']}" if refund else None,
        },
        {
            "where": "credits",
            "row": res.credit_id,
            "column": "amount",
            "before": None,
            "after": money(credits[0]["amount"]) if credits else None,
        },
        {
            "where": "payment_accounts",
            "row": account_id,
            "column": "pad_credit",
            "before": pad_before,
            "after": acct["pad_credit"] if acct else None,
        },
        {
            "where": "payment_accounts",
            "row": account_id,
            "column": "version",
            "before": version_before,
            "after": acct["version"] if acct else None,
        },
        *[
            {
                "where": "refunds_partial",
                "row": r["id"],
                "column": f"{r['refund_type']} of line {r['payment_line_item_id']}",
                "before": None,
                "after": r["refund_amount"],
            }
            for r in sorted(rp, key=lambda r: r["id"])
        ],
        {
            "where": "invoices",
            "row": inv_id,
            "column": "refund",
            "before": change["refund"]["before"],
            "after": inv["refund"] if inv else None,
        },
        {
            "where": "invoices",
            "row": inv_id,
            "column": "refund_date",
            "before": change["refund_date"]["before"],
            "after": inv["refund_date"] if inv else None,
        },
        {
            "where": "invoices",
            "row": inv_id,
            "column": "invoice_status_code",
            "before": change["invoice_status_code"]["before"],
            "after": inv["invoice_status_code"] if inv else None,
        },
    ]
    if res.outcome != "already_applied" and inv is not None:
        # right after this credit the invoice must be exactly as planned (later credits may move it on)
        if money(inv["refund"]) != money(change["refund"]["after"]):
            problems.append(f"invoices.refund is {money(inv['refund'])}, planned {change['refund']['after']}")
        if inv["invoice_status_code"] != change["invoice_status_code"]["after"]:
            problems.append(
                f"invoice status is {inv['invoice_status_code']}, planned {change['invoice_status_code']['after']}"
            )
    res.problems = problems
    res.verified = not problems


def applied_evidence(
    key: str, invoice_id: int, *, env: Env | None = None, **legacy: Any
) -> dict[str, Any] | None:
    """What an applied credit with ``key`` left (ledger first, then pay-db), or None."""
    from paynb.context import resolve_env

    env = resolve_env(env, **legacy)
    intent = intents.get_intent(key, settings=env.settings)
    if intent is not None and intent.state == intents.CONFIRMED:
        return intent.evidence
    with env.read() as conn:
        marker = applied_credit_row(conn, invoice_id, key)
    if marker is None:
        return None
    return {
        "credit_id": marker["id"],
        "credit_memo_number": marker["cfs_identifier"],
        "amount": money(marker["amount"]),
    }
