"""Named statement scenarios: statement_gap_daily, statement_gap_weekly, statement_gap_monthly and
statement_duplicate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.errors import SandboxError
from paynb.sandbox.generator.core import (
    Generator,
    _all,
    _one,
)


def statement_scenarios(gen: Generator, conn: Connection) -> None:
    a = gen.as_of

    def delete(where: str, **params: Any) -> list[dict[str, Any]]:
        rows = _all(
            conn,
            # `where` is one of the fixed conditions below, values are bound
            "SELECT s.id, s.payment_account_id, pa.auth_account_id, s.frequency, s.from_date, s.to_date "  # noqa: S608
            "FROM statements s JOIN payment_accounts pa ON pa.id = s.payment_account_id "
            f"WHERE {where} ORDER BY s.id",
            **params,
        )
        ids = [r[0] for r in rows]
        conn.execute(sa.text("DELETE FROM statement_invoices WHERE statement_id = ANY(:i)"), {"i": ids})
        conn.execute(sa.text("DELETE FROM statements WHERE id = ANY(:i)"), {"i": ids})
        return [
            {
                "statement_id": r[0],
                "account_id": r[1],
                "auth_account_id": r[2],
                "frequency": r[3],
                "from_date": r[4].isoformat(),
                "to_date": r[5].isoformat(),
            }
            for r in rows
        ]

    # DAILY: the job did not run for one mid-week day (no DAILY statement for anyone), and one
    # account misses one more day
    day = a - timedelta(days=9)
    while day.weekday() in (4, 5, 6) or (day + timedelta(days=1)).day == 1:
        day -= timedelta(days=1)
    gone = delete("s.frequency = 'DAILY' AND s.to_date = :d AND NOT s.is_interim_statement", d=day)
    one = _one(
        conn,
        # a statement with invoices on it, so the gap has invoices that `invoice explain` can name it for
        "SELECT payment_account_id FROM statements WHERE frequency = 'DAILY' AND to_date = :d "
        "ORDER BY is_empty, paynb_sandbox.u(:seed, 70, payment_account_id), payment_account_id LIMIT 1",
        d=a - timedelta(days=40),
        seed=gen.seed,
    )
    if not gone or one is None:
        raise SandboxError(f"scale {gen.scale_name!r} has too few DAILY accounts for statement_gap_daily")
    gone += delete(
        "s.frequency = 'DAILY' AND s.to_date = :d AND s.payment_account_id = :p",
        d=a - timedelta(days=40),
        p=one,
    )
    record_gaps(gen, "statement_gap_daily", gone, {"missing_day_all_accounts": day.isoformat()})

    sat = a - timedelta(days=15)
    while sat.weekday() != 5:
        sat -= timedelta(days=1)
    acc = _one(
        conn,
        "SELECT s.payment_account_id FROM statements s JOIN payment_accounts pa ON pa.id = s.payment_account_id "
        "WHERE s.frequency = 'WEEKLY' AND s.to_date = :d AND NOT s.is_empty AND pa.payment_method <> 'EFT' "
        "ORDER BY paynb_sandbox.u(:seed, 71, s.payment_account_id), s.payment_account_id LIMIT 1",
        d=sat,
        seed=gen.seed,
    )
    if acc is None:
        raise SandboxError(f"scale {gen.scale_name!r} has no WEEKLY statement for statement_gap_weekly")
    record_gaps(
        gen,
        "statement_gap_weekly",
        delete("s.frequency = 'WEEKLY' AND s.to_date = :d AND s.payment_account_id = :p", d=sat, p=acc),
        {},
    )

    month_end = (a - timedelta(days=3)).replace(day=1) - timedelta(days=1)
    acc = _one(
        conn,
        "SELECT s.payment_account_id FROM statements s WHERE s.frequency = 'MONTHLY' AND s.to_date = :d "
        "ORDER BY s.is_empty, paynb_sandbox.u(:seed, 72, s.payment_account_id), s.payment_account_id LIMIT 1",
        d=month_end,
        seed=gen.seed,
    )
    if acc is None:
        raise SandboxError(f"scale {gen.scale_name!r} has no MONTHLY statement for statement_gap_monthly")
    record_gaps(
        gen,
        "statement_gap_monthly",
        delete(
            "s.frequency = 'MONTHLY' AND s.to_date = :d AND s.payment_account_id = :p", d=month_end, p=acc
        ),
        {},
    )

    # duplicate: the cron ran twice for one Saturday
    dup_sat = sat - timedelta(days=14)
    src = conn.execute(
        sa.text(
            "SELECT s.id, s.payment_account_id FROM statements s WHERE s.frequency = 'WEEKLY' AND s.to_date = :d "
            "AND NOT s.is_empty ORDER BY paynb_sandbox.u(:seed, 73, s.payment_account_id), s.id LIMIT 1"
        ),
        {"d": dup_sat, "seed": gen.seed},
    ).first()
    if src is None:
        raise SandboxError(f"scale {gen.scale_name!r} has no WEEKLY statement for statement_duplicate")
    new_id = _one(
        conn,
        "INSERT INTO statements (id, frequency, from_date, to_date, created_on, statement_settings_id, "
        "payment_account_id, notification_date, notification_status_code, is_interim_statement, "
        "overdue_notification_date, payment_methods, is_empty) "
        "SELECT (SELECT max(id) + 1 FROM statements), frequency, from_date, to_date, created_on, "
        "statement_settings_id, payment_account_id, notification_date, notification_status_code, "
        "is_interim_statement, overdue_notification_date, payment_methods, is_empty "
        "FROM statements WHERE id = :i RETURNING id",
        i=src[0],
    )
    conn.execute(
        sa.text(
            "INSERT INTO statement_invoices (id, statement_id, invoice_id) "
            "SELECT (SELECT max(id) FROM statement_invoices) + row_number() OVER (ORDER BY invoice_id), :n, "
            "invoice_id FROM statement_invoices WHERE statement_id = :i"
        ),
        {"n": new_id, "i": src[0]},
    )
    gen.record(
        "statement_duplicate",
        {"statements": [src[0], new_id], "payment_accounts": [src[1]]},
        {
            "account_id": src[1],
            "frequency": "WEEKLY",
            "from_date": (dup_sat - timedelta(days=6)).isoformat(),
            "to_date": dup_sat.isoformat(),
            "statement_ids": [src[0], new_id],
        },
    )


def record_gaps(gen: Generator, name: str, gone: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    gen.record(
        name,
        {"payment_accounts": sorted({g["account_id"] for g in gone})},
        {**extra, "periods": gone, "deleted_statement_ids": [g["statement_id"] for g in gone]},
    )
