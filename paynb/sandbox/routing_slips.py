"""Routing slips with transactions in the sandbox: the rows, the CFS receipts, and sbc-pay's VOID job.

* :func:`insert_slip` writes one routing slip the way FAS leaves it: an INTERNAL payment account, its
  INTERNAL CFS account, the slip, its FAS payment and its INTERNAL invoices (``invoices.routing_slip``);
  a child is LINKED to its parent (``parent_number``) and its own CFS account is INACTIVE.
* :func:`add_scenarios` injects the named scenarios (``routing_slip_void_ready``,
  ``routing_slip_void_blocked``, ``routing_slip_void_with_child``); the generator calls it once.
* :func:`load_receipts` gives the CFS sandbox one receipt per slip, numbered as sbc-pay numbers them.
* :func:`run_void_job` does what sbc-pay's ``RoutingSlipTask.process_void`` does, for tests of the
  "set VOID and let the job act" path.

Facts and the sbc-pay code they come from: docs/routing-slips.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

VOID_REASON = "PAYMENT REVERSAL"  # sbc-pay CFS_PAYMENT_REVERSAL_REASON
VOID_COMMENT = "Created In Error"  # sbc-pay's reversal comment for ReverseOperation.VOID
FIRST_SCENARIO_NUMBER = 98000000  # 8 digits + a Luhn digit; far from the generator's 2xxxxxxx slips


def luhn_digit(digits: str) -> str:
    """The check digit sbc-pay's routing slip numbers end with."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def slip_number(n: int) -> str:
    base = str(n).zfill(8)[-8:]
    return base + luhn_digit(base)


def receipt_number(number: str, parent_number: str | None, cas_version_suffix: int | None) -> str:
    """sbc-pay ``RoutingSlip.generate_cas_receipt_number``: ``L`` for a linked child, ``R<n>`` after a
    correction or void bumped the suffix."""
    text = number + ("L" if parent_number else "")
    suffix = int(cas_version_suffix or 1)
    return text + (f"R{suffix}" if suffix > 1 else "")


def _next_id(conn: Connection, table: str, column: str = "id") -> int:
    # identifiers are ours; ids are explicit so this works before the generator sets its sequences
    sql = f'SELECT coalesce(max("{column}"), 0) + 1 FROM "{table}"'  # noqa: S608
    return int(conn.execute(sa.text(sql)).scalar_one())


def _fee_schedule(conn: Connection) -> int:
    """A fee schedule for the slips' line items: the catalogue's first, or one made for them."""
    found = conn.execute(sa.text("SELECT min(fee_schedule_id) FROM fee_schedules")).scalar()
    if found is not None:
        return int(found)
    conn.execute(sa.text("INSERT INTO fee_codes (code, amount) VALUES ('RS001', 0)"))
    conn.execute(
        sa.text("INSERT INTO filing_types (code, description) VALUES ('RSFIL', 'Routing slip filing')")
    )
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO fee_schedules (fee_schedule_id, filing_type_code, corp_type_code, fee_code, "
                "fee_start_date, created_on, created_by) VALUES ((SELECT coalesce(max(fee_schedule_id), 0) + 1 "
                "FROM fee_schedules), 'RSFIL', 'BC', 'RS001', '2020-01-01', now(), 'sandbox') RETURNING fee_schedule_id"
            )
        ).scalar_one()
    )


def insert_slip(
    conn: Connection,
    *,
    number: str,
    total: Decimal | str,
    status: str = "ACTIVE",
    invoices: Iterable[tuple[str, Decimal | str]] = (),
    parent_number: str | None = None,
    slip_date: date = date(2026, 1, 5),
    remaining: Decimal | str | None = None,
) -> dict[str, Any]:
    """One slip with its accounts, payment and invoices. Returns the ids written."""
    total = Decimal(str(total))
    created = datetime(slip_date.year, slip_date.month, slip_date.day, 17, 30)
    acc = _next_id(conn, "payment_accounts")
    conn.execute(
        sa.text(
            "INSERT INTO payment_accounts (id, name, payment_method, billable, version) "
            "VALUES (:id, :n, 'INTERNAL', true, 1)"
        ),
        {"id": acc, "n": f"Routing slip {number}"},
    )
    cfs = _next_id(conn, "cfs_accounts")
    base = 7000000 + cfs
    conn.execute(
        sa.text(
            "INSERT INTO cfs_accounts (id, cfs_account, cfs_party, cfs_site, account_id, status, version, "
            "payment_method) VALUES (:id, :a, :p, :s, :acc, :st, 1, 'INTERNAL')"
        ),
        {
            "id": cfs,
            "a": str(base),
            "p": str(base + 100000),
            "s": str(base + 200000),
            "acc": acc,
            "st": "INACTIVE" if parent_number else "ACTIVE",
        },
    )
    rows = [(str(s), Decimal(str(t))) for s, t in invoices]
    paid = sum((t for s, t in rows if s != "CANCELLED"), Decimal("0"))
    rs = _next_id(conn, "routing_slips")
    left = Decimal(str(remaining)) if remaining is not None else total - paid
    conn.execute(
        sa.text(
            "INSERT INTO routing_slips (created_on, id, number, payment_account_id, status, total, "
            "remaining_amount, created_by, created_name, routing_slip_date, parent_number, cas_version_suffix, "
            "cas_mismatch) VALUES (:c, :id, :n, :acc, :st, :t, :rem, 'sandbox-staff', 'Sandbox Staff', :d, "
            ":parent, 1, false)"
        ),
        {
            "c": created,
            "id": rs,
            "n": number,
            "acc": acc,
            "st": status,
            "t": total,
            "rem": left,
            "d": slip_date,
            "parent": parent_number,
        },
    )
    pay = _next_id(conn, "payments")
    conn.execute(
        sa.text(
            "INSERT INTO payments (id, payment_system_code, payment_method_code, payment_status_code, "
            "paid_amount, payment_date, payment_account_id, created_by, receipt_number, is_routing_slip) "
            "VALUES (:id, 'FAS', 'INTERNAL', 'COMPLETED', :t, :d, :acc, 'SYSTEM', :n, true)"
        ),
        {"id": pay, "t": total, "d": created, "acc": acc, "n": number},
    )
    inv_ids = []
    for i, (inv_status, amount) in enumerate(rows):
        inv = _next_id(conn, "invoices")
        refunded = inv_status in ("REFUNDED", "CREDITED")
        conn.execute(
            sa.text(
                "INSERT INTO invoices (created_by, created_on, id, invoice_status_code, total, paid, refund, "
                "refund_date, routing_slip, service_fees, corp_type_code, created_name, payment_account_id, "
                "payment_method_code, gst, payment_date) VALUES ('sandbox-staff', :c, :id, :st, :t, :paid, "
                ":refund, :rdate, :n, 0, 'BC', 'Sandbox Staff', :acc, 'INTERNAL', 0, :pdate)"
            ),
            {
                "c": created,
                "id": inv,
                "st": inv_status,
                "t": amount,
                "paid": amount if inv_status in ("PAID", "REFUNDED", "CREDITED", "REFUND_REQUESTED") else 0,
                "refund": amount if refunded else None,
                "rdate": created if refunded else None,
                "n": number,
                "acc": acc,
                "pdate": created if inv_status != "CANCELLED" else None,
            },
        )
        line = _next_id(conn, "payment_line_items")
        conn.execute(
            sa.text(
                "INSERT INTO payment_line_items (id, invoice_id, filing_fees, fee_schedule_id, quantity, description, "
                "pst, total, line_item_status_code, future_effective_fees, priority_fees, waived_fees, service_fees) "
                "VALUES (:id, :i, :t, :fs, 1, 'Routing slip filing', 0, :t, 'ACTIVE', 0, 0, 0, 0)"
            ),
            {"id": line, "i": inv, "t": amount, "fs": _fee_schedule(conn)},
        )
        if inv_status in ("PAID", "REFUNDED", "CREDITED"):
            conn.execute(
                sa.text(
                    "INSERT INTO receipts (id, invoice_id, receipt_number, receipt_date, receipt_amount) "
                    "VALUES (:id, :i, :n, :d, :t)"
                ),
                {"id": _next_id(conn, "receipts"), "i": inv, "n": number, "d": created, "t": float(amount)},
            )
        if refunded or inv_status == "REFUND_REQUESTED":
            conn.execute(
                sa.text(
                    "INSERT INTO refunds (invoice_id, requested_date, reason, requested_by, status, type) "
                    "VALUES (:i, :c, 'Sandbox refund', 'sandbox-staff', :st, 'INVOICE')"
                ),
                {
                    "i": inv,
                    "c": created,
                    "st": "PENDING_APPROVAL" if inv_status == "REFUND_REQUESTED" else "APPROVAL_NOT_REQUIRED",
                },
            )
        inv_ids.append(inv)
        del i
    return {
        "routing_slip": rs,
        "number": number,
        "payment_account": acc,
        "cfs_account": cfs,
        "payment": pay,
        "invoices": inv_ids,
    }


# -- scenarios ---------------------------------------------------------------------------------------------
SCENARIOS = ("routing_slip_void_ready", "routing_slip_void_blocked", "routing_slip_void_with_child")

Record = Callable[[str, dict[str, Iterable[int]], dict[str, Any]], None]


def add_scenarios(conn: Connection, record: Record, start: int = FIRST_SCENARIO_NUMBER) -> dict[str, str]:
    """Inject the three void scenarios; ``record(name, {table: ids}, details)`` is the generator's own
    bookkeeping. Returns scenario name -> slip number."""
    ready = insert_slip(
        conn,
        number=slip_number(start + 1),
        total="100.00",
        invoices=[("REFUNDED", "30.00"), ("REFUNDED", "20.00"), ("CANCELLED", "7.00")],
    )
    blocked = insert_slip(
        conn,
        number=slip_number(start + 2),
        total="80.00",
        invoices=[("REFUNDED", "30.00"), ("PAID", "25.00")],
    )
    parent = insert_slip(conn, number=slip_number(start + 3), total="60.00", invoices=[("REFUNDED", "40.00")])
    child = insert_slip(
        conn,
        number=slip_number(start + 4),
        total="40.00",
        status="LINKED",
        parent_number=parent["number"],
        remaining="0",
    )
    out = {}
    for name, slips in (
        ("routing_slip_void_ready", [ready]),
        ("routing_slip_void_blocked", [blocked]),
        ("routing_slip_void_with_child", [parent, child]),
    ):
        tables = {
            "routing_slips": [s["routing_slip"] for s in slips],
            "invoices": [i for s in slips for i in s["invoices"]],
            "payments": [s["payment"] for s in slips],
        }
        record(name, tables, {"number": slips[0]["number"], "children": [s["number"] for s in slips[1:]]})
        out[name] = slips[0]["number"]
    return out


# -- CFS receipts ------------------------------------------------------------------------------------------
RECEIPTS_SQL = """
SELECT rs.number, rs.parent_number, rs.cas_version_suffix, owner.status, rs.total, rs.remaining_amount,
       to_char(rs.routing_slip_date, 'YYYY-MM-DD') AS receipt_date,
       ca.cfs_party, ca.cfs_account, ca.cfs_site, ca.status AS cfs_status
FROM routing_slips rs
JOIN routing_slips owner ON owner.number = coalesce(rs.parent_number, rs.number)
JOIN LATERAL (SELECT c.* FROM cfs_accounts c WHERE c.account_id = owner.payment_account_id
              AND c.payment_method = 'INTERNAL' ORDER BY c.id DESC LIMIT 1) ca ON true
WHERE rs.total > 0 AND ca.cfs_party IS NOT NULL AND ca.cfs_account IS NOT NULL AND ca.cfs_site IS NOT NULL
ORDER BY rs.id
"""


def load_receipts(state: Any, rows: Iterable[Mapping[str, Any]]) -> None:
    """One CFS receipt per slip (a child's lives on its parent's site, as after sbc-pay's link job);
    reversed (``REV``) once the slip is VOID or NSF and its CFS account is no longer ACTIVE."""
    for r in rows:
        site = (r["cfs_party"], r["cfs_account"], r["cfs_site"])
        number = receipt_number(r["number"], r["parent_number"], r["cas_version_suffix"])
        owner_status = r["status"]
        if (
            not r["parent_number"]
            and owner_status == "VOID"
            and r["cfs_status"] == "INACTIVE"
            and int(r["cas_version_suffix"] or 1) > 1
        ):
            # the job reversed the receipt numbered before its suffix bump
            number = receipt_number(r["number"], r["parent_number"], int(r["cas_version_suffix"]) - 1)
        if (*site, number) in state.receipts:
            continue
        state.add_site(*site, payment_method="INTERNAL")
        rec = state.add_receipt(
            *site, number, r["total"], receipt_date=r["receipt_date"], payment_method="CASH RCPT"
        )
        if not r["parent_number"]:
            rec["unapplied"] = Decimal(str(r["remaining_amount"] or 0)).quantize(Decimal("0.01"))
        if (owner_status == "VOID" and r["cfs_status"] == "INACTIVE") or (
            owner_status == "NSF" and r["cfs_status"] == "FREEZE"
        ):
            rec["status"] = "REV"
            rec["unapplied"] = Decimal("0.00")


# -- sbc-pay's VOID job ------------------------------------------------------------------------------------
def run_void_job(conn: Connection, cfs: Any) -> list[str]:
    """``RoutingSlipTask.process_void``: every VOID slip whose INTERNAL CFS account is still ACTIVE. A slip
    with invoices is skipped with sbc-pay's error; else its receipts and its children's are reversed (FAS
    client ``cfs``), the CFS account goes INACTIVE, ``remaining_amount`` 0 and ``cas_version_suffix`` + 1.
    Commits per slip, like the job. Returns one line per slip."""
    log = []
    slips = (
        conn.execute(
            sa.text(
                "SELECT rs.id, rs.number, rs.parent_number, rs.cas_version_suffix, ca.id AS cfs_id, ca.cfs_party, "
                "ca.cfs_account, ca.cfs_site FROM routing_slips rs JOIN cfs_accounts ca ON ca.account_id = "
                "rs.payment_account_id WHERE rs.status = 'VOID' AND ca.payment_method = 'INTERNAL' AND "
                "ca.status = 'ACTIVE' ORDER BY rs.id"
            )
        )
        .mappings()
        .all()
    )
    for rs in slips:
        has = conn.execute(
            sa.text(
                "SELECT count(*) FROM invoices WHERE routing_slip = :n AND payment_method_code = 'INTERNAL'"
            ),
            {"n": rs["number"]},
        ).scalar_one()
        if has:
            log.append(f"{rs['number']}: Error on Processing VOID: VOID - has transactions/invoices.")
            continue
        site = (rs["cfs_party"], rs["cfs_account"], rs["cfs_site"])
        children = (
            conn.execute(
                sa.text(
                    "SELECT number, parent_number, cas_version_suffix FROM routing_slips WHERE parent_number = :n "
                    "ORDER BY id"
                ),
                {"n": rs["number"]},
            )
            .mappings()
            .all()
        )
        for slip in (rs, *children):
            number = receipt_number(slip["number"], slip["parent_number"], slip["cas_version_suffix"])
            cfs.reverse_receipt(*site, number, reason=VOID_REASON, comment=VOID_COMMENT)
        conn.execute(
            sa.text("UPDATE cfs_accounts SET status = 'INACTIVE' WHERE id = :i"), {"i": rs["cfs_id"]}
        )
        conn.execute(
            sa.text(
                "UPDATE routing_slips SET remaining_amount = 0, cas_version_suffix = cas_version_suffix + 1 "
                "WHERE id = :i"
            ),
            {"i": rs["id"]},
        )
        conn.commit()
        log.append(f"{rs['number']}: voided ({1 + len(children)} receipt(s) reversed)")
    return log
