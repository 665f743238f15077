"""paynb's set-based generation vs the per-account reference, on the `small` sandbox.

For every statement day of a 10-week range (Saturdays and month ends included), with and without a
date override, with and without an account filter: the reference runs in a transaction that is rolled
back, then paynb applies through its public API from the same state, and the statements ending on that
day (ids masked unless reused) and their invoices must be identical. The state carries over from day to
day, so later days also see the duplicates that earlier non-override runs made.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.db import create_engine
from paynb.ops.statements import generate
from paynb.timez import utcnow_naive
from tests.statements_reference import connect, reference_generate, snapshot, table_counts

WEEKS = 10


def busiest_account(url: str) -> str:
    """An auth account with several frequencies in its settings history and many invoices."""
    eng = sa.create_engine(url, poolclass=NullPool)
    sql = """SELECT pa.auth_account_id
               FROM payment_accounts pa
               JOIN statement_settings ss ON ss.payment_account_id = pa.id
              WHERE pa.auth_account_id IS NOT NULL
              GROUP BY pa.id, pa.auth_account_id
              ORDER BY count(DISTINCT ss.frequency) DESC,
                       (SELECT count(*) FROM invoices i WHERE i.payment_account_id = pa.id) DESC, pa.id
              LIMIT 1"""
    with eng.connect() as c:
        account = c.execute(sa.text(sql)).scalar_one()
    eng.dispose()
    return account


def days_under_test(as_of: date) -> list[date]:
    end = as_of - timedelta(days=1)
    days = [end - timedelta(days=n) for n in range(7 * WEEKS)][::-1]
    assert sum(d.weekday() == 5 for d in days) == WEEKS
    assert sum((d + timedelta(days=1)).day == 1 for d in days) >= 2
    return days


@pytest.mark.slow
@pytest.mark.parametrize("override", [True, False], ids=["override", "nightly"])
@pytest.mark.parametrize("filtered", [False, True], ids=["all-accounts", "one-account"])
def test_same_statements_as_reference(
    sandbox_db_url: str, sandbox_as_of: date, override: bool, filtered: bool
):
    account = busiest_account(sandbox_db_url) if filtered else None
    engine = create_engine(url=sandbox_db_url)
    conn = connect(sandbox_db_url)
    written = 0
    try:
        for day in days_under_test(sandbox_as_of):
            run_date = utcnow_naive()
            with conn.cursor() as cur:
                max_id = table_counts(cur)[2]
                reference_generate(conn, day, account, override=override, created_on=run_date.date())
                expected = snapshot(cur, day, max_id)
                expected_counts = table_counts(cur)[:2]
            conn.rollback()

            plan = generate(day, account, override=override, engine=engine, run_time=run_date)
            result = generate(
                day,
                account,
                override=override,
                apply=True,
                confirm=plan.sha256,
                engine=engine,
                run_time=run_date,
            )
            with conn.cursor() as cur:
                got = snapshot(cur, day, max_id)
                got_counts = table_counts(cur)[:2]
            conn.rollback()

            assert got == expected, f"{day} account={account} override={override}"
            assert got_counts == expected_counts, day
            # the dry run said exactly what the apply wrote
            assert result.written["statements_inserted"] == sum(c.new for c in plan.counts)
            assert result.written["statements_updated"] <= sum(
                c.reused for c in plan.counts
            )  # unchanged rows skipped
            assert result.written["statement_invoices_inserted"] == sum(c.links_added for c in plan.counts)
            assert result.written["statement_invoices_deleted"] == sum(c.links_removed for c in plan.counts)
            written += plan.total_statements
    finally:
        conn.close()
    assert written > 0


def _add_second_weekly_setting(url: str, saturday: date) -> tuple[int, str]:
    """Give a WEEKLY account with invoices that week a second active WEEKLY setting (bad settings
    history) and remove the week's statements, so the first run has none to reuse."""
    sunday = saturday - timedelta(days=6)
    eng = sa.create_engine(url, poolclass=NullPool)
    pick = """SELECT ss.payment_account_id, pa.auth_account_id
                FROM statement_settings ss JOIN payment_accounts pa ON pa.id = ss.payment_account_id
               WHERE ss.frequency = 'WEEKLY' AND ss.from_date <= :sat
                 AND (ss.to_date IS NULL OR ss.to_date >= :sat) AND pa.auth_account_id IS NOT NULL
                 AND coalesce(pa.payment_method, '') <> 'EFT'
                 AND EXISTS (SELECT 1 FROM invoices i WHERE i.payment_account_id = pa.id
                              AND i.created_on >= :sun + 1 AND i.created_on < :sat)
               ORDER BY ss.payment_account_id LIMIT 1"""
    with eng.begin() as c:
        account_id, auth = c.execute(sa.text(pick), {"sat": saturday, "sun": sunday}).one()
        c.execute(
            sa.text("""INSERT INTO statement_settings (frequency, payment_account_id, from_date)
                       VALUES ('WEEKLY', :a, :sun - 14)"""),
            {"a": account_id, "sun": sunday},
        )
        week = """SELECT id FROM statements WHERE payment_account_id = :a AND frequency = 'WEEKLY'
                   AND from_date = :sun AND to_date = :sat"""
        params = {"a": account_id, "sun": sunday, "sat": saturday}
        c.execute(sa.text(f"DELETE FROM statement_invoices WHERE statement_id IN ({week})"), params)
        c.execute(sa.text(f"DELETE FROM statements WHERE id IN ({week})"), params)
    eng.dispose()
    return account_id, auth


def _week_rows(url: str, account_id: int, saturday: date) -> list[tuple[int, int]]:
    """(statement id, invoice links) of the account's WEEKLY statements for the week, by id."""
    eng = sa.create_engine(url, poolclass=NullPool)
    sql = """SELECT s.id, count(si.id) FROM statements s
               LEFT JOIN statement_invoices si ON si.statement_id = s.id
              WHERE s.payment_account_id = :a AND s.frequency = 'WEEKLY' AND s.to_date = :sat
              GROUP BY s.id ORDER BY s.id"""
    with eng.connect() as c:
        rows = [(r[0], r[1]) for r in c.execute(sa.text(sql), {"a": account_id, "sat": saturday})]
    eng.dispose()
    return rows


@pytest.mark.slow
def test_two_settings_of_one_frequency_rerun_keeps_the_rows(sandbox_db_url: str, sandbox_as_of: date):
    """Two active WEEKLY settings of one account: the first run writes a statement per setting, every
    override re-run maps both settings to the reused (lowest id) statement and empties the other, so
    three runs of the same Saturday leave two rows, as the job does (and as the reference does)."""
    saturday = sandbox_as_of - timedelta(days=1)
    while saturday.weekday() != 5:
        saturday -= timedelta(days=1)
    account_id, _ = _add_second_weekly_setting(sandbox_db_url, saturday)
    engine = create_engine(url=sandbox_db_url)
    conn = connect(sandbox_db_url)
    try:
        for run in range(3):
            run_date = utcnow_naive()
            with conn.cursor() as cur:
                max_id = table_counts(cur)[2]
                reference_generate(conn, saturday, override=True, created_on=run_date.date())
                expected = snapshot(cur, saturday, max_id)
            conn.rollback()
            plan = generate(saturday, engine=engine, run_time=run_date)
            generate(saturday, apply=True, confirm=plan.sha256, engine=engine, run_time=run_date)
            with conn.cursor() as cur:
                got = snapshot(cur, saturday, max_id)
            conn.rollback()
            assert got == expected, f"run {run + 1}"

            rows = _week_rows(sandbox_db_url, account_id, saturday)
            assert len(rows) == 2, f"run {run + 1}: {rows}"
            if run == 0:
                assert all(links > 0 for _, links in rows)  # one new statement per setting
            else:
                # the lowest id holds the invoices once, the other one is emptied
                assert rows[0][1] > 0 and rows[1][1] == 0, f"run {run + 1}: {rows}"
    finally:
        conn.close()
