"""How a plan looks to a person: one table for the CLI and the notebook helper alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from paynb.output import dumps

if TYPE_CHECKING:
    from paynb.fixes.protocol import Fix
    from paynb.plan import Plan

#: body keys that hold the plan's rows, looked for in this order when the fix gives no table of its own
ROW_KEYS = ("changes", "rows", "items", "lines")
CELL_WIDTH = 100


def plan_frame(plan: Plan, fix: Fix | None = None) -> pd.DataFrame:
    """The fix's own table (``Fix.table``) when it has one; else the first list of rows in the body;
    else one row per body field (the ``params`` it was planned with are left out)."""
    if fix is not None:
        own = fix.table(plan)
        if own is not None:
            return own
    for key in ROW_KEYS:
        rows = plan.body.get(key)
        if isinstance(rows, list) and rows and all(isinstance(r, Mapping) for r in rows):
            return pd.DataFrame([{k: _cell(v) for k, v in r.items()} for r in rows])
    fields = {k: v for k, v in plan.body.items() if k != "params"}
    return pd.DataFrame(
        [{"field": k, "value": _cell(v)} for k, v in fields.items()], columns=["field", "value"]
    )


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else dumps(value, indent=None)
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def plan_document(plan: Plan, *, out: str | None = None) -> dict[str, Any]:
    """The one JSON document ``… plan --json`` prints."""
    return {"sha256": plan.sha256, "plan": plan.to_dict(), "out": out}
