"""``paynb routing-slip show``: one slip, its links, invoices, refunds and CFS receipts, and what the
runbook says about the situation it is in (read-only).

Situations recognised (docs/routing-slips.md says what each one means and what to do):

* ``void_ready`` / ``void_blocked``: every void precondition, passed or failed;
* ``nsf_lock``: the slip is NSF and its CFS account FREEZE (sbc-pay's NSF job reversed the receipts);
* ``link_stuck``: a LINKED child whose own CFS account is still ACTIVE (the link job has not run);
* ``correction_waiting``: a CORRECTION slip with CREATED/APPROVED invoices (the job waits for them);
* ``void_waiting_for_job``: VOID with its CFS account still ACTIVE (the void job has not run, or it
  refuses because invoices are attached: "VOID - has transactions/invoices.").
"""

from __future__ import annotations

from typing import Any

from paynb.context import Env, resolve_env
from paynb.ops.routing_slips.plan import gather


def situations(found: dict[str, Any]) -> list[dict[str, str]]:
    slip, acc = found["slip"], found["cfs_account"] or {}
    out = []
    failed = [c for c in found["checks"] if not c["ok"]]
    if slip["status"] == "NSF" and acc.get("status") == "FREEZE":
        out.append(
            {
                "situation": "nsf_lock",
                "detail": "NSF: receipts reversed, CFS account FREEZE; new "
                "payments go through a linked slip (link a new slip to this one as its parent)",
            }
        )
    if slip["status"] == "LINKED" and acc.get("status") == "ACTIVE":
        out.append(
            {
                "situation": "link_stuck",
                "detail": "LINKED but its CFS account is still ACTIVE: the "
                "routing slip link job has not reversed its receipt yet",
            }
        )
    if slip["status"] == "CORRECTION" and any(
        i["status"] in ("CREATED", "APPROVED") for i in found["invoices"]
    ):
        out.append(
            {
                "situation": "correction_waiting",
                "detail": "CORRECTION waits until no invoice is CREATED "
                "or APPROVED (the create-invoice job must run first)",
            }
        )
    if slip["status"] == "VOID" and acc.get("status") == "ACTIVE":
        why = (
            "it still has invoices, so the job refuses it" if found["own_invoices"] else "the job has not run"
        )
        out.append(
            {"situation": "void_waiting_for_job", "detail": f"VOID but the CFS account is ACTIVE: {why}"}
        )
    if slip["status"] != "VOID":
        if failed:
            out.append({"situation": "void_blocked", "detail": "; ".join(c["check"] for c in failed)})
        else:
            out.append(
                {
                    "situation": "void_ready",
                    "detail": "paynb routing-slip void plan NUMBER --reason .. --ticket ..",
                }
            )
    return out


def show_slip(number: Any, *, env: Env | None = None, read_cfs: bool = True) -> dict[str, Any]:
    """Everything about slip ``number``: slip, parent, children, invoices, refunds, CFS receipts (read
    through FAS), the void checks and the runbook situations."""
    from paynb.errors import InputError
    from paynb.ops.routing_slips.plan import NUMBER_RE

    text = str(number if number is not None else "").strip()
    if not NUMBER_RE.fullmatch(text):
        raise InputError(f"{text!r} is not a routing slip number (9 digits)", field="number")
    found = gather(resolve_env(env), text, read_cfs=read_cfs)
    found["situations"] = situations(found)
    return found
