"""Statement generation rules (docs/statements.md, docs/statements.md#observed-behaviour) on hand-made data, including the DST windows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.errors import ConfirmMismatch, InputError, StalePlanError
from paynb.ops.statements import find_statement_gaps, generate, generate_range, periods_for_day
from paynb.ops.statements.generation import GenerationResult
from tests.statements_reference import connect, reference_generate, snapshot, table_counts

RUN = datetime(2025, 12, 1, 7, 30)  # 23:30 Pacific on Nov 30: created_on must be the UTC date


class Data:
    """Tiny builder for hand-made pay-db rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url, poolclass=NullPool)

    def _one(self, sql: str, **params) -> int:
        with self.engine.begin() as c:
            return c.execute(sa.text(sql), params).scalar_one()

    def account(self, auth: str | None, method: str | None = "PAD", notify: bool = False) -> int:
        return self._one(
            """INSERT INTO payment_accounts (auth_account_id, name, payment_method,
                      statement_notification_enabled) VALUES (:a, :a, :m, :n) RETURNING id""",
            a=auth,
            m=method,
            n=notify,
        )

    def setting(self, account_id: int, frequency: str, start: str, end: str | None = None) -> int:
        return self._one(
            """INSERT INTO statement_settings (frequency, payment_account_id, from_date, to_date)
               VALUES (:f, :a, :s, :e) RETURNING id""",
            f=frequency,
            a=account_id,
            s=date.fromisoformat(start),
            e=date.fromisoformat(end) if end else None,
        )

    def invoice(self, account_id: int, created_on: str, method: str = "PAD", status: str = "APPROVED") -> int:
        return self._one(
            """INSERT INTO invoices (created_by, created_on, invoice_status_code, total,
                      payment_account_id, payment_method_code)
               VALUES ('test', :c, :s, 10.00, :a, :m) RETURNING id""",
            c=datetime.fromisoformat(created_on),
            s=status,
            a=account_id,
            m=method,
        )

    def statement(
        self,
        account_id: int,
        frequency: str,
        start: str,
        end: str,
        *,
        interim: bool = False,
        status: str = "SUCCESS",
        is_empty: bool = True,
        methods: str | None = None,
        invoices: tuple[int, ...] = (),
    ) -> int:
        sid = self._one(
            """INSERT INTO statements (frequency, payment_account_id, from_date, to_date, created_on,
                      notification_status_code, is_interim_statement, is_empty, payment_methods)
               VALUES (:f, :a, :s, :e, :s, :st, :i, :empty, :pm) RETURNING id""",
            f=frequency,
            a=account_id,
            s=date.fromisoformat(start),
            e=date.fromisoformat(end),
            st=status,
            i=interim,
            empty=is_empty,
            pm=methods,
        )
        with self.engine.begin() as c:
            for inv in invoices:
                c.execute(
                    sa.text("INSERT INTO statement_invoices (statement_id, invoice_id) VALUES (:s, :i)"),
                    {"s": sid, "i": inv},
                )
        return sid

    def statements(self, to_date: str | None = None) -> list[dict]:
        sql = """SELECT s.id, s.frequency, pa.auth_account_id AS account, s.from_date, s.to_date,
                        s.created_on, s.notification_status_code AS status, s.payment_methods,
                        s.is_empty, s.statement_settings_id,
                        coalesce(array_agg(si.invoice_id ORDER BY si.invoice_id)
                                 FILTER (WHERE si.invoice_id IS NOT NULL), '{}') AS invoices
                   FROM statements s
                   JOIN payment_accounts pa ON pa.id = s.payment_account_id
                   LEFT JOIN statement_invoices si ON si.statement_id = s.id
                  WHERE CAST(:d AS date) IS NULL OR s.to_date = CAST(:d AS date)
                  GROUP BY s.id, pa.auth_account_id ORDER BY s.id"""
        with self.engine.connect() as c:
            d = date.fromisoformat(to_date) if to_date else None
            return [dict(r) for r in c.execute(sa.text(sql), {"d": d}).mappings()]


@pytest.fixture
def data(empty_db_url: str) -> Data:
    d = Data(empty_db_url)
    yield d
    d.engine.dispose()


def engine_for(url: str) -> sa.Engine:
    from paynb.db import create_engine

    return create_engine(url=url)


def apply(url: str, day: str, account: str | None = None, *, override: bool = True) -> GenerationResult:
    eng = engine_for(url)
    plan = generate(day, account, override=override, engine=eng, run_time=RUN)
    result = generate(
        day, account, override=override, apply=True, confirm=plan.sha256, engine=eng, run_time=RUN
    )
    assert isinstance(result, GenerationResult)
    assert result.plan.sha256 == plan.sha256
    return result


def by_key(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["account"], r["frequency"], r["from_date"], r["to_date"]): r for r in rows}


# -- periods -----------------------------------------------------------------------------------------


def test_periods_for_saturday_month_end_and_sunday() -> None:
    sat = periods_for_day(date(2025, 5, 31))  # a Saturday and a month end
    assert [(p.kind, p.from_date, p.to_date) for p in sat] == [
        ("DAILY", date(2025, 5, 31), date(2025, 5, 31)),
        ("WEEKLY", date(2025, 5, 25), date(2025, 5, 31)),
        ("MONTHLY", date(2025, 5, 1), date(2025, 5, 31)),
    ]
    assert [p.kind for p in periods_for_day(date(2025, 6, 1))] == ["DAILY"]  # Sunday: no 1-day gap
    wed = periods_for_day(date(2025, 6, 4))
    assert [(p.kind, p.from_date) for p in wed] == [("DAILY", date(2025, 6, 4)), ("GAP", date(2025, 6, 1))]
    # the job example: override 2022-06-25 -> weekly 2022-06-19..2022-06-25
    weekly = [p for p in periods_for_day(date(2022, 6, 25)) if p.kind == "WEEKLY"][0]
    assert (weekly.from_date, weekly.to_date) == (date(2022, 6, 19), date(2022, 6, 25))


def test_pacific_windows_across_dst() -> None:
    feb28 = periods_for_day(date(2025, 2, 28))[0]
    assert feb28.bounds_utc() == (datetime(2025, 2, 28, 8), datetime(2025, 3, 1, 8))
    mar12 = periods_for_day(date(2025, 3, 12))[0]
    assert mar12.bounds_utc() == (datetime(2025, 3, 12, 7), datetime(2025, 3, 13, 7))
    march = [p for p in periods_for_day(date(2025, 3, 31)) if p.kind == "MONTHLY"][0]
    assert march.bounds_utc() == (datetime(2025, 3, 1, 8), datetime(2025, 4, 1, 7))
    nov2 = periods_for_day(date(2025, 11, 2))[0]
    assert nov2.bounds_utc() == (datetime(2025, 11, 2, 7), datetime(2025, 11, 3, 8))  # 25 hours


# -- DST windows on the database -----------------------------------------------------------------------

DST_EDGES = {
    # (statement day, invoice created_on UTC, on that day's DAILY statement?)
    "2025-03-08": [
        ("2025-03-08 07:59:59", False),
        ("2025-03-08 08:00:00", True),
        ("2025-03-09 07:59:59", True),
    ],
    "2025-03-09": [
        ("2025-03-09 08:00:00", True),
        ("2025-03-10 06:59:59", True),
        ("2025-03-10 07:00:00", False),
    ],
    "2025-03-10": [
        ("2025-03-10 07:00:00", True),
        ("2025-03-11 06:59:59", True),
        ("2025-03-11 07:00:00", False),
    ],
    "2025-03-12": [
        ("2025-03-12 07:00:00", True),
        ("2025-03-13 06:59:59", True),
        ("2025-03-13 07:30:00", False),
    ],
    "2025-11-01": [("2025-11-01 07:00:00", True), ("2025-11-02 06:59:59", True)],
    "2025-11-02": [
        ("2025-11-02 07:00:00", True),
        ("2025-11-03 07:59:59", True),
        ("2025-11-03 08:00:00", False),
    ],
    "2025-11-03": [
        ("2025-11-03 08:00:00", True),
        ("2025-11-04 07:59:59", True),
        ("2025-11-04 08:00:00", False),
    ],
}


def test_daily_windows_around_dst(data: Data) -> None:
    acct = data.account("1001")
    data.setting(acct, "DAILY", "2025-01-01")
    ids = {ts: data.invoice(acct, ts) for edges in DST_EDGES.values() for ts, _ in edges}
    for day, edges in DST_EDGES.items():
        apply(data.url, day)
        stmt = by_key(data.statements(day))[
            ("1001", "DAILY", date.fromisoformat(day), date.fromisoformat(day))
        ]
        on = set(stmt["invoices"])
        for ts, expected in edges:
            assert (ids[ts] in on) is expected, (day, ts)


def test_monthly_window_is_dst_correct_and_ignores_setting_start(data: Data) -> None:
    acct = data.account("2002")
    data.setting(acct, "MONTHLY", "2025-03-13")  # starts mid-month: March is still 03-01..03-31
    inside = [
        data.invoice(acct, ts) for ts in ("2025-03-01 08:00:00", "2025-03-10 12:00:00", "2025-04-01 06:59:59")
    ]
    outside = [data.invoice(acct, ts) for ts in ("2025-03-01 07:59:59", "2025-04-01 07:00:00")]
    apply(data.url, "2025-03-31")
    stmt = by_key(data.statements("2025-03-31"))[("2002", "MONTHLY", date(2025, 3, 1), date(2025, 3, 31))]
    assert stmt["invoices"] == sorted(inside)
    assert not set(outside) & set(stmt["invoices"])
    # the DST days match the per-account reference too
    assert_matches_reference(data.url, "2025-03-31")


# -- invoice selection, payment methods, notifications ---------------------------------------------------


def test_all_statuses_eft_matching_and_payment_methods(data: Data) -> None:
    pad = data.account("3001", "PAD", notify=True)
    eft = data.account("3002", "EFT", notify=True)
    idle = data.account("3003", "ONLINE_BANKING")
    for a in (pad, eft, idle):
        data.setting(a, "DAILY", "2025-01-01")
    ts = "2025-06-10 18:00:00"
    pad_invs = [
        data.invoice(pad, ts, "PAD", "DELETED"),
        data.invoice(pad, ts, "CC", "CANCELLED"),
        data.invoice(pad, ts, "PAD", "REFUNDED"),
    ]
    data.invoice(pad, ts, "EFT", "APPROVED")  # not on a PAD account's statement
    eft_inv = data.invoice(eft, ts, "EFT", "APPROVED")
    data.invoice(eft, ts, "PAD", "PAID")  # not on an EFT account's statement
    apply(data.url, "2025-06-10", override=False)
    got = by_key(data.statements("2025-06-10"))
    day = date(2025, 6, 10)
    s_pad, s_eft, s_idle = (got[(a, "DAILY", day, day)] for a in ("3001", "3002", "3003"))
    assert s_pad["invoices"] == sorted(pad_invs)
    assert s_pad["payment_methods"] == "CC,PAD"  # sorted set
    assert s_pad["is_empty"] is False and s_pad["status"] == "PENDING"  # notifications on, no override
    assert s_eft["invoices"] == [eft_inv] and s_eft["payment_methods"] == "EFT"
    assert s_idle["invoices"] == [] and s_idle["is_empty"] is True
    assert s_idle["payment_methods"] == "ONLINE_BANKING"  # empty: the account's method
    assert s_idle["status"] == "SKIP"  # notifications off
    assert {s["created_on"] for s in got.values()} == {RUN.date()}  # UTC date of the run


def test_override_skips_notifications_and_reuses_lowest_id(data: Data) -> None:
    acct = data.account("4001", "PAD", notify=True)
    data.setting(acct, "WEEKLY", "2025-01-01")
    inv_old = data.invoice(acct, "2025-06-02 20:00:00")
    first = data.statement(
        acct, "WEEKLY", "2025-06-01", "2025-06-07", is_empty=False, methods="PAD", invoices=(inv_old,)
    )
    second = data.statement(
        acct, "WEEKLY", "2025-06-01", "2025-06-07", is_empty=False, methods="PAD", invoices=(inv_old,)
    )
    interim = data.statement(
        acct, "WEEKLY", "2025-06-01", "2025-06-07", interim=True, is_empty=False, invoices=(inv_old,)
    )
    inv_new = data.invoice(acct, "2025-06-06 20:00:00", "CC")
    result = apply(data.url, "2025-06-07")
    rows = {r["id"]: r for r in data.statements("2025-06-07")}
    assert set(rows) == {first, second, interim}  # nothing inserted, nothing deleted
    assert rows[first]["invoices"] == sorted([inv_old, inv_new])
    assert rows[first]["status"] == "SKIP" and rows[first]["payment_methods"] == "CC,PAD"
    assert rows[first]["created_on"] == RUN.date()
    # the duplicate keeps its row but loses its invoices; is_empty and payment_methods stay stale
    assert rows[second]["invoices"] == [] and rows[second]["is_empty"] is False
    assert rows[second]["status"] == "SUCCESS"
    assert rows[interim]["invoices"] == [inv_old]  # interim statements are left alone
    weekly = result.plan.count("WEEKLY")
    # the reused statement keeps its link to inv_old and gains inv_new; the duplicate loses its link
    assert (weekly.statements, weekly.reused, weekly.existing) == (1, 1, 2)
    assert (weekly.links_removed, weekly.links_added) == (1, 1)
    assert weekly.duplicates_emptied == 1
    assert result.written["statement_invoices_deleted"] == 1
    assert result.written["statement_invoices_inserted"] == 1
    # and the gaps report flags the leftover
    report = find_statement_gaps("2025-06-07", "2025-06-07", engine=engine_for(data.url))
    assert report.inconsistent["statement_id"].tolist() == [second]
    assert report.duplicates["statement_ids"].tolist() == [[first, second]]


def test_reused_statement_that_is_now_empty_keeps_its_methods(data: Data) -> None:
    acct = data.account("4101", "EFT")  # became EFT: old PAD invoices no longer match
    data.setting(acct, "WEEKLY", "2025-01-01")
    inv = data.invoice(acct, "2025-06-02 20:00:00", "PAD")
    sid = data.statement(
        acct, "WEEKLY", "2025-06-01", "2025-06-07", is_empty=False, methods="PAD", invoices=(inv,)
    )
    apply(data.url, "2025-06-07")
    row = {r["id"]: r for r in data.statements("2025-06-07")}[sid]
    assert row["invoices"] == [] and row["is_empty"] is True and row["payment_methods"] == "PAD"


def test_twice_with_override_keeps_one_statement_and_ids(data: Data) -> None:
    for n in range(3):
        a = data.account(f"50{n}", notify=True)
        data.setting(a, "DAILY", "2025-01-01")
        data.setting(a, "WEEKLY", "2025-01-01")
        data.invoice(a, "2025-06-07 20:00:00")
    apply(data.url, "2025-06-07")
    once = data.statements("2025-06-07")
    apply(data.url, "2025-06-07")
    twice = data.statements("2025-06-07")
    assert once == twice  # same ids, same rows
    keys = [(r["account"], r["frequency"], r["from_date"], r["to_date"]) for r in twice]
    assert len(keys) == len(set(keys)) == 6
    assert all(r["invoices"] for r in twice)


def test_cron_twice_then_override_empties_the_duplicates(data: Data) -> None:
    for n in range(3):
        a = data.account(f"51{n}", notify=True)
        data.setting(a, "DAILY", "2025-01-01")
        data.invoice(a, "2025-06-07 20:00:00")
    apply(data.url, "2025-06-07", override=False)
    apply(data.url, "2025-06-07", override=False)  # the cron twice makes duplicates (docs/statements.md)
    before = data.statements("2025-06-07")
    assert len(before) == 6 and {r["status"] for r in before} == {"PENDING"}
    apply(data.url, "2025-06-07")
    after = {r["id"]: r for r in data.statements("2025-06-07")}
    assert set(after) == {r["id"] for r in before}  # statements are never deleted
    lowest = sorted(after)[:3]
    assert all(after[i]["invoices"] and after[i]["status"] == "SKIP" for i in lowest)
    assert all(not after[i]["invoices"] and after[i]["status"] == "PENDING" for i in sorted(after)[3:])


def test_account_override_limits_every_frequency(data: Data) -> None:
    for auth in ("6001", "6002"):
        a = data.account(auth)
        for freq in ("DAILY", "WEEKLY", "MONTHLY"):
            data.setting(a, freq, "2025-01-01")
    result = apply(data.url, "2025-05-31", "6002")  # Saturday and month end
    got = data.statements("2025-05-31")
    assert {(r["account"], r["frequency"]) for r in got} == {
        ("6002", "DAILY"),
        ("6002", "WEEKLY"),
        ("6002", "MONTHLY"),
    }
    assert result.plan.total_statements == 3


# -- gap statements, interim statements, settings history ------------------------------------------------


def test_gap_statement_for_setting_ending_midweek(data: Data) -> None:
    a = data.account("7001")
    data.setting(a, "WEEKLY", "2025-01-01", "2025-06-04")  # ends Wednesday
    data.setting(a, "MONTHLY", "2025-06-05")
    b = data.account("7002")
    data.setting(b, "WEEKLY", "2025-01-01", "2025-06-04")
    data.statement(b, "WEEKLY", "2025-06-01", "2025-06-04", interim=True)  # covered: no gap statement
    c = data.account("7003")
    data.setting(c, "WEEKLY", "2025-01-01", "2025-06-01")  # ends on a Sunday: one day, skipped
    inv = data.invoice(a, "2025-06-03 12:00:00")
    for day in ("2025-06-01", "2025-06-03", "2025-06-04", "2025-06-07"):
        apply(data.url, day)
    weekly = [r for r in data.statements() if r["frequency"] == "WEEKLY" and not r["account"] == "7002"]
    assert [(r["account"], r["from_date"], r["to_date"], r["invoices"]) for r in weekly] == [
        ("7001", date(2025, 6, 1), date(2025, 6, 4), [inv])
    ]
    # the gaps report agrees: after the run nothing is missing
    eng = engine_for(data.url)
    assert find_statement_gaps("2025-05-25", "2025-06-30", engine=eng).missing.empty is False
    june = find_statement_gaps("2025-06-01", "2025-06-30", frequency="WEEKLY", engine=eng)
    assert june.missing.empty


@pytest.mark.slow  # a large mixed history against the reference model
def test_equivalence_with_reference_on_mixed_history(data: Data) -> None:
    accts = []
    for n, (method, notify) in enumerate([("PAD", True), ("EFT", False), ("CC", True), (None, False)]):
        a = data.account(f"80{n}", method, notify)
        accts.append(a)
    data.account(None, "INTERNAL")  # FAS account, no settings
    data.setting(accts[0], "DAILY", "2025-05-01", "2025-05-20")
    data.setting(accts[0], "WEEKLY", "2025-05-21")
    data.setting(accts[1], "WEEKLY", "2025-05-01", "2025-05-28")
    data.setting(accts[1], "MONTHLY", "2025-05-29")
    data.setting(accts[2], "MONTHLY", "2025-05-01")
    data.setting(accts[3], "WEEKLY", "2025-05-01")
    t = datetime(2025, 5, 1, 3)
    methods = ["PAD", "EFT", "CC", "DIRECT_PAY", "PAD", "ONLINE_BANKING"]
    for i in range(160):
        data.invoice(accts[i % 4], (t + timedelta(hours=9 * i)).isoformat(sep=" "), methods[i % 6])
    for day in ("2025-05-17", "2025-05-20", "2025-05-28", "2025-05-31", "2025-06-01"):
        for override in (True, False):
            for account in (None, "801"):
                assert_matches_reference(data.url, day, account, override=override)


# -- dry run, confirm, bad input ------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_apply_needs_the_hash(data: Data) -> None:
    a = data.account("9001")
    data.setting(a, "DAILY", "2025-01-01")
    data.invoice(a, "2025-06-05 20:00:00")
    eng = engine_for(data.url)
    plan = generate("2025-06-05", engine=eng, run_time=RUN)
    assert plan.count("DAILY").statements == 1 and plan.count("DAILY").statement_invoices == 1
    assert data.statements() == []
    with pytest.raises(ConfirmMismatch):
        generate("2025-06-05", apply=True, engine=eng, run_time=RUN)
    with pytest.raises(ConfirmMismatch):  # not the reviewed plan's hash (the data did not change)
        generate("2025-06-05", apply=True, confirm="0" * 64, engine=eng, run_time=RUN)
    data.invoice(a, "2025-06-05 21:00:00")  # data changed after the review
    with pytest.raises(StalePlanError):
        generate("2025-06-05", apply=True, confirm=plan.sha256, engine=eng, run_time=RUN)
    assert data.statements() == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e: generate("2025-13-01", engine=e), "statement_day"),
        (lambda e: generate("", engine=e), "statement_day"),
        (lambda e: generate_range("2025-06-10", "2025-06-01", engine=e), "from_date"),
        (lambda e: generate_range("2020-01-01", "2025-06-01", engine=e), "to_date"),
        (lambda e: find_statement_gaps("2025-06-10", "2025-06-01", engine=e), "from_date"),
        (lambda e: find_statement_gaps(frequency="YEARLY", engine=e), "frequency"),
        (lambda e: find_statement_gaps(to_date="yesterday", engine=e), "to_date"),
    ],
)
def test_bad_input_is_refused(data: Data, call, field: str) -> None:
    with pytest.raises(InputError) as err:
        call(engine_for(data.url))
    assert err.value.field == field


def test_range_fills_only_missing_periods(data: Data) -> None:
    a = data.account("9101", notify=True)
    data.setting(a, "DAILY", "2025-06-01")
    data.setting(a, "WEEKLY", "2025-06-01")
    kept = data.statement(a, "DAILY", "2025-06-03", "2025-06-03", status="SUCCESS")
    eng = engine_for(data.url)
    assert len(find_statement_gaps("2025-06-01", "2025-06-14", engine=eng).missing) == 15
    plan = generate_range("2025-06-01", "2025-06-14", engine=eng, run_time=RUN)
    assert plan.count("DAILY").statements == 13 and plan.count("WEEKLY").statements == 2
    generate_range("2025-06-01", "2025-06-14", apply=True, confirm=plan.sha256, engine=eng, run_time=RUN)
    assert find_statement_gaps("2025-06-01", "2025-06-14", engine=eng).ok
    assert {r["id"]: r["status"] for r in data.statements("2025-06-03")}[kept] == "SUCCESS"


# -- helpers ------------------------------------------------------------------------------------------------


def assert_matches_reference(
    url: str, day: str, account: str | None = None, *, override: bool = True
) -> None:
    """The reference runs in a transaction that is rolled back; then paynb applies from the same state."""
    d = date.fromisoformat(day)
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            _, _, max_id = table_counts(cur)
            reference_generate(conn, d, account, override=override, created_on=RUN.date())
            ref = snapshot(cur, d, max_id)
            ref_counts = table_counts(cur)[:2]
        conn.rollback()
        apply(url, day, account, override=override)
        with conn.cursor() as cur:
            got = snapshot(cur, d, max_id)
            got_counts = table_counts(cur)[:2]
        conn.rollback()
    finally:
        conn.close()
    assert got == ref, (day, account, override)
    assert got_counts == ref_counts


# -- pure helpers -------------------------------------------------------------------------------------------


def test_job_commands_rule() -> None:
    import pandas as pd

    from paynb.ops.statements.gaps import job_commands

    d1, d2, d3 = date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)
    missing = pd.DataFrame(
        [(d1, "11"), (d1, "12"), (d2, "11"), (d2, "12"), (d2, "13"), (d2, "14"), (d3, None)],
        columns=["statement_day", "auth_account_id"],
    )
    accounts = {d1: 100, d2: 100, d3: 100}
    assert job_commands(missing, accounts) == [
        "python3 invoke_jobs.py GENERATE_STATEMENTS 2025-06-02 11",  # two of 100 accounts: account runs
        "python3 invoke_jobs.py GENERATE_STATEMENTS 2025-06-02 12",
        "python3 invoke_jobs.py GENERATE_STATEMENTS 2025-06-03",  # four accounts: one date run
        "python3 invoke_jobs.py GENERATE_STATEMENTS 2025-06-04",  # no auth account id: date run
    ]
    # every expected account misses the day: one date run
    assert job_commands(missing[missing["statement_day"] == d1], {d1: 2}) == [
        "python3 invoke_jobs.py GENERATE_STATEMENTS 2025-06-02"
    ]
    assert job_commands(missing.iloc[:1], accounts, account_filter="11") == [
        "python3 invoke_jobs.py GENERATE_STATEMENTS 2025-06-02 11"
    ]


def test_calendar_grids() -> None:
    import math

    import pandas as pd

    from paynb.ops.statements.chart import month_grid, week_grid

    counts = pd.DataFrame({"statement_day": [date(2025, 6, 4), date(2025, 6, 30)], "missing": [3, 1]})
    grid, weeks = week_grid(counts, date(2025, 6, 3), date(2025, 6, 30))
    assert weeks[0] == date(2025, 6, 1) and len(weeks) == 5
    assert grid[0, 3] == 3 and grid[4, 1] == 1  # Wednesday 06-04, Monday 06-30
    assert math.isnan(grid[0, 0]) and math.isnan(grid[4, 2])  # before and after the range
    months, years = month_grid(counts, date(2025, 6, 3), date(2025, 6, 30))
    assert years == [2025] and months[0, 5] == 4 and math.isnan(months[0, 6])


def test_gaps_expected_periods_from_settings_history(data: Data) -> None:
    a = data.account("9201")
    data.setting(a, "WEEKLY", "2025-05-01", "2025-06-04")  # ends Wednesday: gap statement 06-01..06-04
    data.setting(a, "MONTHLY", "2025-06-05")  # mid-month start: still June 1..30
    b = data.account("9202")
    data.setting(b, "DAILY", "2025-06-01", "2025-06-20")
    data.setting(b, "DAILY", "2025-06-10")  # overlaps the first one: each day expected once
    c = data.account("9203")
    data.setting(c, "WEEKLY", "2025-05-01", "2025-06-11")
    data.statement(c, "WEEKLY", "2025-06-08", "2025-06-11", interim=True)  # covers the gap period
    report = find_statement_gaps("2025-06-01", "2025-06-30", engine=engine_for(data.url))
    got = {(r.auth_account_id, r.kind, r.from_date, r.to_date) for r in report.missing.itertuples()}
    expected = {
        ("9201", "GAP", date(2025, 6, 1), date(2025, 6, 4)),
        ("9201", "MONTHLY", date(2025, 6, 1), date(2025, 6, 30)),
        ("9203", "WEEKLY", date(2025, 6, 1), date(2025, 6, 7)),  # 9203's gap is covered by the interim
    }
    expected |= {("9202", "DAILY", date(2025, 6, d), date(2025, 6, d)) for d in range(1, 31)}
    assert got == expected
    assert report.summary().set_index("frequency")["expected"].to_dict() == {
        "DAILY": 30,
        "WEEKLY": 2,
        "MONTHLY": 1,
    }
