"""Named scenario routing_slip_with_transactions."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.errors import SandboxError
from paynb.sandbox.generator.core import (
    Generator,
    _all,
    _one,
)


def routing_slip(gen: Generator, conn: Connection) -> None:
    row = conn.execute(
        sa.text(
            "SELECT rs.id, rs.number FROM routing_slips rs JOIN invoices i ON i.routing_slip = rs.number "
            "WHERE rs.status = 'ACTIVE' GROUP BY rs.id, rs.number ORDER BY count(*) DESC, rs.id LIMIT 1"
        )
    ).first()
    if row is None:
        raise SandboxError(f"scale {gen.scale_name!r} has no routing slip with invoices")
    rs_id, number = row
    inv = [r[0] for r in _all(conn, "SELECT id FROM invoices WHERE routing_slip = :n ORDER BY id", n=number)]
    pays = [
        r[0]
        for r in _all(conn, "SELECT id FROM payments WHERE receipt_number = :n AND is_routing_slip", n=number)
    ]
    cid = _one(
        conn,
        'INSERT INTO comments (comment, "timestamp", routing_slip_number, submitter_name) '
        "VALUES ('Cheque received at counter; linked to the client account.', "
        "(SELECT created_on FROM routing_slips WHERE id = :i) AT TIME ZONE 'UTC', :n, 'Sandbox Staff') RETURNING id",
        i=rs_id,
        n=number,
    )
    gen.record(
        "routing_slip_with_transactions",
        {"routing_slips": [rs_id], "invoices": inv, "payments": pays, "comments": [cid]},
        {"number": number},
    )
