"""The ``ejv.reset_partner_disbursement`` fix: put a partner disbursement back to WAITING_FOR_JOB so the
next EJV_PARTNER run (19:01 Pacific) sends it.

Which rows: ERRORED (CAS rejected the line; fix the partner GL and clear its stop_ejv first) and UPLOADED
with no DISBURSEMENT ``ejv_links`` row for its target (marked sent, but no INBOX carries it). An UPLOADED
row that an INBOX does carry is refused: find its FEEDBACK or re-date that INBOX instead. A row already
WAITING_FOR_JOB is nothing to do.

What it writes is the state pay-api creates a partner disbursement in (``status_code = WAITING_FOR_JOB``,
``processed_on`` and ``feedback_on`` empty), the only state EJV_PARTNER selects; the matched sbc-pay code is
in docs/ejv-fixes.md.

Example::

    fix = get_fix("ejv.reset_partner_disbursement")
    plan = fix.plan(env, partner_disbursement_id=7)
    apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-9", reason="never sent (entity #24847)")
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

KIND = "ejv.reset_partner_disbursement"
TABLE = "partner_disbursements"
WAITING = "WAITING_FOR_JOB"
RESETTABLE = ("ERRORED", "UPLOADED")

_ROW_SQL = """
SELECT pd.id, pd.status_code, pd.amount, pd.partner_code, pd.is_reversal, pd.target_id, pd.target_type,
       pd.processed_on, pd.feedback_on, pd.created_on,
       (SELECT f.file_ref
          FROM ejv_links l
          JOIN ejv_headers h ON h.id = l.ejv_header_id
          JOIN ejv_files f ON f.id = h.ejv_file_id
         WHERE l.link_id = pd.target_id AND coalesce(l.link_type, 'invoice') = pd.target_type
           AND f.file_type = 'DISBURSEMENT'
         ORDER BY l.id DESC LIMIT 1) AS sent_in,
       (SELECT array_agg(DISTINCT dc.distribution_code_id ORDER BY dc.distribution_code_id)
          FROM payment_line_items pli
          JOIN distribution_codes dc ON dc.distribution_code_id = pli.fee_distribution_id
         WHERE dc.stop_ejv
           AND pli.id IN (SELECT p.id FROM payment_line_items p
                           WHERE pd.target_type = 'invoice' AND p.invoice_id = pd.target_id
                          UNION ALL
                          SELECT rp.payment_line_item_id FROM refunds_partial rp
                           WHERE pd.target_type = 'partial_refund' AND rp.id = pd.target_id)) AS stopped_gls
  FROM partner_disbursements pd
 WHERE pd.id = :id
"""


def read_disbursement(conn: Connection, disbursement_id: int) -> dict[str, Any] | None:
    row = db.fetch_one(conn, _ROW_SQL, {"id": disbursement_id})
    return dict(row) if row is not None else None


class ResetPartnerDisbursementFix(Fix):
    kind = KIND
    title = "resetting a partner disbursement to WAITING_FOR_JOB"

    def plan(self, env: Env, **params: Any) -> Plan:
        pd_id = positive_id(params, "partner_disbursement_id", "partner disbursement id")
        with env.read() as conn:
            row = read_disbursement(conn, pd_id)
        if row is None:
            raise PlanError(f"no partner disbursement {pd_id} in pay-db")
        status = row["status_code"]
        what = f"partner disbursement {pd_id} ({row['partner_code']}, {row['amount']} for {row['target_type']} {row['target_id']})"
        if status not in (*RESETTABLE, WAITING):
            raise PlanError(f"{what} is {status}: only ERRORED or never-sent UPLOADED rows are reset")
        if status == "UPLOADED" and row["sent_in"]:
            raise PlanError(
                f"{what} was sent in {row['sent_in']}: find its FEEDBACK (`paynb ejv search {row['target_id']}`) or"
                f" re-send that INBOX (`paynb ejv redate plan {row['sent_in']}`) instead of resetting it"
            )
        before = {k: row[k] for k in ("status_code", "processed_on", "feedback_on")}
        changes = []
        if status != WAITING:
            after = {"status_code": WAITING, "processed_on": None, "feedback_on": None}
            changes = [
                {"table": TABLE, "id": pd_id, "column": k, "before": before[k], "after": after[k]}
                for k in ("status_code", "processed_on", "feedback_on")
            ]
            summary = f"reset {what} from {status} to {WAITING}"
        else:
            summary = f"{what} is already {WAITING}: nothing to do"
        warnings = []
        if row["stopped_gls"]:
            gls = ", ".join(str(g) for g in row["stopped_gls"])
            warnings.append(
                f"distribution code(s) {gls} of its line items have stop_ejv: EJV_PARTNER skips it until they are"
                " cleared (`paynb ejv stop-ejv plan --distribution-code-id …`)"
            )
        return Plan(
            kind=KIND,
            body={
                "params": {"partner_disbursement_id": pd_id},
                "partner_disbursement_id": pd_id,
                "partner_code": row["partner_code"],
                "amount": row["amount"],
                "target": {"type": row["target_type"], "id": row["target_id"]},
                "is_reversal": row["is_reversal"],
                "before": before,
                "changes": changes,
            },
            summary=summary,
            warnings=tuple(warnings),
        )

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        body = plan.body
        pd_id = body["partner_disbursement_id"]
        before = body["before"]
        if not body["changes"]:
            return Outcome(status="nothing_to_do", before=before, after=before)
        with run.transaction() as conn:
            done = conn.execute(
                sa.text(
                    "UPDATE partner_disbursements SET status_code = :waiting, processed_on = NULL,"
                    " feedback_on = NULL WHERE id = :id AND status_code = :status"
                ),
                {"waiting": WAITING, "id": pd_id, "status": before["status_code"]},
            ).rowcount
            if done != 1:
                raise StalePlanError(f"partner disbursement {pd_id} changed while applying; rolled back")
        return Outcome(
            status="applied",
            rows_affected=done,
            before=before,
            after={"status_code": WAITING, "processed_on": None, "feedback_on": None},
            touched={"rows": [{"table": TABLE, "id": pd_id}]},
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> Mapping[str, Any]:
        pd_id = plan.body["partner_disbursement_id"]
        with env.read() as conn:
            row = read_disbursement(conn, pd_id)
        if row is None or row["status_code"] != WAITING:
            raise PlanError(f"partner disbursement {pd_id} is not {WAITING} after the apply")
        return {"status_code": row["status_code"]}


register_fix(ResetPartnerDisbursementFix())
