"""The runbook scenarios the synthetic data generator injects, and how to list them.

Each scenario is recorded in ``paynb_sandbox.scenarios`` with one row per table it touched (ids) and
free-form details (file names, periods, invoice numbers). Other modules and tests look scenarios
up by these exact names.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    runbook_ref: str


CATALOGUE: tuple[Scenario, ...] = (
    Scenario(
        "pad_stuck_no_reference",
        "PAD invoices APPROVED for more than 20 days with no ACTIVE reference: CREATE_INVOICES skips the "
        "accounts (PAD CFS account PENDING_PAD_ACTIVATION, FREEZE, or ACTIVE with a CFS error).",
        "docs/runbook.md#pad-decision-tree step 1",
    ),
    Scenario(
        "pad_stuck_uncharged",
        "PAD roll-up with an ACTIVE reference whose CFS invoice still has amount_due > 0 (CAS never debited).",
        "docs/runbook.md#pad-decision-tree step 2 (amount_due > 0)",
    ),
    Scenario(
        "pad_stuck_settled_csv_unprocessed",
        "PAD roll-ups with ACTIVE references, paid in CAS (amount_due = 0); the settlement CSV is in the "
        "bucket under ar/ but was never processed: one file has no cas_settlements row, another has a row "
        "with processed_on NULL.",
        "docs/runbook.md#pad-decision-tree step 2 (amount_due = 0), docs/files.md#cas-settlement-csv",
    ),
    Scenario(
        "pad_stuck_cfs_missing",
        "PAD roll-up with an ACTIVE reference that CFS does not know (GET invoice -> 404).",
        "docs/runbook.md#pad-decision-tree step 2",
    ),
    Scenario(
        "cas_csv_with_nsf",
        "An unprocessed settlement CSV in the bucket that also holds 'Not PAID' PADP and PADR rows: "
        "re-processing it will NSF an account.",
        "docs/files.md#cas-settlement-csv",
    ),
    Scenario(
        "ejv_no_feedback",
        "An EJV INBOX file older than 3 business days with no FEEDBACK; its invoices stay APPROVED with "
        "ACTIVE references.",
        "docs/runbook.md#ejv-decision-tree step 2",
    ),
    Scenario(
        "ejv_errored_stop_ejv",
        "ERRORED EJV file/journal/lines with return messages; the gov account's distribution code has "
        "stop_ejv=true, so its later EJV invoices stay APPROVED with no reference (the failed attempt's "
        "references are CANCELLED).",
        "docs/runbook.md#ejv-decision-tree step 1",
    ),
    Scenario(
        "statement_gap_daily",
        "DAILY statements missing: one day with no DAILY statement for any account, and one more day for "
        "a single account.",
        "docs/statements.md#which-periods (DEVELOPER_NOTES #16)",
    ),
    Scenario(
        "statement_gap_weekly",
        "A WEEKLY statement missing for one account and week.",
        "docs/statements.md#which-periods",
    ),
    Scenario(
        "statement_gap_monthly",
        "A MONTHLY statement missing for one account and month.",
        "docs/statements.md#which-periods",
    ),
    Scenario(
        "statement_duplicate",
        "Two statements for the same account, frequency and period (the cron ran twice).",
        "docs/statements.md#re-running-a-day",
    ),
    Scenario(
        "routing_slip_with_transactions",
        "A routing slip with INTERNAL invoices linked to it (cannot simply be voided).",
        "docs/status-lifecycles.md#routing-slip",
    ),
    Scenario(
        "routing_slip_void_ready",
        "An ACTIVE routing slip whose INTERNAL invoices are all refunded or cancelled: it can be voided "
        "once they are unassociated (paynb routing-slip void).",
        "docs/routing-slips.md",
    ),
    Scenario(
        "routing_slip_void_blocked",
        "An ACTIVE routing slip with a PAID invoice that is not refunded: a void plan must refuse it.",
        "docs/routing-slips.md",
    ),
    Scenario(
        "routing_slip_void_with_child",
        "An ACTIVE routing slip with a LINKED child slip; its invoice is refunded. Voiding it reverses "
        "the child's receipt too.",
        "docs/routing-slips.md",
    ),
    Scenario(
        "pad_nsf_freeze",
        "A PAD roll-up returned NSF: invoices SETTLEMENT_SCHED with paid=0, reference ACTIVE, FAILED "
        "payment, NSF fee invoice and non_sufficient_funds row, CFS account FREEZE, has_nsf_invoices set.",
        "docs/files.md#record-types",
    ),
    Scenario(
        "partner_disbursement_stuck",
        "Partner disbursements UPLOADED (no feedback) and WAITING_FOR_JOB for more than a few days.",
        "docs/schema.md#partner_disbursements",
    ),
    Scenario(
        "pad_partial_credit_candidate",
        "A PAID PAD invoice with two active line items carrying filing and service fees, GLs with "
        "service-fee and GST sub-codes, a COMPLETED reference and an ACTIVE CFS account: a partial "
        "credit can be tried on it.",
        "docs/cfs-api.md#partial-credit-of-a-pad-invoice",
    ),
)

BY_NAME: dict[str, Scenario] = {s.name: s for s in CATALOGUE}
NAMES: tuple[str, ...] = tuple(BY_NAME)

COLUMNS = ["name", "description", "table", "ids", "details"]


def list_scenarios(conn: Connection) -> pd.DataFrame:
    """Every injected scenario: one row per (scenario, table) with the ids it touched."""
    rows = conn.execute(
        sa.text(
            "SELECT name, description, table_name, ids, details FROM paynb_sandbox.scenarios "
            "ORDER BY name, table_name"
        )
    ).all()
    order = {name: i for i, name in enumerate(NAMES)}
    records = sorted(
        (
            {"name": r[0], "description": r[1], "table": r[2], "ids": list(r[3] or []), "details": r[4] or {}}
            for r in rows
        ),
        key=lambda rec: (order.get(rec["name"], len(order)), rec["name"], rec["table"]),
    )
    return pd.DataFrame(records, columns=COLUMNS)


def scenario_ids(conn: Connection, name: str, table: str) -> list[int]:
    """The ids a scenario touched in one table ([] when it touched none)."""
    row = conn.execute(
        sa.text("SELECT ids FROM paynb_sandbox.scenarios WHERE name = :n AND table_name = :t"),
        {"n": name, "t": table},
    ).first()
    return [int(i) for i in row[0]] if row and row[0] else []


def scenario_details(conn: Connection, name: str) -> dict:
    """The details recorded for a scenario (merged over its rows)."""
    out: dict = {}
    for (details,) in conn.execute(
        sa.text("SELECT details FROM paynb_sandbox.scenarios WHERE name = :n ORDER BY table_name"),
        {"n": name},
    ):
        out.update(details or {})
    return out
