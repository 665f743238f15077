"""A replay plan as a table and as text, for the CLI and the notebook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from paynb.ops.settlements.classify import Disposition
from paynb.ops.settlements.plan import EVENT_TYPE
from paynb.plan import Plan

if TYPE_CHECKING:
    pass


# -- presenting a plan (CLI and notebook) ------------------------------------------------------------------
PLAN_COLUMNS = ["line", "record", "target", "status", "amount", "disposition", "invoices", "reason"]


def plan_frame(plan: Plan, *, nsf_only: bool = False) -> pd.DataFrame:
    """The plan's rows as a table: one line per CSV row, NSF-risk rows marked ``!! NSF RISK``."""
    rows = [
        {
            "line": r["line"],
            "record": r["record_type"],
            "target": r["target_number"],
            "status": r["status"],
            "amount": r["amount"],
            "disposition": "!! NSF RISK" if r["nsf_risk"] else r["disposition"],
            "invoices": " ".join(
                f"{c['invoice_id']}:{c['from_status']}->{c['to_status']}" for c in r["changes"]
            ),
            "reason": r["reason"],
        }
        for r in plan.body["rows"]
        if r["nsf_risk"] or not nsf_only
    ]
    return pd.DataFrame.from_records(rows, columns=PLAN_COLUMNS)


def style_plan_frame(df: pd.DataFrame) -> Any:
    """A pandas Styler that paints NSF-risk rows red and rows to replay green (for notebooks)."""

    def paint(row: pd.Series) -> list[str]:
        if row["disposition"] == "!! NSF RISK":
            css = "background-color: #f8d0d0; color: #700; font-weight: bold"
        elif row["disposition"] == Disposition.APPLY:
            css = "background-color: #d8f0d8"
        else:
            css = ""
        return [css] * len(row)

    return df.style.apply(paint, axis=1)


def describe_plan(plan: Plan, *, written: bool = False, table: bool = True) -> str:
    """The plan as text for an operator: file, guard, rows (``table``), warnings, the filtered CSV, the
    guard change, the queue message and the gcloud command, and the plan sha256."""
    import json

    from paynb.output import format_table

    body = plan.body
    src, guard, filtered = body["file"], body["guard"], body["filtered_csv"]
    out = [
        plan.summary,
        f"file:   {src['url']} ({src['rows']} rows, sha256 {src['sha256']})",
        f"guard:  cas_settlements for {guard['file_name']}: {guard['state']}",
    ]
    for row in guard["rows"]:
        out.append(
            f"        id {row['id']} received_on {row['received_on']} processed_on {row['processed_on']}"
        )
    if table:
        out += ["", format_table(plan_frame(plan))]
    if plan.warnings:
        out.append("")
        out += [("!! " if w.startswith("NSF RISK") else "warning: ") + w for w in plan.warnings]
    out.append("")
    if filtered is None:
        out.append("No filtered CSV: there is nothing safe to replay.")
    else:
        state = "written" if written else "dry run, not written (apply the plan with its confirm hash)"
        out.append(
            f"filtered CSV: {filtered['key']} ({filtered['rows']} row(s), sha256 {filtered['sha256']}) [{state}]"
        )
        change = body["guard_change"]
        if change["statements"]:
            out.append("guard change for the filtered file (apply runs it, in its one transaction):")
            out += [f"  {s['sql']}  -- {s['params']}; row {s['row']}" for s in change["statements"]]
        else:
            out.append(f"guard change: none for {change['published_file']} ({change['note']})")
        out.append(f"original guard: {change['original']['note']}")
        out += [f"  {s['sql']}  -- {s['params']}" for s in change["original"]["statements"]]
        out.append(f"queue message (type {EVENT_TYPE}):")
        out.append(f"  {json.dumps(body['queue_message'], sort_keys=True)}")
        out.append(f"publish with:\n  {body['gcloud_command']}")
    out.append(f"\nplan sha256: {plan.sha256}")
    return "\n".join(out)
