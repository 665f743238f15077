"""Named scenario partner_disbursement_stuck."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.errors import SandboxError
from paynb.sandbox.generator.core import (
    Generator,
    _all,
)
from paynb.timez import pacific_midnight_utc


def partner_disbursements_stuck(gen: Generator, conn: Connection) -> None:
    cutoff = pacific_midnight_utc(gen.as_of - timedelta(days=5))
    rows = _all(
        conn,
        "SELECT id, target_id FROM partner_disbursements WHERE status_code = 'COMPLETED' "
        "AND created_on < :c ORDER BY created_on DESC, id DESC LIMIT 2",
        c=cutoff,
    )
    if len(rows) < 2:
        raise SandboxError(
            f"scale {gen.scale_name!r} has too few partner disbursements for partner_disbursement_stuck"
        )
    uploaded, waiting = rows
    conn.execute(
        sa.text(
            "UPDATE partner_disbursements SET status_code = 'UPLOADED', feedback_on = NULL WHERE id = :i"
        ),
        {"i": uploaded[0]},
    )
    conn.execute(
        sa.text(
            "UPDATE invoices SET disbursement_status_code = 'UPLOADED', disbursement_date = NULL WHERE id = :i"
        ),
        {"i": uploaded[1]},
    )
    conn.execute(
        sa.text(
            "UPDATE partner_disbursements SET status_code = 'WAITING_FOR_JOB', feedback_on = NULL, "
            "processed_on = NULL WHERE id = :i"
        ),
        {"i": waiting[0]},
    )
    conn.execute(
        sa.text(
            "UPDATE invoices SET disbursement_status_code = NULL, disbursement_date = NULL WHERE id = :i"
        ),
        {"i": waiting[1]},
    )
    # their DISBURSEMENT journal lines: the UPLOADED one was sent and its FEEDBACK never applied; the
    # WAITING_FOR_JOB one was never sent
    disbursement_links = (
        "ejv_header_id IN (SELECT h.id FROM ejv_headers h JOIN ejv_files f ON f.id = h.ejv_file_id "
        "WHERE f.file_type = 'DISBURSEMENT') AND link_type = 'invoice' AND link_id = :i"
    )
    links = _all(
        conn,
        f"UPDATE ejv_links SET disbursement_status_code = 'UPLOADED' WHERE {disbursement_links} RETURNING id",  # noqa: S608
        i=uploaded[1],
    )
    conn.execute(sa.text(f"DELETE FROM ejv_links WHERE {disbursement_links}"), {"i": waiting[1]})  # noqa: S608
    # a run with nothing left to send writes no file (the job rolls back)
    conn.exec_driver_sql(
        "DELETE FROM ejv_headers h USING ejv_files f WHERE f.id = h.ejv_file_id AND f.file_type = 'DISBURSEMENT' "
        "AND NOT EXISTS (SELECT 1 FROM ejv_links l WHERE l.ejv_header_id = h.id)"
    )
    conn.exec_driver_sql(
        "DELETE FROM ejv_files f WHERE f.file_type = 'DISBURSEMENT' "
        "AND NOT EXISTS (SELECT 1 FROM ejv_headers h WHERE h.ejv_file_id = f.id)"
    )
    gen.record(
        "partner_disbursement_stuck",
        {
            "partner_disbursements": [uploaded[0], waiting[0]],
            "invoices": [uploaded[1], waiting[1]],
            "ejv_links": [r[0] for r in links],
        },
        {"uploaded_id": uploaded[0], "waiting_for_job_id": waiting[0]},
    )
