"""The CAS settlement CSVs of the sandbox bucket (ar/), written through :mod:`paynb.formats.settlement_csv`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.formats.settlement_csv import SettlementRow, write_settlement_csv
from paynb.sandbox.generator.core import (
    STORED_CSV_DAYS,
    Generator,
    _all,
    csv_name,
)
from paynb.timez import pacific_midnight_utc


def settlement_csvs(gen: Generator, conn: Connection) -> None:
    files = gen.picks["files"]
    recent = [
        r[0]
        for r in _all(
            conn,
            "SELECT to_date(substr(file_name, 18, 8), 'YYYYMMDD') FROM cas_settlements "
            "WHERE processed_on IS NOT NULL AND received_on >= :lo ORDER BY 1",
            lo=pacific_midnight_utc(gen.as_of - timedelta(days=STORED_CSV_DAYS)),
        )
    ]
    wanted = sorted(set(recent) | set(files.values()) | {gen.picks["nsf"]["appl_date"]})
    rows = _all(
        conn,
        """SELECT x, kind, source, total, cfs_account, number, status FROM (
               SELECT p.appl_date AS x, 'PAD' AS kind,
                      coalesce(p.receipt_number, (3000000000 + p.min_id)::text) AS source,
                      p.total, c.cfs_account, p.invoice_number AS number,
                      CASE WHEN p.state IN ('nsf', 'nsf_unprocessed') THEN 'Not PAID' ELSE 'Fully PAID' END AS status,
                      p.min_id AS k
                 FROM g_pad p JOIN cfs_accounts c ON c.id = p.account_id
                WHERE p.state IN ('paid', 'nsf', 'settled_unprocessed', 'nsf_unprocessed')
                  AND p.appl_date = ANY(:days)
               UNION ALL
               SELECT s.ob_appl, 'OB', 'OB' || lpad(s.id::text, 8, '0'), s.total, c.cfs_account, s.ref_number,
                      'Fully PAID', s.id
                 FROM g_st s JOIN cfs_accounts c ON c.id = s.account_id
                WHERE s.method = 'ONLINE_BANKING' AND s.state IN ('paid', 'settled_unprocessed')
                  AND s.ob_appl = ANY(:days)
           ) x ORDER BY x, kind DESC, k""",
        days=wanted,
    )
    by_day: dict[date, list[sa.Row]] = {d: [] for d in wanted}
    for r in rows:
        by_day[r[0]].append(r)
    payload = [{"k": f"ar/{csv_name(d)}", "c": render_settlement_csv(d, by_day[d])} for d in wanted]
    conn.execute(
        sa.text(
            "INSERT INTO paynb_sandbox.store_objects (key, content, content_type) VALUES (:k, :c, 'text/csv')"
        ),
        payload,
    )
    gen.picks["stored_csvs"] = [p["k"] for p in payload]


def render_settlement_csv(day: date, rows: Iterable[Any]) -> bytes:
    """A CAS payment-reconciliation CSV for one Application Date, written by :mod:`paynb.formats.settlement_csv`.

    ``rows``: (day, kind 'PAD'|'OB', source number, total, customer account, target number, status).
    A 'Not PAID' PAD row is followed by its PADR reversal, as CAS sends them.
    """
    app = (day - date(2000, 1, 1)).days * 100_000
    zero = Decimal("0.00")
    out: list[SettlementRow] = []
    n = 0  # Application Ids: one per row, and the one after an NSF pair is skipped
    for _d, kind, source, total, account, number, status in rows:
        total = Decimal(total).quantize(Decimal("0.01"))
        n += 1
        if kind == "PAD" and status == "Not PAID":
            records = [("PADP", zero, total, "001", "NSF"), ("PADR", zero, total, "001", "NSF")]
        elif kind == "PAD":
            records = [("PADP", total, zero, "", "")]
        else:
            records = [("BOLP", total, zero, "", "")]
        source_type = "BCR Online Banking Payments" if kind != "PAD" else "BCR-PAD Daily"
        for record, applied, outstanding, code, reason in records:
            out.append(
                SettlementRow(
                    record,
                    source_type,
                    source,
                    app + n,
                    day,
                    applied,
                    account,
                    "INV",
                    number,
                    total,
                    outstanding,
                    status,
                    code,
                    reason,
                )
            )
            if len(records) > 1:
                n += 1
    return write_settlement_csv(out, line_end="\n").encode("utf-8")
