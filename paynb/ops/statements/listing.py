"""Which accounts and periods a statement generation would write: one row per statement, for the dry run.

The counts of :class:`~paynb.ops.statements.generation.GenerationPlan` say how many; this says which
(auth account, payment account, frequency, period, the existing statement id it would reuse, invoices).
It runs the same target and detail queries as the plan, read-only.

Example::

    periods = list_periods("2025-03-01", "2025-03-31", missing_only=True)
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from paynb import db
from paynb.context import Env, resolve_env
from paynb.ops.statements.generation import _DETAILS, _INV, _TARGETS, _params
from paynb.ops.statements.periods import check_range, parse_account, periods_for_range, require_day

COLUMNS = [
    "auth_account_id",
    "payment_account_id",
    "kind",
    "frequency",
    "from_date",
    "to_date",
    "statement_id",
    "invoices",
]

_LIST_SQL = (
    "WITH paynb_stmt_targets AS MATERIALIZED (\n"  # noqa: S608 - module constants; values are bound
    + _TARGETS
    + "),\npaynb_stmt_inv AS MATERIALIZED (\n"
    + _INV
    + "),\npaynb_stmt_details AS MATERIALIZED (\n"
    + _DETAILS
    + ")\n"
    + """SELECT auth_account_id, payment_account_id, kind, frequency, from_date, to_date,
       reuse_id AS statement_id, invoice_count AS invoices
  FROM paynb_stmt_details
 ORDER BY from_date, to_date, auth_account_id, frequency, tid
"""
)


def list_periods(
    from_date: date | str,
    to_date: date | str,
    account: str | None = None,
    *,
    override: bool = True,
    missing_only: bool = False,
    env: Env | None = None,
) -> pd.DataFrame:
    """One row per statement the generation would write; ``statement_id`` is the existing statement it
    reuses (empty for a new one)."""
    start, end = require_day(from_date, "from_date"), require_day(to_date, "to_date")
    check_range(start, end)
    periods = periods_for_range(start, end)
    env = resolve_env(env)
    with env.read() as conn:
        rows = db.fetch_all(conn, _LIST_SQL, _params(periods, parse_account(account), override, missing_only))
    frame = pd.DataFrame([dict(r) for r in rows], columns=COLUMNS)
    frame["statement_id"] = frame["statement_id"].astype("Int64")
    return frame
