"""Statement gap detection for every frequency (replaces the FAQ's DAILY-only query, docs/runbook.md#statements).

Expected periods come from ``statement_settings`` (the whole settings history, each setting only on
the days it is active), with the job's rules (docs/statements.md):

* DAILY: every day the setting is active;
* WEEKLY: every Saturday it is active, Sunday..Saturday;
* WEEKLY gap: the setting's ``to_date`` when that is neither a Saturday nor a Sunday and no interim
  statement of the account covers Sunday..to_date;
* MONTHLY: every month end it is active, the whole calendar month (the setting's from_date is ignored).

The expansion runs in SQL with ``generate_series`` per setting, so it scales with settings × days
without pulling expected rows into Python. A period is present when any statement of that account
has the same frequency, from_date and to_date.

Also reported: duplicated non-interim statements for one period, and statements whose ``is_empty``
disagrees with their ``statement_invoices`` (the leftovers an override re-run makes, docs/statements.md#observed-behaviour item 7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from paynb import db
from paynb.context import Env, resolve_env
from paynb.ops.statements.periods import (
    FREQUENCIES,
    check_range,
    default_to_date,
    parse_account,
    parse_day,
    parse_frequency,
)

# a date with this many accounts missing or fewer gets one job run per account; more gets one date run
ACCOUNT_RUN_LIMIT = 3
JOB_COMMAND = "python3 invoke_jobs.py GENERATE_STATEMENTS"

_EXPECTED = """
WITH s0 AS (
    SELECT ss.id AS settings_id, ss.frequency, ss.to_date AS s_to,
           pa.id AS payment_account_id, pa.auth_account_id,
           greatest(ss.from_date, CAST(:from_date AS date)) AS lo,
           least(coalesce(ss.to_date, CAST(:to_date AS date)), CAST(:to_date AS date)) AS hi
      FROM statement_settings ss
      JOIN payment_accounts pa ON pa.id = ss.payment_account_id
     WHERE ss.frequency IN ('DAILY', 'WEEKLY', 'MONTHLY')
       AND (CAST(:frequency AS varchar) IS NULL OR ss.frequency = CAST(:frequency AS varchar))
       AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = CAST(:account AS varchar))
       AND ss.from_date <= CAST(:to_date AS date)
       AND (ss.to_date IS NULL OR ss.to_date >= CAST(:from_date AS date))
),
-- overlapping settings of one account and frequency (bad history) would expect a period twice:
-- each setting starts after the days the earlier ones already cover
s AS (
    SELECT s0.*,
           greatest(s0.lo, coalesce(max(s0.hi) OVER (PARTITION BY s0.payment_account_id, s0.frequency
                                                     ORDER BY s0.lo, s0.settings_id
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1,
                                    s0.lo)) AS lo1
      FROM s0
),
expected AS (
    SELECT s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'DAILY' AS kind,
           d::date AS from_date, d::date AS to_date
      FROM s
     CROSS JOIN LATERAL generate_series(s.lo1::timestamp, s.hi::timestamp, interval '1 day') d
     WHERE s.frequency = 'DAILY'
    UNION ALL
    SELECT s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'WEEKLY',
           d::date - 6, d::date
      FROM s
     CROSS JOIN LATERAL generate_series((s.lo1 + (6 - extract(dow FROM s.lo1)::integer))::timestamp,
                                        s.hi::timestamp, interval '7 days') d
     WHERE s.frequency = 'WEEKLY'
    UNION ALL
    SELECT DISTINCT ON (s.payment_account_id, s.s_to)
           s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'GAP',
           s.s_to - extract(dow FROM s.s_to)::integer, s.s_to
      FROM s
     WHERE s.frequency = 'WEEKLY'
       AND s.s_to BETWEEN s.lo AND s.hi
       AND extract(dow FROM s.s_to) NOT IN (0, 6)
       AND NOT EXISTS (
            SELECT 1 FROM statements x
             WHERE x.payment_account_id = s.payment_account_id AND x.is_interim_statement
               AND x.from_date <= s.s_to - extract(dow FROM s.s_to)::integer
               AND x.to_date >= s.s_to)
    UNION ALL
    SELECT s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'MONTHLY',
           m::date, (m + interval '1 month' - interval '1 day')::date
      FROM s
     CROSS JOIN LATERAL generate_series(date_trunc('month', s.lo1::timestamp), s.hi::timestamp,
                                        interval '1 month') m
     WHERE s.frequency = 'MONTHLY'
       AND (m + interval '1 month' - interval '1 day')::date BETWEEN s.lo1 AND s.hi
),
checked AS MATERIALIZED (
    SELECT e.*,
           NOT EXISTS (
               SELECT 1 FROM statements x
                WHERE x.payment_account_id = e.payment_account_id AND x.frequency = e.frequency
                  AND x.from_date = e.from_date AND x.to_date = e.to_date) AS missing
      FROM expected e
),
missing AS MATERIALIZED (
    SELECT * FROM checked WHERE missing
)
SELECT 'kind' AS row_type, to_date AS statement_day, kind, frequency,
       count(*) AS expected, count(*) FILTER (WHERE missing) AS missing,
       NULL::integer AS payment_account_id, NULL::varchar AS auth_account_id,
       NULL::integer AS settings_id, NULL::date AS from_date
  FROM checked GROUP BY to_date, kind, frequency
UNION ALL
-- accounts expected on the days that miss something (the job-command rule needs them)
SELECT 'accounts', to_date, NULL, NULL, count(DISTINCT payment_account_id), NULL, NULL, NULL, NULL, NULL
  FROM checked WHERE to_date IN (SELECT to_date FROM missing) GROUP BY to_date
UNION ALL
SELECT 'missing', to_date, kind, frequency, NULL, NULL, payment_account_id, auth_account_id,
       settings_id, from_date
  FROM missing
"""

# both queries share the scope: statement days in range, optional frequency and account
_DUPLICATES = """
    SELECT pa.auth_account_id, x.payment_account_id, x.frequency, x.from_date, x.to_date,
           count(*) AS statements, array_agg(x.id ORDER BY x.id) AS statement_ids
      FROM statements x
      JOIN payment_accounts pa ON pa.id = x.payment_account_id
     WHERE x.to_date BETWEEN CAST(:from_date AS date) AND CAST(:to_date AS date)
       AND (CAST(:frequency AS varchar) IS NULL OR x.frequency = CAST(:frequency AS varchar))
       AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = CAST(:account AS varchar))
       AND NOT x.is_interim_statement
     GROUP BY pa.auth_account_id, x.payment_account_id, x.frequency, x.from_date, x.to_date
    HAVING count(*) > 1
     ORDER BY x.to_date, x.frequency, x.payment_account_id
"""

_INCONSISTENT = """
    SELECT * FROM (
        SELECT x.id AS statement_id, pa.auth_account_id, x.payment_account_id, x.frequency,
               x.from_date, x.to_date, x.is_empty,
               EXISTS (SELECT 1 FROM statement_invoices si WHERE si.statement_id = x.id) AS has_invoices
      FROM statements x
      JOIN payment_accounts pa ON pa.id = x.payment_account_id
     WHERE x.to_date BETWEEN CAST(:from_date AS date) AND CAST(:to_date AS date)
       AND (CAST(:frequency AS varchar) IS NULL OR x.frequency = CAST(:frequency AS varchar))
       AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = CAST(:account AS varchar))
    ) c
     WHERE c.has_invoices = c.is_empty
     ORDER BY c.to_date, c.frequency, c.payment_account_id, c.statement_id
"""

_FIRST_SETTING = "SELECT min(from_date) AS first FROM statement_settings"


@dataclass(frozen=True)
class GapReport:
    """Missing statement periods, duplicates and inconsistent statements for a range of statement days."""

    from_date: date
    to_date: date
    frequency: str | None
    account: str | None
    missing: pd.DataFrame = field(repr=False)
    by_day: pd.DataFrame = field(repr=False)
    duplicates: pd.DataFrame = field(repr=False)
    inconsistent: pd.DataFrame = field(repr=False)
    commands: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.missing.empty and self.duplicates.empty and self.inconsistent.empty

    def to_frame(self) -> pd.DataFrame:
        return self.missing.copy()

    def summary(self) -> pd.DataFrame:
        """Per frequency: expected periods, missing, duplicated periods, inconsistent statements."""
        rows = []
        for freq in FREQUENCIES:
            if self.frequency and freq != self.frequency:
                continue
            sel = self.by_day[self.by_day["frequency"] == freq] if not self.by_day.empty else self.by_day
            rows.append(
                {
                    "frequency": freq,
                    "expected": int(sel["expected"].sum()) if not sel.empty else 0,
                    "missing": int(sel["missing"].sum()) if not sel.empty else 0,
                    "duplicated_periods": int((self.duplicates["frequency"] == freq).sum())
                    if not self.duplicates.empty
                    else 0,
                    "inconsistent": int((self.inconsistent["frequency"] == freq).sum())
                    if not self.inconsistent.empty
                    else 0,
                }
            )
        return pd.DataFrame(rows)

    def missing_by_day(self) -> pd.DataFrame:
        """statement_day × frequency missing counts (calendar charts)."""
        if self.by_day.empty:
            return pd.DataFrame(columns=["statement_day", "frequency", "missing"])
        g = self.by_day.groupby(["statement_day", "frequency"], as_index=False)["missing"].sum()
        return g[g["missing"] > 0].reset_index(drop=True)

    def generate_command(self) -> str | None:
        """The paynb command that fills every gap of this report in one run."""
        if self.missing.empty:
            return None
        first = min(self.missing["statement_day"])
        last = max(self.missing["statement_day"])
        acct = f" --auth-account {self.account}" if self.account else ""
        return f"paynb statements generate --range {first} {last}{acct}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "report": "statement_gaps",
            "from_date": self.from_date,
            "to_date": self.to_date,
            "frequency": self.frequency,
            "account": self.account,
            "summary": self.summary().to_dict(orient="records"),
            "missing": self.missing.to_dict(orient="records"),
            "duplicates": self.duplicates.to_dict(orient="records"),
            "inconsistent": self.inconsistent.to_dict(orient="records"),
            "commands": list(self.commands),
            "paynb_command": self.generate_command(),
        }


def job_commands(
    missing: pd.DataFrame,
    accounts_per_day: dict[date, int],
    *,
    account_filter: str | None = None,
    limit: int = ACCOUNT_RUN_LIMIT,
) -> list[str]:
    """The fewest ``GENERATE_STATEMENTS`` runs that recreate every missing period.

    One run per statement day covers every account and frequency of that day. A day on which at most
    ``limit`` accounts (all with an auth account id) miss something, out of more accounts expected, gets
    one run per account instead: a date run would also rewrite every other account's statements of that
    day (notifications to SKIP, invoices re-linked). With an account filter every run names the account.
    """
    commands: list[str] = []
    if missing.empty:
        return commands
    for day, rows in missing.groupby("statement_day", sort=True):
        # FAS accounts have no auth account id; pandas may hold that as NaN
        accounts = sorted(
            {None if pd.isna(a) else str(a) for a in rows["auth_account_id"]},
            key=lambda a: (a is None, a or ""),
        )
        if account_filter:
            commands.append(f"{JOB_COMMAND} {day} {account_filter}")
            continue
        targeted = (
            None not in accounts
            and len(accounts) <= limit
            and len(accounts) < accounts_per_day.get(day, len(accounts) + 1)
        )
        if targeted:
            commands.extend(f"{JOB_COMMAND} {day} {a}" for a in accounts)
        else:
            commands.append(f"{JOB_COMMAND} {day}")
    return commands


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def gaps_on(
    conn: Connection,
    from_date: date | None,
    to_date: date,
    *,
    frequency: str | None = None,
    account: str | None = None,
) -> GapReport:
    """The gap report on an open (read-only) connection."""
    if from_date is None:
        first = db.fetch_one(conn, _FIRST_SETTING)
        from_date = min(first["first"], to_date) if first and first["first"] else to_date
    check_range(from_date, to_date, max_days=None)
    params = {"from_date": from_date, "to_date": to_date, "frequency": frequency, "account": account}
    rows = db.fetch_all(conn, _EXPECTED, params)
    kind_rows = [r for r in rows if r["row_type"] == "kind"]
    missing_rows = [r for r in rows if r["row_type"] == "missing"]
    accounts_per_day = {r["statement_day"]: int(r["expected"]) for r in rows if r["row_type"] == "accounts"}

    by_day = _frame(
        [
            {k: r[k] for k in ("statement_day", "kind", "frequency")}
            | {"expected": int(r["expected"]), "missing": int(r["missing"])}
            for r in kind_rows
        ],
        ["statement_day", "kind", "frequency", "expected", "missing"],
    )
    if not by_day.empty:
        by_day = by_day.sort_values(["statement_day", "frequency", "kind"]).reset_index(drop=True)
    miss_cols = [
        "statement_day",
        "frequency",
        "kind",
        "from_date",
        "to_date",
        "auth_account_id",
        "payment_account_id",
        "settings_id",
    ]
    missing = _frame(
        [{c: (r["statement_day"] if c == "to_date" else r[c]) for c in miss_cols} for r in missing_rows],
        miss_cols,
    )
    if not missing.empty:
        missing = missing.sort_values(["statement_day", "frequency", "payment_account_id"]).reset_index(
            drop=True
        )
    duplicates = _frame(
        db.fetch_all(conn, _DUPLICATES, params),
        [
            "auth_account_id",
            "payment_account_id",
            "frequency",
            "from_date",
            "to_date",
            "statements",
            "statement_ids",
        ],
    )
    inconsistent = _frame(
        db.fetch_all(conn, _INCONSISTENT, params),
        [
            "statement_id",
            "auth_account_id",
            "payment_account_id",
            "frequency",
            "from_date",
            "to_date",
            "is_empty",
            "has_invoices",
        ],
    )
    if not inconsistent.empty:
        inconsistent["problem"] = [
            "no invoices but is_empty=false" if not e else "invoices but is_empty=true"
            for e in inconsistent["is_empty"]
        ]
    commands = job_commands(missing, accounts_per_day, account_filter=account)
    return GapReport(
        from_date=from_date,
        to_date=to_date,
        frequency=frequency,
        account=account,
        missing=missing,
        by_day=by_day,
        duplicates=duplicates,
        inconsistent=inconsistent,
        commands=tuple(commands),
    )


def find_statement_gaps(
    from_date: date | str | None = None,
    to_date: date | str | None = None,
    frequency: str | None = None,
    account: str | None = None,
    engine: Engine | None = None,
    *,
    env: Env | None = None,
) -> GapReport:
    """Missing and duplicated statements for statement days ``from_date``..``to_date``.

    ``from_date`` defaults to the first statement setting, ``to_date`` to yesterday (Pacific).
    A period belongs to the day it ends on (the day ``GENERATE_STATEMENTS`` makes it). Reads pay-db through
    ``env`` (default: the environment's settings); ``engine`` still overrides it.

    Example::

        report = find_statement_gaps("2025-01-01", frequency="WEEKLY")
        print("\\n".join(report.commands))
    """
    start = parse_day(from_date, "from_date")
    end = parse_day(to_date, "to_date") or default_to_date()
    if start is not None:
        check_range(start, end, max_days=None)
    freq = parse_frequency(frequency)
    acct = parse_account(account)
    with resolve_env(env, engine=engine).read() as conn:
        return gaps_on(conn, start, end, frequency=freq, account=acct)
