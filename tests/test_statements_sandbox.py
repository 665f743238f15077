"""Gap detection and generation on the `small` sandbox: exactly the injected scenarios, idempotent re-runs."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.db import create_engine
from paynb.ops.statements import find_statement_gaps, generate, generate_range
from paynb.ops.statements.generation import GenerationResult


def scenario_details(url: str, name: str) -> dict:
    eng = sa.create_engine(url, poolclass=NullPool)
    with eng.connect() as c:
        details = c.execute(
            sa.text("SELECT details FROM paynb_sandbox.scenarios WHERE name = :n LIMIT 1"), {"n": name}
        ).scalar_one()
    eng.dispose()
    return details


def injected_gaps(url: str) -> set[tuple]:
    gaps = set()
    for name in ("statement_gap_daily", "statement_gap_weekly", "statement_gap_monthly"):
        for p in scenario_details(url, name)["periods"]:
            gaps.add(
                (
                    p["account_id"],
                    p["frequency"],
                    date.fromisoformat(p["from_date"]),
                    date.fromisoformat(p["to_date"]),
                )
            )
    return gaps


def statement_rows(url: str, day: date) -> list[tuple]:
    eng = sa.create_engine(url, poolclass=NullPool)
    sql = """SELECT s.id, s.payment_account_id, s.frequency, s.from_date, s.to_date, s.notification_status_code,
                    s.payment_methods, s.is_empty,
                    coalesce(array_agg(si.invoice_id ORDER BY si.invoice_id)
                             FILTER (WHERE si.invoice_id IS NOT NULL), '{}')
               FROM statements s LEFT JOIN statement_invoices si ON si.statement_id = s.id
              WHERE s.to_date = :d GROUP BY s.id ORDER BY s.id"""
    with eng.connect() as c:
        rows = [tuple(r) for r in c.execute(sa.text(sql), {"d": day})]
    eng.dispose()
    return rows


def test_gaps_are_exactly_the_injected_scenarios(sandbox_db_url: str, sandbox_as_of: date) -> None:
    report = find_statement_gaps(engine=create_engine(url=sandbox_db_url))
    assert report.to_date == sandbox_as_of - timedelta(days=1)  # default: yesterday, Pacific
    found = {
        (r.payment_account_id, r.frequency, r.from_date, r.to_date)
        for r in report.missing.itertuples(index=False)
    }
    expected = injected_gaps(sandbox_db_url)
    assert len(expected) >= 4  # a whole day, one more account-day, one week, one month
    assert found == expected
    assert report.summary()["missing"].sum() == len(expected)

    dup = scenario_details(sandbox_db_url, "statement_duplicate")
    assert report.duplicates["statement_ids"].tolist() == [dup["statement_ids"]]
    assert report.inconsistent.empty

    # the whole-day gap is one date run, the single-account gaps are account runs
    whole_day = scenario_details(sandbox_db_url, "statement_gap_daily")["missing_day_all_accounts"]
    assert f"python3 invoke_jobs.py GENERATE_STATEMENTS {whole_day}" in report.commands
    assert len(report.commands) == len({g[3] for g in expected})


def test_gaps_filters(sandbox_db_url: str) -> None:
    eng = create_engine(url=sandbox_db_url)
    weekly = scenario_details(sandbox_db_url, "statement_gap_weekly")["periods"][0]
    report = find_statement_gaps(frequency="weekly", account=weekly["auth_account_id"], engine=eng)
    assert [(r.frequency, str(r.to_date)) for r in report.missing.itertuples()] == [
        ("WEEKLY", weekly["to_date"])
    ]
    assert report.commands == (
        f"python3 invoke_jobs.py GENERATE_STATEMENTS {weekly['to_date']} {weekly['auth_account_id']}",
    )
    day = date.fromisoformat(weekly["to_date"])
    only_day = find_statement_gaps(day, day, frequency="WEEKLY", engine=eng)
    assert len(only_day.missing) == 1


def test_range_fills_every_injected_gap_in_one_run(sandbox_db_url: str, sandbox_as_of: date) -> None:
    eng = create_engine(url=sandbox_db_url)
    expected = injected_gaps(sandbox_db_url)
    first = min(g[3] for g in expected)
    last = sandbox_as_of - timedelta(days=1)
    plan = generate_range(first, last, engine=eng)
    assert plan.total_statements == len(expected)
    assert sum(c.reused for c in plan.counts) == 0
    result = generate_range(first, last, apply=True, confirm=plan.sha256, engine=eng)
    assert result.written["statements_inserted"] == len(expected)
    assert result.written["statement_invoices_deleted"] == 0
    after = find_statement_gaps(engine=eng)
    assert after.missing.empty
    assert len(after.duplicates) == 1  # filling gaps does not touch the duplicate


def test_override_twice_keeps_one_statement_per_period_and_the_ids(sandbox_db_url: str) -> None:
    eng = create_engine(url=sandbox_db_url)
    dup = scenario_details(sandbox_db_url, "statement_duplicate")
    day = date.fromisoformat(dup["to_date"])  # a Saturday with a duplicated WEEKLY statement
    before = statement_rows(sandbox_db_url, day)
    runs: list[GenerationResult] = []
    for _ in range(2):
        plan = generate(day, engine=eng)
        runs.append(generate(day, apply=True, confirm=plan.sha256, engine=eng))
    first, second = runs
    after = statement_rows(sandbox_db_url, day)
    assert [r[0] for r in after] == [r[0] for r in before]  # no row added or removed, same ids
    assert first.written["statements_inserted"] == second.written["statements_inserted"] == 0
    with_invoices: dict[tuple, list[int]] = {}
    for r in after:
        if r[8]:
            with_invoices.setdefault(r[1:5], []).append(r[0])
    assert all(len(ids) == 1 for ids in with_invoices.values())  # one live statement per period
    # the duplicate kept its row (ids are referenced) but lost its invoices; the lowest id was reused
    keep, extra = dup["statement_ids"]
    rows = {r[0]: r for r in after}
    assert rows[keep][8] and not rows[extra][8] and rows[extra][7] is False
    assert {r[5] for r in after if r[0] != extra} == {"SKIP"}
    # re-running changed nothing
    assert statement_rows(sandbox_db_url, day) == after


def test_sandbox_statements_follow_the_rules(sandbox_db_url: str, sandbox_as_of: date) -> None:
    """Regenerating every past day changes no statement's invoices: the generator and docs/statements.md agree."""
    sql = """SELECT s.id, s.statement_settings_id, s.payment_account_id, s.frequency, s.from_date, s.to_date,
                    s.payment_methods, s.is_empty,
                    coalesce(array_agg(si.invoice_id ORDER BY si.invoice_id)
                             FILTER (WHERE si.invoice_id IS NOT NULL), '{}')
               FROM statements s LEFT JOIN statement_invoices si ON si.statement_id = s.id
              GROUP BY s.id"""
    raw = sa.create_engine(sandbox_db_url, poolclass=NullPool)

    def rows() -> dict[int, tuple]:
        with raw.connect() as c:
            return {r[0]: tuple(r[1:]) for r in c.execute(sa.text(sql))}

    before = rows()
    eng = create_engine(url=sandbox_db_url)
    with raw.connect() as c:
        first = c.execute(sa.text("SELECT min(from_date) FROM statement_settings")).scalar_one()
    last = sandbox_as_of - timedelta(days=1)
    plan = generate_range(first, last, missing_only=False, engine=eng)
    generate_range(first, last, missing_only=False, apply=True, confirm=plan.sha256, engine=eng)
    after = rows()
    raw.dispose()

    dup = scenario_details(sandbox_db_url, "statement_duplicate")["statement_ids"]
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {dup[1]}  # only the extra duplicate lost its invoices
    added = {(v[1], v[2], v[3], v[4]) for k, v in after.items() if k not in before}
    assert added == injected_gaps(sandbox_db_url)
