"""Applying a PAD credit plan exactly once: the state machine described in :mod:`paynb.ops.pad.credit`
(advisory lock, ledger intent, CFS look-up by key, post, one pay-db transaction, verify)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paynb import db
from paynb.canonical import to_jsonable
from paynb.cfs import CfsClient
from paynb.enums import RefundsPartialStatus
from paynb.errors import CfsError, PlanError, StalePlanError
from paynb.ids import new_run_id
from paynb.ops.pad import intents
from paynb.ops.pad.credit_lines import ZERO, money
from paynb.ops.pad.credit_plan import (
    PLAN_KIND,
    applied_credit_row,
    plan_partial_credit,
    request_from_plan,
)
from paynb.plan import Plan, check_confirm, check_fresh
from paynb.settings import Settings, get_settings
from paynb.timez import PACIFIC, utcnow_naive

LOCK_NAMESPACE = 0x50414443  # "PADC": advisory locks of this flow, keyed (namespace, invoice id)
STEPS = ("before_intent", "after_intent", "after_post", "before_db", "mid_db", "after_commit", "after_done")

FaultHook = Callable[[str], None]


# -- apply ----------------------------------------------------------------------------------------------------
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
    refunds_partial_ids: list[int] = field(default_factory=list)
    rows_affected: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)
    cfs_memo: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    verified: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def no_op(self) -> bool:
        return self.outcome == "already_applied"

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})

    def to_frame(self) -> pd.DataFrame:
        """Before/after values, one row per changed value."""
        return pd.DataFrame(self.changes, columns=["where", "row", "column", "before", "after"])


@contextmanager
def invoice_lock(engine: Engine, invoice_id: int, wait_s: float = 30.0) -> Iterator[None]:
    """A session advisory lock on (this flow, invoice) held until the block ends. Waits up to ``wait_s``.
    A killed process loses its connection, and PostgreSQL releases the lock with it."""
    conn = engine.connect()
    got = False
    try:
        deadline = time.monotonic() + wait_s
        while True:
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:ns, :id)"),
                                    {"ns": LOCK_NAMESPACE, "id": invoice_id}).scalar())  # fmt: skip
            conn.commit()  # a session lock outlives the transaction; don't sit idle in one
            if got:
                break
            if time.monotonic() >= deadline:
                raise PlanError(
                    f"another apply for invoice {invoice_id} holds the lock; try again when it has finished"
                )
            time.sleep(0.05)
        yield
    except sa.exc.DBAPIError as err:
        raise db.translate_error(err, engine) from None
    finally:
        try:
            if got:
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": LOCK_NAMESPACE, "id": invoice_id}
                )
                conn.commit()
        except Exception:
            conn.invalidate()  # closing the session releases the lock
        finally:
            conn.close()


def _stamped_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The planned payload plus the dates CFS needs, Pacific local time as sbc-pay formats it."""
    now = datetime.now(PACIFIC).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = dict(body["cfs"]["credit_memo"]["payload"])
    return {**payload, "transaction_date": now, "gl_date": now}


def _site(body: dict[str, Any]) -> tuple[str, str, str]:
    c = body["cfs"]
    return c["party"], c["account"], c["site"]


def _memo_amount(memo: dict[str, Any]) -> Decimal | None:
    total = memo.get("total")
    if total is None:
        lines = memo.get("lines") or []
        try:
            total = sum((money(ln.get("unit_price")) * int(ln.get("quantity", 1)) for ln in lines), ZERO)
        except (TypeError, ValueError):
            return None
    return abs(money(total))


def _find_memo(cfs: CfsClient, body: dict[str, Any]) -> dict[str, Any] | None:
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
        memo = -sum((money(ln["unit_price"]) * int(ln["quantity"]) for ln in
                     body["cfs"]["credit_memo"]["payload"]["lines"]), ZERO)  # fmt: skip
        pad = db_["payment_accounts"]["pad_credit"]
        refund = db_["invoices"]["refund"]
        checks = {
            "idempotency_key": request_from_plan(plan).key == body["idempotency_key"],
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


def apply_partial_credit(
    plan: Plan,
    confirm: str,
    *,
    settings: Settings | None = None,
    engine: Engine | None = None,
    cfs: CfsClient | None = None,
    run_id: str | None = None,
    faults: FaultHook | None = None,
    lock_wait_s: float = 30.0,
) -> ApplyResult:
    """Apply a reviewed plan: post the credit memo at most once and write pay-db in one transaction.

    Refuses (nothing changed) on a wrong ``confirm`` or when re-planning gives a different plan. Safe to
    re-run at any point: see the state machine in the module docstring.
    """
    check_confirm(plan, confirm)
    check_consistent(plan)
    settings = settings or get_settings()
    if run_id is None:
        current = db.current_run_id()
        run_id = current if current != "adhoc" else new_run_id()
    # the writer role's engine (its application_name carries the job's run id); this apply's id is
    # stamped by write_transaction
    engine = engine or db.create_write_engine(settings)
    owned = cfs is None
    client = cfs or CfsClient(settings)
    try:
        with invoice_lock(engine, int(plan.body["invoice"]["id"]), lock_wait_s):
            return _Apply(plan, settings, engine, client, run_id, faults).run()
    finally:
        if owned:
            client.close()


class _Apply:
    """One apply, step by step (see the module docstring)."""

    def __init__(self, plan: Plan, settings: Settings, engine: Engine, cfs: CfsClient, run_id: str,
                 faults: FaultHook | None) -> None:  # fmt: skip
        self.plan = plan
        self.body = plan.body
        self.key: str = self.body["idempotency_key"]
        self.invoice_id = int(self.body["invoice"]["id"])
        self.settings = settings
        self.engine = engine
        self.cfs = cfs
        self.run_id = run_id
        self.faults = faults
        self.steps: list[str] = []

    def hook(self, step: str) -> None:
        if self.faults is not None:
            self.faults(step)

    def result(self, outcome: str, message: str, evidence: dict[str, Any], wrote: int) -> ApplyResult:
        res = ApplyResult(
            outcome=outcome,
            message=message,
            idempotency_key=self.key,
            plan_sha256=self.plan.sha256,
            run_id=self.run_id,
            invoice_id=self.invoice_id,
            credit_memo_number=evidence.get("credit_memo_number"),
            credit_id=evidence.get("credit_id"),
            refunds_partial_ids=list(evidence.get("refunds_partial_ids") or []),
            rows_affected=wrote,
            steps=self.steps,
        )
        _verify(res, self.body, evidence, self.engine, self.cfs)
        return res

    def run(self) -> ApplyResult:
        intent = intents.get_intent(self.key, settings=self.settings)
        if intent is not None and intent.state == intents.CONFIRMED:
            self.steps.append("ledger: already confirmed")
            return self.result("already_applied", f"already applied (key {self.key}); nothing was changed",
                               intent.evidence, 0)  # fmt: skip
        if intent is not None and intent.state not in (intents.PENDING, intents.SENT):
            raise PlanError(
                f"the ledger marks the credit {self.key} as {intent.state}; it will not be retried under this key",
                hint="check CFS and pay-db for it; for a new attempt use a new ticket",
            )
        with db.read_connection(self.engine) as conn:
            marker = applied_credit_row(conn, self.invoice_id, self.key)
        if marker is not None:
            evidence = self._evidence_from_db(marker)
            self._ensure_intent()
            intents.mark_intent(
                self.key, intents.CONFIRMED, settings=self.settings, found_in_pay_db=True, **evidence
            )
            self.steps.append("pay-db: already committed; ledger marked confirmed")
            return self.result("resumed", "pay-db already held this credit (an earlier run stopped after its "
                               "commit); the ledger is now up to date", evidence, 0)  # fmt: skip
        memo_number = self._known_memo(intent)
        resumed = memo_number is not None
        if memo_number is None:
            memo_number = self._post()
        self.hook("before_db")
        evidence, wrote = self._write_db(memo_number)
        self.hook("after_commit")
        intents.mark_intent(
            self.key, intents.CONFIRMED, settings=self.settings, run_id=self.run_id, **evidence
        )
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
        intents.record_intent(self.key, to_jsonable(payload), settings=self.settings, run_id=self.run_id)

    def _note_intent(self) -> None:
        """The reconciliation note and this run's plan, in the ledger before the memo is posted."""
        intents.mark_intent(
            self.key, intents.PENDING, settings=self.settings, note=self.body["ledger_note"],
            plan_sha256=self.plan.sha256, amount=self.body["credit"]["total"], cfs_site="/".join(_site(self.body)),
            run_id=self.run_id,
        )  # fmt: skip

    def _known_memo(self, intent: intents.Intent | None) -> str | None:
        """The memo of an earlier run: from the ledger, else from CFS (searched by key)."""
        number = intent.evidence.get("credit_memo_number") if intent is not None else None
        memo = None
        if number:
            memo = self.cfs.get_credit_memo(*_site(self.body), str(number))
        else:
            memo = _find_memo(self.cfs, self.body)
        if memo is None:
            return None
        number = str(memo.get("credit_memo_number"))
        amount = _memo_amount(memo)
        planned = money(self.body["credit"]["total"])
        if amount != planned:
            raise PlanError(
                f"credit memo {number} carries key {self.key} but is for {amount}, not {planned}; reconcile by hand"
            )
        self._ensure_intent()
        intents.mark_intent(
            self.key, intents.SENT, settings=self.settings, credit_memo_number=number, found_in_cfs=True
        )
        self.steps.append(f"cfs: memo {number} already posted; resuming with the pay-db step")
        return number

    def _post(self) -> str:
        fresh = plan_partial_credit(**_plan_args(self.plan), settings=self.settings, engine=self.engine,
                                    cfs=self.cfs)  # fmt: skip
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
        self.hook("after_post")
        intents.mark_intent(
            self.key, intents.SENT, settings=self.settings, credit_memo_number=number, run_id=self.run_id
        )
        return number

    def _evidence_from_db(self, marker: dict[str, Any]) -> dict[str, Any]:
        with db.read_connection(self.engine) as conn:
            rows = db.fetch_all(
                conn,
                "SELECT id FROM refunds_partial WHERE invoice_id = :inv AND created_on = :at AND is_credit ORDER BY id",
                {"inv": self.invoice_id, "at": marker["created_on"]},
            )
        return {
            "credit_memo_number": marker["cfs_identifier"],
            "credit_id": int(marker["id"]),
            "refunds_partial_ids": [int(r["id"]) for r in rows],
            "committed_at": marker["created_on"],
        }

    def _write_db(self, memo_number: str) -> tuple[dict[str, Any], int]:
        body = self.body
        now = utcnow_naive()
        stamp = f"paynb:{self.run_id}"[:50]
        with db.write_transaction(self.engine, run_id=self.run_id) as conn:
            inv = db.fetch_one(
                conn, "SELECT invoice_status_code, refund FROM invoices WHERE id = :id FOR UPDATE",
                {"id": self.invoice_id},
            )  # fmt: skip
            marker = applied_credit_row(conn, self.invoice_id, self.key)
            if marker is not None:  # another run committed while we waited for the row
                self.steps.append("pay-db: already committed by another run")
                return self._evidence_from_db(marker), 0
            self._guard(conn, inv, memo_number)
            total = money(body["credit"]["total"])
            account_id = body["pay_db"]["payment_accounts"]["id"]
            acct = db.fetch_one(conn, "SELECT pad_credit FROM payment_accounts WHERE id = :id FOR UPDATE",
                                {"id": account_id})  # fmt: skip
            if acct is None:
                raise StalePlanError(
                    f"payment account {account_id} is gone; memo {memo_number} is posted — reconcile by hand"
                )
            ins = body["pay_db"]["credits"]["insert"]
            credit_id = conn.execute(
                sa.text(
                    "INSERT INTO credits (cfs_identifier, is_credit_memo, amount, remaining_amount, account_id, "
                    "details, created_on, cfs_site, created_invoice_id) VALUES (:cm, true, :amt, :amt, :acct, "
                    ":details, :now, :site, :inv) RETURNING id"
                ),
                {"cm": memo_number, "amt": total, "acct": account_id, "details": ins["details"], "now": now,
                 "site": ins["cfs_site"], "inv": self.invoice_id},
            ).scalar_one()  # fmt: skip
            n = conn.execute(
                sa.text(
                    "UPDATE payment_accounts SET pad_credit = COALESCE(pad_credit, 0) + :amt WHERE id = :id"
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
                            "created_on, created_by, created_name, status, is_credit) VALUES (:pli, :inv, :rtype, :amt, "
                            ":now, :by, :name, :status, true) RETURNING id"
                        ),
                        {"pli": row["payment_line_item_id"], "inv": self.invoice_id, "rtype": row["refund_type"],
                         "amt": money(row["refund_amount"]), "now": now, "by": stamp,
                         "name": f"paynb {body['ticket']}"[:100], "status": row["status"]},
                    ).scalar_one()
                )  # fmt: skip
            change = body["pay_db"]["invoices"]
            n += conn.execute(
                sa.text(
                    "UPDATE invoices SET refund = :refund, refund_date = :now, invoice_status_code = :status, "
                    "updated_on = :now, updated_by = :by WHERE id = :id AND invoice_status_code = :before"
                ),
                {"refund": money(change["refund"]["after"]), "now": now, "status": change["invoice_status_code"]["after"],
                 "by": stamp, "id": self.invoice_id, "before": change["invoice_status_code"]["before"]},
            ).rowcount  # fmt: skip
            if n != 2:
                raise StalePlanError(f"expected 2 updated rows (account, invoice), got {n}; rolled back")
        wrote = 2 + 1 + len(rp_ids)
        self.steps.append(f"pay-db: committed {wrote} rows")
        evidence = {
            "credit_memo_number": memo_number,
            "credit_id": int(credit_id),
            "refunds_partial_ids": [int(i) for i in rp_ids],
            "pad_credit_before": None if acct["pad_credit"] is None else money(acct["pad_credit"]),
            "committed_at": now,
        }
        return evidence, wrote

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


def _plan_args(plan: Plan) -> dict[str, Any]:
    req = request_from_plan(plan)
    args: dict[str, Any] = {"invoice_id": req.invoice_id, "reason": req.reason, "ticket": req.ticket}
    if req.form == "amount":
        args["amount"] = req.amount
    else:
        args["lines"] = list(req.lines)
    return args


# -- verify ---------------------------------------------------------------------------------------------------
def _verify(
    res: ApplyResult, body: dict[str, Any], evidence: dict[str, Any], engine: Engine, cfs: CfsClient
) -> None:
    """Re-read CFS and pay-db; fill ``changes`` (before from the plan, after = now) and ``problems``."""
    problems: list[str] = []
    total = money(body["credit"]["total"])
    key = body["idempotency_key"]
    inv_id = int(body["invoice"]["id"])
    memo_number = res.credit_memo_number
    memos = cfs.find_credit_memos(*_site(body), comment_contains=key)
    if len(memos) != 1:
        problems.append(f"CFS holds {len(memos)} credit memos carrying {key}, expected 1")
    memo = memos[0] if memos else {}
    if memo_number and memo and str(memo.get("credit_memo_number")) != str(memo_number):
        problems.append(
            f"CFS memo {memo.get('credit_memo_number')} carries the key; pay-db names {memo_number}"
        )
    if memo and _memo_amount(memo) != total:
        problems.append(f"CFS memo amount is {_memo_amount(memo)}, planned {total}")
    res.cfs_memo = {
        k: memo.get(k) for k in ("credit_memo_number", "total", "amount_due", "comments") if k in memo
    }
    with db.read_connection(engine) as conn:
        credits = db.fetch_all(
            conn,
            "SELECT id, cfs_identifier, amount FROM credits WHERE created_invoice_id = :inv AND details LIKE :p",
            {"inv": inv_id, "p": f"paynb:{key}%"},
        )
        rp = db.fetch_all(
            conn,
            "SELECT id, payment_line_item_id, refund_type, refund_amount FROM refunds_partial WHERE id = ANY(:ids)",
            {"ids": res.refunds_partial_ids or [-1]},
        )
        inv = db.fetch_one(conn, "SELECT invoice_status_code, refund, refund_date FROM invoices WHERE id = :id",
                           {"id": inv_id})  # fmt: skip
        acct = db.fetch_one(conn, "SELECT pad_credit FROM payment_accounts WHERE id = :id",
                            {"id": body["pay_db"]["payment_accounts"]["id"]})  # fmt: skip
    if len(credits) != 1:
        problems.append(f"pay-db holds {len(credits)} credits rows carrying {key}, expected 1")
    elif money(credits[0]["amount"]) != total:
        problems.append(f"credits {credits[0]['id']} amount is {credits[0]['amount']}, planned {total}")
    elif memo_number and str(credits[0]["cfs_identifier"]) != str(memo_number):
        problems.append(
            f"credits {credits[0]['id']} names memo {credits[0]['cfs_identifier']}, not {memo_number}"
        )
    planned_rp = sorted((int(r["payment_line_item_id"]), r["refund_type"], money(r["refund_amount"]))
                        for r in body["pay_db"]["refunds_partial"]["insert"])  # fmt: skip
    found_rp = sorted(
        (int(r["payment_line_item_id"]), r["refund_type"], money(r["refund_amount"])) for r in rp
    )
    if planned_rp != found_rp:
        problems.append(f"refunds_partial rows {found_rp} differ from the plan {planned_rp}")
    change = body["pay_db"]["invoices"]
    pad_before = evidence.get("pad_credit_before", body["pay_db"]["payment_accounts"]["pad_credit"]["before"])
    res.changes = [
        {"where": "CFS credit memo", "row": "/".join(_site(body)), "column": "credit_memo_number",
         "before": None, "after": memo.get("credit_memo_number")},
        {"where": "CFS credit memo", "row": memo.get("credit_memo_number"), "column": "amount_due",
         "before": None, "after": memo.get("amount_due")},
        {"where": "credits", "row": res.credit_id, "column": "amount", "before": None,
         "after": money(credits[0]["amount"]) if credits else None},
        {"where": "payment_accounts", "row": body["pay_db"]["payment_accounts"]["id"], "column": "pad_credit",
         "before": pad_before, "after": acct["pad_credit"] if acct else None},
        *[{"where": "refunds_partial", "row": r["id"], "column": f"{r['refund_type']} of line {r['payment_line_item_id']}",
           "before": None, "after": r["refund_amount"]} for r in sorted(rp, key=lambda r: r["id"])],
        {"where": "invoices", "row": inv_id, "column": "refund", "before": change["refund"]["before"],
         "after": inv["refund"] if inv else None},
        {"where": "invoices", "row": inv_id, "column": "refund_date", "before": change["refund_date"]["before"],
         "after": inv["refund_date"] if inv else None},
        {"where": "invoices", "row": inv_id, "column": "invoice_status_code",
         "before": change["invoice_status_code"]["before"], "after": inv["invoice_status_code"] if inv else None},
    ]  # fmt: skip
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
    key: str, invoice_id: int, *, settings: Settings | None = None, engine: Engine | None = None
) -> dict[str, Any] | None:
    """What an applied credit with ``key`` left (ledger first, then pay-db), or None."""
    intent = intents.get_intent(key, settings=settings)
    if intent is not None and intent.state == intents.CONFIRMED:
        return intent.evidence
    engine = engine or db.create_engine(settings)
    with db.read_connection(engine) as conn:
        marker = applied_credit_row(conn, invoice_id, key)
    if marker is None:
        return None
    return {
        "credit_id": marker["id"],
        "credit_memo_number": marker["cfs_identifier"],
        "amount": money(marker["amount"]),
    }
