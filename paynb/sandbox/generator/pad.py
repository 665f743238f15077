"""Named PAD scenarios: pad_nsf_freeze, pad_stuck_no_reference, pad_stuck_uncharged, pad_stuck_cfs_missing,
pad_stuck_settled_csv_unprocessed, cas_csv_with_nsf and pad_partial_credit_candidate."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.errors import SandboxError
from paynb.sandbox.generator.core import (
    NSF_FEE,
    NSF_FEE_SCHEDULE_ID,
    STALE_DAYS,
    Generator,
    _all,
    _one,
    csv_name,
    revenue_gl_id,
)


def nsf_fee_invoice(gen: Generator, conn: Connection) -> None:
    p = gen.picks["nsf"]
    acc, lock_ts = p["account_id"], p["lock_ts"]
    grp = conn.execute(
        sa.text("SELECT invoice_number, total FROM g_pad WHERE account_id = :a AND run_date = :r"),
        {"a": acc, "r": p["run_date"]},
    ).one()
    number = grp[0]
    cfs_account = _one(conn, "SELECT cfs_account FROM cfs_accounts WHERE id = :a", a=acc)
    inv_id = _one(conn, "SELECT max(id) + 1 FROM invoices")
    created = lock_ts + timedelta(minutes=2)
    conn.execute(
        sa.text(
            "INSERT INTO invoices (created_by, created_on, id, invoice_status_code, total, paid, service_fees, "
            "corp_type_code, created_name, payment_account_id, cfs_account_id, payment_method_code, gst) "
            "VALUES ('SYSTEM', :c, :id, 'CREATED', :fee, 0, 0, 'BCR', 'SYSTEM', :a, :a, 'CC', 0)"
        ),
        {"c": created, "id": inv_id, "fee": NSF_FEE, "a": acc},
    )
    conn.execute(
        sa.text(
            "INSERT INTO payment_line_items (id, invoice_id, filing_fees, fee_schedule_id, quantity, description, "
            "pst, total, line_item_status_code, future_effective_fees, priority_fees, waived_fees, "
            "fee_distribution_id, service_fees) "
            "VALUES ((SELECT max(id) + 1 FROM payment_line_items), :i, :fee, :fs, 1, 'NSF Fee', 0, :fee, "
            "'ACTIVE', 0, 0, 0, :gl, 0)"
        ),
        {
            "i": inv_id,
            "fee": NSF_FEE,
            "fs": NSF_FEE_SCHEDULE_ID,
            "gl": revenue_gl_id(NSF_FEE_SCHEDULE_ID),
        },
    )
    conn.execute(
        sa.text(
            "INSERT INTO invoice_references (id, invoice_id, invoice_number, status_code, created_on, is_consolidated) "
            "VALUES ((SELECT max(id) + 1 FROM invoice_references), :i, :n, 'ACTIVE', :c, false)"
        ),
        {"i": inv_id, "n": number, "c": created},
    )
    nsf_id = _one(
        conn,
        "INSERT INTO non_sufficient_funds (description, invoice_id, invoice_number, cfs_account) "
        "VALUES ('NSF', :i, :n, :c) RETURNING id",
        i=inv_id,
        n=number,
        c=cfs_account,
    )
    conn.execute(
        sa.text("UPDATE payment_accounts SET has_nsf_invoices = :t, version = version + 1 WHERE id = :a"),
        {"t": lock_ts + timedelta(minutes=1), "a": acc},
    )
    invoices = [
        r[0]
        for r in _all(
            conn,
            "SELECT id FROM g_inv WHERE account_id = :a AND run_date = :r AND method = 'PAD' ORDER BY id",
            a=acc,
            r=p["run_date"],
        )
    ]
    refs = [
        r[0]
        for r in _all(
            conn, "SELECT id FROM invoice_references WHERE invoice_number = :n ORDER BY id", n=number
        )
    ]
    pays = [
        r[0]
        for r in _all(
            conn,
            "SELECT id FROM payments WHERE invoice_number = :n AND payment_status_code = 'FAILED' "
            "ORDER BY id",
            n=number,
        )
    ]
    gen.record(
        "pad_nsf_freeze",
        {
            "invoices": [*invoices, inv_id],
            "invoice_references": refs,
            "payment_accounts": [acc],
            "cfs_accounts": [acc],
            "non_sufficient_funds": [nsf_id],
            "payments": pays,
        },
        {
            "account_id": acc,
            "invoice_number": number,
            "nsf_fee_invoice_id": inv_id,
            "application_date": p["appl_date"].isoformat(),
            "cfs_account": cfs_account,
            "settlement_file": csv_name(p["appl_date"]),
        },
    )


def record_pad_scenarios(gen: Generator, conn: Connection) -> None:
    a20 = gen.as_of - timedelta(days=STALE_DAYS)
    noref = _all(
        conn,
        "SELECT account_id, since, cfs_status FROM g_flag_acc WHERE kind = 'pad_noref' ORDER BY since DESC",
    )
    inv: list[int] = []
    for acc, since, _status in noref:
        inv += [
            r[0]
            for r in _all(
                conn,
                "SELECT s.id FROM g_st s WHERE s.account_id = :a AND s.method = 'PAD' "
                "AND s.state = 'noref' AND s.run_date >= :s AND s.cdate < :c ORDER BY s.id",
                a=acc,
                s=since,
                c=a20,
            )
        ]
    gen.record(
        "pad_stuck_no_reference",
        {
            "invoices": inv,
            "cfs_accounts": [r[0] for r in noref],
            "payment_accounts": [r[0] for r in noref],
        },
        {
            "accounts": [
                {"account_id": r[0], "cfs_status": r[2], "stuck_since": r[1].isoformat()} for r in noref
            ]
        },
    )
    for name, kind in (("pad_stuck_uncharged", "uncharged"), ("pad_stuck_cfs_missing", "cfs_missing")):
        acc, run_date = conn.execute(
            sa.text("SELECT account_id, run_date FROM g_flag_grp WHERE kind = :k"), {"k": kind}
        ).one()
        number, total = conn.execute(
            sa.text("SELECT invoice_number, total FROM g_pad WHERE account_id = :a AND run_date = :r"),
            {"a": acc, "r": run_date},
        ).one()
        gen.record(
            name,
            ids_for_numbers(gen, conn, [number]),
            {
                "account_id": acc,
                "invoice_number": number,
                "total": str(total),
                "amount_due": str(total) if kind == "uncharged" else None,
                "cfs_present": kind != "cfs_missing",
            },
        )
    files = gen.picks["files"]
    variants = []
    tables: dict[str, list[int]] = {"invoices": [], "invoice_references": [], "cas_settlements": []}
    for kind, label in (
        ("unprocessed_norow", "no cas_settlements row"),
        ("unprocessed_started", "cas_settlements row with processed_on NULL"),
    ):
        d = files[kind]
        numbers = [
            r[0]
            for r in _all(
                conn,
                "SELECT invoice_number FROM g_pad WHERE appl_date = :d "
                "AND state = 'settled_unprocessed' ORDER BY invoice_number",
                d=d,
            )
        ]
        ids = ids_for_numbers(gen, conn, numbers)
        tables["invoices"] += ids["invoices"]
        tables["invoice_references"] += ids["invoice_references"]
        cas = [r[0] for r in _all(conn, "SELECT id FROM cas_settlements WHERE file_name = :f", f=csv_name(d))]
        tables["cas_settlements"] += cas
        variants.append(
            {
                "variant": label,
                "application_date": d.isoformat(),
                "file_name": csv_name(d),
                "key": f"ar/{csv_name(d)}",
                "invoice_numbers": numbers,
            }
        )
    gen.record("pad_stuck_settled_csv_unprocessed", tables, {"files": variants})
    d = files["unprocessed_nsf"]
    numbers = [
        r[0]
        for r in _all(
            conn,
            "SELECT invoice_number FROM g_pad WHERE appl_date = :d "
            "AND state IN ('settled_unprocessed', 'nsf_unprocessed') ORDER BY invoice_number",
            d=d,
        )
    ]
    nsf_number = _one(
        conn, "SELECT invoice_number FROM g_pad WHERE appl_date = :d AND state = 'nsf_unprocessed'", d=d
    )
    tables = ids_for_numbers(gen, conn, numbers)
    gen.record(
        "cas_csv_with_nsf",
        tables,
        {
            "application_date": d.isoformat(),
            "file_name": csv_name(d),
            "key": f"ar/{csv_name(d)}",
            "nsf_invoice_numbers": [nsf_number],
            "invoice_numbers": numbers,
        },
    )


def ids_for_numbers(gen: Generator, conn: Connection, numbers: list[str]) -> dict[str, list[int]]:
    refs = _all(
        conn,
        "SELECT id, invoice_id FROM invoice_references WHERE invoice_number = ANY(:n) ORDER BY id",
        n=list(numbers),
    )
    return {"invoices": sorted({r[1] for r in refs}), "invoice_references": [r[0] for r in refs]}


def partial_credit_candidate(gen: Generator, conn: Connection) -> None:
    # paid PAD roll-ups: COMPLETED reference, CFS invoice present; accounts of other scenarios excluded
    # (their CFS account is not ACTIVE)
    row = conn.execute(
        sa.text(
            """SELECT s.id FROM g_st s
                WHERE s.method = 'PAD' AND s.state = 'paid' AND s.cdate BETWEEN :lo AND :hi
                  AND s.account_id NOT IN (SELECT account_id FROM g_flag_acc)
                  AND s.id IN (SELECT l.invoice_id FROM g_line l
                                WHERE l.filing_fees > 0 AND l.service_fees > 0
                                GROUP BY l.invoice_id HAVING count(*) >= 2)
                ORDER BY paynb_sandbox.u(:seed, 68, s.id), s.id LIMIT 1"""
        ),
        {"lo": gen.as_of - timedelta(days=120), "hi": gen.as_of - timedelta(days=5), "seed": gen.seed},
    ).first()
    if row is None:
        raise SandboxError(
            f"scale {gen.scale_name!r} has no PAD invoice fit for pad_partial_credit_candidate"
        )
    inv = row[0]
    lines = [
        r[0] for r in _all(conn, "SELECT id FROM payment_line_items WHERE invoice_id = :i ORDER BY id", i=inv)
    ]
    gls = _all(
        conn,
        "SELECT DISTINCT unnest(ARRAY[d.distribution_code_id, d.service_fee_distribution_code_id, "
        "d.statutory_fees_gst_distribution_code_id, d.service_fee_gst_distribution_code_id]) AS g "
        "FROM payment_line_items l JOIN distribution_codes d ON d.distribution_code_id = l.fee_distribution_id "
        "WHERE l.invoice_id = :i ORDER BY 1",
        i=inv,
    )
    ref = _all(conn, "SELECT id, invoice_number FROM invoice_references WHERE invoice_id = :i", i=inv)[0]
    acc = _one(conn, "SELECT payment_account_id FROM invoices WHERE id = :i", i=inv)
    gen.record(
        "pad_partial_credit_candidate",
        {
            "invoices": [inv],
            "payment_line_items": lines,
            "distribution_codes": [g[0] for g in gls if g[0]],
            "invoice_references": [ref[0]],
            "cfs_accounts": [acc],
        },
        {"invoice_id": inv, "invoice_number": ref[1], "account_id": acc},
    )
