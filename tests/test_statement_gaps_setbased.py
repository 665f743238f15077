"""The set-based gap query returns exactly what the per-period probe query returned, on the `small`
sandbox (with its injected gaps, plus more made here), over the whole history and with filters."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.db import create_engine as paynb_engine
from paynb.db import read_connection
from paynb.ops.statements.gaps import _EXPECTED, _find_duplicates
from tests.statement_gaps_reference import DUPLICATES_SORTED, EXPECTED_PER_ROW


def rows(conn, sql: str, params: dict) -> list[tuple]:
    return sorted((tuple(r) for r in conn.execute(sa.text(sql), params)), key=repr)


def make_more_gaps(conn) -> None:
    """Remove some statements of every frequency, and end a WEEKLY setting mid-week with no
    statement for it, so every kind of row (missing, GAP, accounts) is exercised."""
    for freq in ("DAILY", "WEEKLY", "MONTHLY"):
        ids = """SELECT id FROM statements WHERE frequency = :f AND NOT is_interim_statement
                  ORDER BY (id * 7919) % 1009 LIMIT 25"""
        conn.execute(sa.text(f"DELETE FROM statement_invoices WHERE statement_id IN ({ids})"), {"f": freq})
        conn.execute(sa.text(f"DELETE FROM statements WHERE id IN ({ids})"), {"f": freq})
    # one more duplicated period, and an interim statement sharing a period (not a duplicate)
    copy = """INSERT INTO statements (frequency, from_date, to_date, created_on, statement_settings_id,
                                     payment_account_id, is_interim_statement, is_empty)
              SELECT frequency, from_date, to_date, created_on, statement_settings_id, payment_account_id,
                     :interim, true
                FROM statements WHERE frequency = :f AND NOT is_interim_statement ORDER BY id DESC LIMIT 1"""
    conn.execute(sa.text(copy), {"f": "DAILY", "interim": False})
    conn.execute(sa.text(copy), {"f": "MONTHLY", "interim": True})


@pytest.fixture
def gap_db(sandbox_db_url: str) -> str:
    eng = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with eng.begin() as c:
        make_more_gaps(c)
    eng.dispose()
    return sandbox_db_url


def test_same_rows_as_the_per_period_query(gap_db: str, sandbox_as_of: date) -> None:
    eng = sa.create_engine(gap_db, poolclass=NullPool)
    with eng.connect() as c:
        first = c.execute(sa.text("SELECT min(from_date) FROM statement_settings")).scalar_one()
        account = c.execute(
            sa.text("""SELECT pa.auth_account_id FROM statements s
                         JOIN payment_accounts pa ON pa.id = s.payment_account_id
                        WHERE pa.auth_account_id IS NOT NULL ORDER BY s.id LIMIT 1""")
        ).scalar_one()
        last = sandbox_as_of - timedelta(days=1)
        cases = [
            {"from_date": first, "to_date": last, "frequency": None, "account": None},
            {"from_date": last - timedelta(days=40), "to_date": last, "frequency": None, "account": None},
            {"from_date": first, "to_date": last, "frequency": "WEEKLY", "account": None},
            {"from_date": first, "to_date": last, "frequency": "DAILY", "account": None},
            {"from_date": first, "to_date": last, "frequency": "MONTHLY", "account": None},
            {"from_date": first, "to_date": last, "frequency": None, "account": account},
        ]
        for params in cases:
            old = rows(c, EXPECTED_PER_ROW, params)
            new = rows(c, _EXPECTED, params)
            assert new == old, params
            with read_connection(paynb_engine(url=gap_db)) as pc:
                dups = _find_duplicates(pc, params)
            assert [tuple(d.values()) for d in dups] == [
                tuple(r) for r in c.execute(sa.text(DUPLICATES_SORTED), params)
            ], params
        # the whole-history case really has gaps of every kind to compare
        whole = rows(c, _EXPECTED, cases[0])
        assert {"DAILY", "WEEKLY", "MONTHLY"} <= {r[2] for r in whole if r[0] == "missing"}
        assert any(r[0] == "kind" and r[2] == "GAP" for r in whole)  # settings ending mid-week
        assert len(list(c.execute(sa.text(DUPLICATES_SORTED), cases[0]))) >= 2
    eng.dispose()
