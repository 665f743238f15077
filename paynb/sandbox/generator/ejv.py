"""Named EJV scenarios: ejv_no_feedback and ejv_errored_stop_ejv (their rows come from gen_derived.sql)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from paynb.sandbox.generator.core import (
    Generator,
    _all,
    _one,
)


def record_ejv_scenarios(gen: Generator, conn: Connection) -> None:
    p = gen.picks["ejv"]
    f1 = p["no_feedback_run"]
    files = [
        r[0]
        for r in _all(
            conn,
            "SELECT id FROM ejv_files WHERE created_on = paynb_sandbox.utc(CAST(:d AS date) + time '20:01')",
            d=f1,
        )
    ]
    heads = [
        r[0]
        for r in _all(conn, "SELECT id FROM ejv_headers WHERE ejv_file_id = ANY(:f) ORDER BY id", f=files)
    ]
    links = _all(conn, "SELECT id, link_id FROM ejv_links WHERE ejv_header_id = ANY(:h) ORDER BY id", h=heads)
    inv = sorted(r[1] for r in links)
    refs = [
        r[0]
        for r in _all(conn, "SELECT id FROM invoice_references WHERE invoice_id = ANY(:i) ORDER BY id", i=inv)
    ]
    file_ref = _one(conn, "SELECT file_ref FROM ejv_files WHERE id = ANY(:f)", f=files)
    gen.record(
        "ejv_no_feedback",
        {
            "ejv_files": files,
            "ejv_headers": heads,
            "ejv_links": [r[0] for r in links],
            "invoices": inv,
            "invoice_references": refs,
        },
        {"file_ref": file_ref, "run_date": f1.isoformat()},
    )
    acc, f2 = p["stop_account"], p["error_run"]
    gl = _one(conn, "SELECT distribution_code_id FROM distribution_codes WHERE account_id = :a", a=acc)
    files = [
        r[0]
        for r in _all(conn, "SELECT id FROM ejv_files WHERE disbursement_status_code = 'ERRORED' ORDER BY id")
    ]
    heads = [
        r[0]
        for r in _all(
            conn, "SELECT id FROM ejv_headers WHERE disbursement_status_code = 'ERRORED' ORDER BY id"
        )
    ]
    links = _all(
        conn, "SELECT id, link_id FROM ejv_links WHERE disbursement_status_code = 'ERRORED' ORDER BY id"
    )
    blocked = [
        r[0]
        for r in _all(
            conn, "SELECT id FROM g_st WHERE account_id = :a AND state = 'blocked' ORDER BY id", a=acc
        )
    ]
    refs = [
        r[0]
        for r in _all(
            conn,
            "SELECT id FROM invoice_references WHERE invoice_id = ANY(:i) "
            "AND status_code = 'CANCELLED' ORDER BY id",
            i=[r[1] for r in links],
        )
    ]
    gen.record(
        "ejv_errored_stop_ejv",
        {
            "ejv_files": files,
            "ejv_headers": heads,
            "ejv_links": [r[0] for r in links],
            "distribution_codes": [gl],
            "payment_accounts": [acc],
            "invoices": sorted({r[1] for r in links} | set(blocked)),
            "invoice_references": refs,
        },
        {"account_id": acc, "error_run_date": f2.isoformat(), "blocked_invoice_ids": blocked},
    )
