"""The ``ejv.clear_stop_ejv`` fix: set ``distribution_codes.stop_ejv`` back to false once Finance has
corrected the GL, so EJV_PAYMENT / EJV_PARTNER take the account's invoices and the GL's disbursements again.

What it writes is what pay-admin's "Suspend EJV" checkbox writes through sbc-pay's ``DistributionCode``
model (``Audit`` + ``Versioned``): ``stop_ejv = false``, ``updated_on``/``updated_by``/``updated_name``, the
row as it was into ``distribution_codes_history`` when that table exists, and ``version + 1``. The matched
sbc-pay code is in docs/ejv-fixes.md.

Example::

    from paynb.fixes import apply_fix, get_fix
    fix = get_fix("ejv.clear_stop_ejv")
    plan = fix.plan(env, distribution_code_id=12)
    apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-9", reason="GL corrected by Finance")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb import db
from paynb.context import Env
from paynb.errors import PlanError, StalePlanError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.fixes.params import positive_id
from paynb.plan import Plan
from paynb.timez import utcnow_naive

KIND = "ejv.clear_stop_ejv"
TABLE = "distribution_codes"
HISTORY = "distribution_codes_history"

_ROW_SQL = """
SELECT dc.distribution_code_id, dc.name, dc.client, dc.responsibility_centre, dc.service_line, dc.stob,
       dc.project_code, dc.stop_ejv, dc.account_id, dc.version, dc.updated_on, dc.updated_by,
       (SELECT count(*) FROM distribution_codes p WHERE p.disbursement_distribution_code_id = dc.distribution_code_id)
           AS partner_codes_using_it
  FROM distribution_codes dc
 WHERE dc.distribution_code_id = :id
"""


def gl_text(row: Mapping[str, Any]) -> str:
    parts = ("client", "responsibility_centre", "service_line", "stob", "project_code")
    return ".".join(str(row.get(p) or "") for p in parts)


def read_code(conn: Connection, code_id: int) -> dict[str, Any] | None:
    row = db.fetch_one(conn, _ROW_SQL, {"id": code_id})
    return dict(row) if row is not None else None


class ClearStopEjvFix(Fix):
    kind = KIND
    title = "clearing stop_ejv on a distribution code (GL)"

    def plan(self, env: Env, **params: Any) -> Plan:
        code_id = positive_id(params, "distribution_code_id", "distribution code id")
        with env.read() as conn:
            row = read_code(conn, code_id)
        if row is None:
            raise PlanError(f"no distribution code {code_id} in pay-db")
        who = f"account {row['account_id']}" if row["account_id"] is not None else "fee/partner GL"
        state = {k: row[k] for k in ("stop_ejv", "version", "updated_on", "updated_by")}
        changes = []
        if row["stop_ejv"]:
            changes = [
                {"table": TABLE, "id": code_id, "column": "stop_ejv", "before": True, "after": False},
                {
                    "table": TABLE,
                    "id": code_id,
                    "column": "version",
                    "before": row["version"],
                    "after": row["version"] + 1,
                },
                {
                    "table": TABLE,
                    "id": code_id,
                    "column": "updated_on/updated_by/updated_name",
                    "before": None,
                    "after": "now / paynb apply id / operator",
                },
                {
                    "table": HISTORY,
                    "id": code_id,
                    "column": "(new row)",
                    "before": None,
                    "after": f"the row as it was, version {row['version']}",
                },
            ]
            summary = f"clear stop_ejv on distribution code {code_id} ({row['name']}, {gl_text(row)}, {who})"
        else:
            summary = f"distribution code {code_id} ({row['name']}) has no stop_ejv: nothing to do"
        warnings = []
        if row["stop_ejv"] and row["partner_codes_using_it"]:
            warnings.append(
                f"{row['partner_codes_using_it']} distribution code(s) disburse to this GL: EJV_PARTNER sends their"
                " waiting disbursements at its next run"
            )
        return Plan(
            kind=KIND,
            body={
                "params": {"distribution_code_id": code_id},
                "distribution_code_id": code_id,
                "name": row["name"],
                "gl": gl_text(row),
                "account_id": row["account_id"],
                "before": state,
                "changes": changes,
            },
            summary=summary,
            warnings=tuple(warnings),
        )

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        body = plan.body
        code_id = body["distribution_code_id"]
        if not body["changes"]:
            return Outcome(status="nothing_to_do", before=body["before"], after=body["before"])
        now = utcnow_naive()
        version = body["before"]["version"]
        with run.transaction() as conn:
            history = _write_history(conn, code_id, now)
            done = conn.execute(
                sa.text(
                    "UPDATE distribution_codes SET stop_ejv = false, version = version + 1, updated_on = :now,"
                    " updated_by = :by, updated_name = :name"
                    " WHERE distribution_code_id = :id AND stop_ejv AND version = :v"
                ),
                {
                    "now": now,
                    "by": f"paynb:{run.apply_id}"[:50],
                    "name": env.operator[:50],
                    "id": code_id,
                    "v": version,
                },
            ).rowcount
            if done != 1:
                raise StalePlanError(f"distribution code {code_id} changed while applying; rolled back")
        return Outcome(
            status="applied",
            rows_affected=done + history,
            before={"stop_ejv": True, "version": version},
            after={"stop_ejv": False, "version": version + 1, "history_rows": history},
            touched={
                "rows": [{"table": TABLE, "id": code_id}]
                + ([{"table": HISTORY, "id": code_id, "version": version}] if history else [])
            },
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> Mapping[str, Any]:
        code_id = plan.body["distribution_code_id"]
        with env.read() as conn:
            row = read_code(conn, code_id)
        if row is None or row["stop_ejv"]:
            raise PlanError(f"distribution code {code_id} still has stop_ejv after the apply")
        return {"stop_ejv": row["stop_ejv"], "version": row["version"]}


def _write_history(conn: Connection, code_id: int, now: Any) -> int:
    """sql_versioning's step before an update: the row as it is into the history table (0 when pay-db has
    no such table, as in older schemas)."""
    cols = db.table_columns(conn, TABLE) & db.table_columns(conn, HISTORY)
    cols.discard("changed")
    if not cols:
        return 0
    names = ", ".join(f'"{c}"' for c in sorted(cols))
    return conn.execute(
        sa.text(
            f"INSERT INTO {HISTORY} ({names}, changed) "  # noqa: S608 - names from the catalogue
            f"SELECT {names}, :now FROM {TABLE} WHERE distribution_code_id = :id"
        ),
        {"now": now, "id": code_id},
    ).rowcount


register_fix(ClearStopEjvFix())
