"""Planning a routing slip void (read-only): every precondition, named; the steps; the sha256.

The plan never changes anything. It refuses (:class:`VoidBlocked`) when any precondition fails and names
every one that does. Preconditions and the order of the steps follow sbc-pay (docs/routing-slips.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from paynb.canonical import sha256_hex, to_jsonable
from paynb.context import Env, resolve_env
from paynb.errors import InputError, PlanError
from paynb.ops.routing_slips import facts
from paynb.plan import Plan

PLAN_KIND = "routing_slip.void"
MODES = ("job", "reverse_receipts")
NUMBER_RE = re.compile(r"\d{9}")
TICKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._#/-]{0,39}")


class VoidBlocked(PlanError):
    """A precondition of the void fails; the message names each one."""

    hint = "fix what is named (refund the invoices, finish the refund, wait for the job), then plan again"

    def __init__(self, message: str, failed: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.failed = failed


class OperatorNotAllowed(PlanError):
    """The operator is not in PAYNB_RS_VOID_OPERATORS."""

    hint = (
        "ask someone listed in PAYNB_RS_VOID_OPERATORS to apply it (the business limits voids to named staff)"
    )


def void_key(number: str, ticket: str, mode: str) -> str:
    """``rsv-`` + 24 hex digits over (slip, ticket, mode): the same void always has the same key."""
    return "rsv-" + sha256_hex(json.dumps([number, ticket, mode]))[:24]


def clean_params(number: Any, reason: Any, ticket: Any, reverse_receipts: Any) -> dict[str, Any]:
    """Validate the inputs (InputError naming the field; nothing is read or written before)."""
    text = str(number if number is not None else "").strip()
    if not NUMBER_RE.fullmatch(text):
        raise InputError(f"{text!r} is not a routing slip number (9 digits)", field="number")
    why = " ".join(str(reason or "").split())
    if not why:
        raise InputError(
            "a reason is required (it goes to the ledger and the slip's comment)", field="reason"
        )
    if len(why) > 250:
        raise InputError(f"the reason is {len(why)} characters; keep it under 250", field="reason")
    tick = str(ticket or "").strip()
    if not TICKET_RE.fullmatch(tick):
        raise InputError(
            f"{tick!r} is not a ticket reference (letters, digits, . _ # / -; up to 40)", field="ticket"
        )
    if not isinstance(reverse_receipts, bool):
        raise InputError("reverse_receipts must be true or false", field="reverse_receipts")
    return {"number": text, "reason": why, "ticket": tick, "reverse_receipts": reverse_receipts}


def allowed_operators(env: Env) -> list[str]:
    raw = getattr(env.settings, "rs_void_operators", "") or ""
    return [name.strip() for name in raw.split(",") if name.strip()]


def check_operator(env: Env) -> None:
    """Only the staff named in PAYNB_RS_VOID_OPERATORS may apply a void."""
    allowed = allowed_operators(env)
    if not allowed:
        raise OperatorNotAllowed("PAYNB_RS_VOID_OPERATORS is empty: nobody may apply a routing slip void")
    if env.operator not in allowed:
        raise OperatorNotAllowed(
            f"operator {env.operator!r} may not void routing slips (allowed: {', '.join(allowed)})"
        )


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": bool(ok), "detail": detail}


def gather(env: Env, number: str, *, read_cfs: bool = True) -> dict[str, Any]:
    """Everything about the slip the plan and ``show`` need, with the void's preconditions checked."""
    with env.read() as conn:
        slip = facts.read_slip(conn, number)
        if slip is None:
            raise InputError(f"no routing slip {number} in pay-db", field="number")
        cfs_account = facts.read_cfs_account(conn, slip["payment_account_id"])
        parent = facts.read_slip(conn, slip["parent_number"]) if slip["parent_number"] else None
        children = facts.read_children(conn, number)
        grandchildren = {c["number"]: facts.read_children(conn, c["number"]) for c in children}
        child_accounts = {
            c["number"]: facts.read_cfs_account(conn, c["payment_account_id"]) for c in children
        }
        invoices = facts.read_invoices(conn, [number, *[c["number"] for c in children]])
        pending = facts.read_pending_refunds(conn, [i["id"] for i in invoices], [slip["id"]])
        refunds = facts.read_refunds(conn, [i["id"] for i in invoices], slip["id"])
    own = [i for i in invoices if i["routing_slip"] == number]
    site = (
        (cfs_account["cfs_party"], cfs_account["cfs_account"], cfs_account["cfs_site"])
        if cfs_account
        else None
    )
    receipts = [
        {
            "slip": s["number"],
            "receipt_number": facts.receipt_number(s["number"], s["parent_number"], _suffix(s, acc)),
        }
        for s, acc in ((slip, cfs_account), *((c, None) for c in children))
    ]
    if read_cfs and site is not None and all(site):
        for r in receipts:
            r.update(facts.receipt_state(env.cfs_fas, site, r["receipt_number"]))
    checks = [
        _check(
            "the slip is in a status that can be voided",
            slip["status"] in facts.VOIDABLE,
            f"status {slip['status']}"
            + (" (already void)" if slip["status"] == "VOID" else "")
            + f"; voidable: {', '.join(facts.VOIDABLE)}",
        ),
        _check(
            "the slip is not a linked child",
            slip["parent_number"] is None,
            f"linked to parent {slip['parent_number']}: void the parent"
            if slip["parent_number"]
            else "no parent",
        ),
        _check(
            "every invoice is refunded, cancelled or credited",
            all(i["status"] in facts.SETTLED for i in invoices),
            "; ".join(
                f"invoice {i['id']} is {i['status']}" for i in invoices if i["status"] not in facts.SETTLED
            )
            or f"{len(invoices)} invoice(s), all settled",
        ),
        _check(
            "no refund job is pending",
            not pending and slip["status"] not in ("REFUND_REQUESTED", "REFUND_AUTHORIZED"),
            "; ".join(f"{p['source']} {p['id']} is {p['status']}" for p in pending) or "none pending",
        ),
        _check(
            "no child slip is linked elsewhere",
            all(
                c["status"] == "LINKED"
                and c["parent_number"] == number
                and not grandchildren[c["number"]]
                and (child_accounts[c["number"]] or {}).get("status") != "ACTIVE"
                for c in children
            ),
            "; ".join(
                _child_problem(c, number, grandchildren, child_accounts)
                for c in children
                if _child_problem(c, number, grandchildren, child_accounts)
            )
            or f"{len(children)} child slip(s)",
        ),
        _check(
            "the slip's INTERNAL CFS account is ACTIVE",
            bool(cfs_account) and cfs_account["status"] == "ACTIVE",
            f"CFS account {cfs_account['id']} is {cfs_account['status']}"
            if cfs_account
            else "no INTERNAL CFS account",
        ),
    ]
    if read_cfs:
        bad = [r for r in receipts if r.get("status") in (facts.REVERSED, "MISSING")]
        checks.append(
            _check(
                "every receipt is in CFS and not reversed",
                not bad,
                "; ".join(f"receipt {r['receipt_number']} is {r['status']}" for r in bad)
                or f"{len(receipts)} receipt(s) open",
            )
        )
    return to_jsonable(
        {
            "slip": slip,
            "parent": parent,
            "children": children,
            "cfs_account": cfs_account,
            "site": site,
            "invoices": invoices,
            "own_invoices": own,
            "refunds": refunds,
            "pending_refunds": pending,
            "receipts": receipts,
            "checks": checks,
        }
    )


def _suffix(slip: dict[str, Any], account: dict[str, Any] | None) -> int:
    """The suffix of the receipt in CFS: a void bumps it after reversing, so a voided slip's receipt in CFS
    still carries the suffix before the bump."""
    suffix = int(slip["cas_version_suffix"] or 1)
    voided = slip["status"] == "VOID" and account is not None and account["status"] == "INACTIVE"
    return suffix - 1 if voided and suffix > 1 else suffix


def _child_problem(child: dict, number: str, grand: dict, accounts: dict) -> str:
    if child["status"] != "LINKED" or child["parent_number"] != number:
        return f"child {child['number']} is {child['status']} (expected LINKED to {number})"
    if grand[child["number"]]:
        return f"child {child['number']} has its own children"
    if (accounts[child["number"]] or {}).get("status") == "ACTIVE":
        return f"child {child['number']} is LINKED but the link job has not run (its CFS account is still ACTIVE)"
    return ""


def plan_void(
    number: Any,
    *,
    reason: Any = "",
    ticket: Any = "",
    reverse_receipts: Any = False,
    env: Env | None = None,
) -> Plan:
    """Plan the void of slip ``number`` (read-only). Raises VoidBlocked naming every failed precondition."""
    params = clean_params(number, reason, ticket, reverse_receipts)
    env = resolve_env(env)
    number = params["number"]
    mode = "reverse_receipts" if params["reverse_receipts"] else "job"
    found = gather(env, number)
    failed = [c for c in found["checks"] if not c["ok"]]
    if failed:
        raise VoidBlocked(
            f"routing slip {number} cannot be voided: "
            + "; ".join(f"{c['check']} FAILS ({c['detail']})" for c in failed),
            failed,
        )
    key = void_key(number, params["ticket"], mode)
    _refuse_other_voids(env, number, key)
    slip = found["slip"]
    invoices = [
        {
            "id": i["id"],
            "status": i["status"],
            "total": facts.money(i["total"]),
            "routing_slip": i["routing_slip"],
        }
        for i in found["own_invoices"]
    ]
    suffix = int(slip["cas_version_suffix"] or 1)
    void_step = (
        "paynb reverses each receipt with the FAS credentials (POST …/rcpts/{r}/reverse, PAYMENT REVERSAL / "
        "Created In Error) after setting the slip VOID and its CFS account INACTIVE, then bumps cas_version_suffix"
        if mode == "reverse_receipts"
        else "set status VOID and remaining_amount 0 (as pay-api's status PATCH does); sbc-pay's routing slip job "
        "reverses the receipts, sets the CFS account INACTIVE and bumps cas_version_suffix; paynb verifies it"
    )
    steps = [
        {
            "step": 1,
            "what": "unassociate",
            "detail": f"invoices.routing_slip = NULL for {len(invoices)} invoice(s)",
        },
        {"step": 2, "what": "void", "detail": void_step},
        {"step": 3, "what": "re-associate", "detail": f"invoices.routing_slip = {number} again"},
    ]
    if mode == "reverse_receipts":
        steps[0]["detail"] += " (steps 1-3 of pay-db in one transaction, before any receipt is reversed)"
    body = {
        "params": params,
        "key": key,
        "mode": mode,
        "slip": {
            k: slip[k]
            for k in (
                "id",
                "number",
                "status",
                "total",
                "remaining_amount",
                "cas_version_suffix",
                "payment_account_id",
            )
        },
        "cfs_account": found["cfs_account"],
        "children": [{"number": c["number"], "status": c["status"]} for c in found["children"]],
        "invoices": invoices,
        "receipts": found["receipts"],
        "checks": found["checks"],
        "steps": steps,
        "after": {
            "routing_slips.status": "VOID",
            "routing_slips.remaining_amount": "0.00",
            "routing_slips.cas_version_suffix": suffix + 1,
            "cfs_accounts.status": "INACTIVE",
            "receipts": facts.REVERSED,
        },
        "reason": params["reason"],
        "ticket": params["ticket"],
    }
    summary = (
        f"void routing slip {number} ({'paynb reverses the receipts' if mode == 'reverse_receipts' else 'via the job'}):"
        f" unassociate {len(invoices)} invoice(s), void, re-associate; {len(found['receipts'])} receipt(s) reversed"
    )
    return Plan(kind=PLAN_KIND, body=to_jsonable(body), summary=summary)


def _refuse_other_voids(env: Env, number: str, key: str) -> None:
    """An unfinished void of this slip under another key (ticket or mode) blocks a new plan."""
    from paynb import ledger

    if ledger.missing_local_ledger(env.settings) is not None:
        return
    for intent in ledger.open_ledger(env.settings).all_intents():
        payload = intent.payload if not isinstance(intent.payload, str) else json.loads(intent.payload)
        if (
            isinstance(payload, dict)
            and payload.get("kind") == PLAN_KIND
            and payload.get("number") == number
            and intent.key != key
            and intent.state not in ledger.FINAL_STATES
        ):
            raise VoidBlocked(
                f"routing slip {number} has an unfinished void {intent.key} ({intent.state}); finish it first "
                "(apply its plan again)",
                [{"check": "no other void is under way", "ok": False, "detail": intent.key}],
            )
