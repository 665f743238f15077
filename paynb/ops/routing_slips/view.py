"""Tables of a routing slip and of a void plan, for the CLI and the notebook."""

from __future__ import annotations

from typing import Any

import pandas as pd

from paynb.plan import Plan


def plan_table(plan: Plan) -> pd.DataFrame:
    """The void plan's steps, then every check it passed, then the receipts it reverses."""
    body = plan.body
    rows = [{"part": f"step {s['step']}", "what": s["what"], "detail": s["detail"]} for s in body["steps"]]
    rows += [
        {"part": "check", "what": c["check"], "detail": ("ok: " if c["ok"] else "FAILS: ") + c["detail"]}
        for c in body["checks"]
    ]
    rows += [
        {"part": "receipt", "what": r["receipt_number"], "detail": f"slip {r['slip']}, CFS {r.get('status')}"}
        for r in body["receipts"]
    ]
    rows += [
        {"part": "invoice", "what": str(i["id"]), "detail": f"{i['status']} {i['total']}"}
        for i in body["invoices"]
    ]
    return pd.DataFrame(rows, columns=["part", "what", "detail"])


def show_frames(found: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """One table per part of ``show_slip``'s report."""
    slip = found["slip"]
    links = [{"link": "this slip", **{k: slip[k] for k in ("number", "status", "total", "remaining_amount")}}]
    if found["parent"]:
        p = found["parent"]
        links.append(
            {"link": "parent", **{k: p[k] for k in ("number", "status", "total", "remaining_amount")}}
        )
    links += [
        {
            "link": "child",
            "number": c["number"],
            "status": c["status"],
            "total": c["total"],
            "remaining_amount": None,
        }
        for c in found["children"]
    ]
    acc = found["cfs_account"] or {}
    return {
        "slip": pd.DataFrame(links, columns=["link", "number", "status", "total", "remaining_amount"]),
        "cfs_account": pd.DataFrame([acc]) if acc else pd.DataFrame(columns=["id", "status"]),
        "invoices": pd.DataFrame(
            found["invoices"], columns=["id", "routing_slip", "status", "total", "paid", "refund"]
        ),
        "refunds": pd.DataFrame(
            found["refunds"],
            columns=[
                "id",
                "invoice_id",
                "routing_slip_id",
                "status",
                "type",
                "requested_date",
                "decision_date",
            ],
        ),
        "receipts": pd.DataFrame(
            found["receipts"],
            columns=["slip", "receipt_number", "status", "receipt_amount", "unapplied_amount"],
        ),
        "checks": pd.DataFrame(found["checks"], columns=["check", "ok", "detail"]),
        "situations": pd.DataFrame(found.get("situations", []), columns=["situation", "detail"]),
    }
