"""Statement gap detection for every frequency (replaces the FAQ's DAILY-only query, docs/runbook.md#statements).

Expected periods come from ``statement_settings`` (the whole settings history, each setting only on
the days it is active), with the job's rules (docs/statements.md):

* DAILY: every day the setting is active;
* WEEKLY: every Saturday it is active, Sunday..Saturday;
* WEEKLY gap: the setting's ``to_date`` when that is neither a Saturday nor a Sunday and no interim
  statement of the account covers Sunday..to_date;
* MONTHLY: every month end it is active, the whole calendar month (the setting's from_date is ignored).

A period is present when any statement of that account has the same frequency, from_date and
to_date. The check is set-based and reads each statement of the range once: per frequency, one join of
the statements onto the settings folds the periods present into bit masks (duplicates do not count
twice), and the expected periods missing from them are the gaps; only blocks with a gap are expanded
into rows. Expected counts per day come from a running sum over the settings' ranges. Nothing probes
an index per expected period (the query this replaced made one probe per period: 1.7M over two years
of the large sandbox). See ``docs/statement-gaps.md``.

Also reported: duplicated non-interim statements for one period, and statements whose ``is_empty``
disagrees with their ``statement_invoices`` (the leftovers an override re-run makes, docs/statements.md#observed-behaviour item 7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa
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

# Periods are numbered per frequency ("ordinals"): DAILY days and WEEKLY Saturdays counted from
# Saturday 1970-01-03, MONTHLY months as year * 12 + month - 1. A setting expects the ordinals
# o_lo..o_hi. Statements are read once (one join per frequency onto the settings) and folded into
# 62-bit masks per (setting, block of 62 ordinals) with bit_or, so duplicates do not matter; an
# expected bit that is not set is a missing period. Only blocks with a missing bit are expanded.
_EXPECTED = """
WITH s0 AS (
    SELECT ss.id AS settings_id, ss.frequency, ss.to_date AS s_to, pa.id AS payment_account_id,
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
s1 AS (
    SELECT s0.*,
           greatest(s0.lo, coalesce(max(s0.hi) OVER (PARTITION BY s0.payment_account_id, s0.frequency
                                                     ORDER BY s0.lo, s0.settings_id
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1,
                                    s0.lo)) AS lo1
      FROM s0
),
s AS MATERIALIZED (
    SELECT s1.*,
           CASE s1.frequency
                WHEN 'DAILY' THEN s1.lo1 - DATE '1970-01-03'
                WHEN 'WEEKLY' THEN (s1.lo1 - DATE '1970-01-03' + 6) / 7
                ELSE (extract(year FROM s1.lo1) * 12 + extract(month FROM s1.lo1) - 1)::integer END AS o_lo,
           CASE s1.frequency
                WHEN 'DAILY' THEN s1.hi - DATE '1970-01-03'
                WHEN 'WEEKLY' THEN (s1.hi - DATE '1970-01-03') / 7
                ELSE (extract(year FROM s1.hi) * 12 + extract(month FROM s1.hi) - 1)::integer
                     - CASE WHEN extract(day FROM s1.hi + 1) = 1 THEN 0 ELSE 1 END END AS o_hi
      FROM s1
),
-- the statement periods present, as bits: each statement of the range read once, per setting (an
-- index range of the account, frequency and dates; small per-setting groups, no sort of them all)
present AS (
    SELECT s.settings_id, b.block, b.bits
      FROM s
     CROSS JOIN LATERAL (
            SELECT o.n / 62 AS block, bit_or(1::bigint << (o.n % 62)) AS bits
              FROM statements x
             CROSS JOIN LATERAL (
                    SELECT CASE x.frequency
                                WHEN 'DAILY' THEN x.to_date - DATE '1970-01-03'
                                WHEN 'WEEKLY' THEN (x.to_date - DATE '1970-01-03') / 7
                                ELSE (extract(year FROM x.to_date) * 12 + extract(month FROM x.to_date) - 1)::integer
                           END AS n) o
             WHERE x.payment_account_id = s.payment_account_id AND x.frequency = s.frequency
               AND x.to_date BETWEEN s.lo1 AND s.hi
               AND CASE x.frequency
                        WHEN 'DAILY' THEN x.from_date = x.to_date
                        WHEN 'WEEKLY' THEN x.from_date = x.to_date - 6
                                           AND (x.to_date - DATE '1970-01-03') % 7 = 0
                        ELSE x.from_date = date_trunc('month', x.to_date)::date
                             AND extract(day FROM x.to_date + 1) = 1
                   END
             GROUP BY o.n / 62) b
),
-- the expected bits of every block of every setting
blocks AS (
    SELECT s.settings_id, s.payment_account_id, s.frequency, b.block,
           greatest(s.o_lo - b.block * 62, 0) AS lo_bit, least(s.o_hi - b.block * 62, 61) AS hi_bit
      FROM s
     CROSS JOIN LATERAL generate_series(s.o_lo / 62, s.o_hi / 62) AS b(block)
     WHERE s.o_lo <= s.o_hi
),
-- blocks with an expected bit not present (materialized: only these are expanded bit by bit)
holes AS MATERIALIZED (
    SELECT *
      FROM (SELECT k.*,
                   ((1::bigint << (k.hi_bit + 1)) - (1::bigint << k.lo_bit)) & ~coalesce(p.bits, 0) AS bits
              FROM blocks k
              LEFT JOIN present p ON p.settings_id = k.settings_id AND p.block = k.block) h
     WHERE h.bits <> 0
),
periodic_missing AS (
    SELECT h.settings_id, h.payment_account_id, h.frequency, h.frequency AS kind, h.block * 62 + bit AS n
      FROM holes h
     CROSS JOIN LATERAL generate_series(h.lo_bit, h.hi_bit) bit
     WHERE h.bits & (1::bigint << bit) <> 0
),
-- WEEKLY settings ending mid-week: Sunday..to_date, unless an interim statement covers it (few rows)
gap AS MATERIALIZED (
    SELECT DISTINCT ON (s.payment_account_id, s.s_to)
           s.settings_id, s.payment_account_id, s.s_to - extract(dow FROM s.s_to)::integer AS from_date,
           s.s_to AS to_date
      FROM s
     WHERE s.frequency = 'WEEKLY'
       AND s.s_to BETWEEN s.lo AND s.hi
       AND extract(dow FROM s.s_to) NOT IN (0, 6)
       AND NOT EXISTS (
            SELECT 1 FROM statements x
             WHERE x.payment_account_id = s.payment_account_id AND x.is_interim_statement
               AND x.from_date <= s.s_to - extract(dow FROM s.s_to)::integer
               AND x.to_date >= s.s_to)
),
missing AS MATERIALIZED (
    SELECT m.settings_id, m.payment_account_id, m.frequency, m.kind, d.from_date, d.to_date
      FROM periodic_missing m
     CROSS JOIN LATERAL (
            SELECT CASE m.frequency
                        WHEN 'DAILY' THEN DATE '1970-01-03' + m.n
                        WHEN 'WEEKLY' THEN DATE '1970-01-03' + 7 * m.n - 6
                        ELSE make_date(m.n / 12, m.n % 12 + 1, 1) END AS from_date,
                   CASE m.frequency
                        WHEN 'DAILY' THEN DATE '1970-01-03' + m.n
                        WHEN 'WEEKLY' THEN DATE '1970-01-03' + 7 * m.n
                        ELSE (make_date(m.n / 12, m.n % 12 + 1, 1) + interval '1 month' - interval '1 day')::date
                   END AS to_date) d
    UNION ALL
    SELECT g.settings_id, g.payment_account_id, 'WEEKLY', 'GAP', g.from_date, g.to_date
      FROM gap g
     WHERE NOT EXISTS (
            SELECT 1 FROM statements x
             WHERE x.payment_account_id = g.payment_account_id AND x.frequency = 'WEEKLY'
               AND x.from_date = g.from_date AND x.to_date = g.to_date)
),
-- expected periods per ordinal: settings whose o_lo..o_hi holds it (a running sum of +1/-1 events)
events AS (
    SELECT frequency, n, sum(delta) AS delta
      FROM (SELECT frequency, o_lo AS n, 1 AS delta FROM s WHERE o_lo <= o_hi
            UNION ALL
            SELECT frequency, o_hi + 1, -1 FROM s WHERE o_lo <= o_hi) e
     GROUP BY frequency, n
),
ordinals AS (
    SELECT r.frequency, n
      FROM (SELECT frequency, min(n) AS lo, max(n) AS hi FROM events GROUP BY frequency) r
     CROSS JOIN LATERAL generate_series(r.lo, r.hi) n
),
expected_counts AS (
    SELECT o.frequency, o.n,
           sum(coalesce(e.delta, 0)) OVER (PARTITION BY o.frequency ORDER BY o.n) AS expected
      FROM ordinals o
      LEFT JOIN events e ON e.frequency = o.frequency AND e.n = o.n
),
kind_expected AS (
    SELECT CASE c.frequency
                WHEN 'DAILY' THEN DATE '1970-01-03' + c.n
                WHEN 'WEEKLY' THEN DATE '1970-01-03' + 7 * c.n
                ELSE (make_date(c.n / 12, c.n % 12 + 1, 1) + interval '1 month' - interval '1 day')::date
           END AS to_date, c.frequency AS kind, c.frequency, c.expected
      FROM expected_counts c
     WHERE c.expected > 0
    UNION ALL
    SELECT to_date, 'GAP', 'WEEKLY', count(*) FROM gap GROUP BY to_date
),
missing_counts AS (
    SELECT to_date, kind, count(*) AS missing FROM missing GROUP BY to_date, kind
)
SELECT 'kind' AS row_type, e.to_date AS statement_day, e.kind, e.frequency,
       e.expected, coalesce(m.missing, 0) AS missing,
       NULL::integer AS payment_account_id, NULL::varchar AS auth_account_id,
       NULL::integer AS settings_id, NULL::date AS from_date
  FROM kind_expected e
  LEFT JOIN missing_counts m ON m.to_date = e.to_date AND m.kind = e.kind
UNION ALL
-- accounts expected on the days that miss something (the job-command rule needs them)
SELECT 'accounts', d.to_date, NULL, NULL, count(DISTINCT a.payment_account_id), NULL, NULL, NULL, NULL, NULL
  FROM (SELECT DISTINCT to_date FROM missing) d
 CROSS JOIN LATERAL (
        SELECT s.payment_account_id
          FROM s
         WHERE d.to_date BETWEEN s.lo1 AND s.hi
           AND (s.frequency = 'DAILY'
                OR (s.frequency = 'WEEKLY' AND extract(dow FROM d.to_date) = 6)
                OR (s.frequency = 'MONTHLY' AND extract(day FROM d.to_date + 1) = 1))
        UNION ALL
        SELECT g.payment_account_id FROM gap g WHERE g.to_date = d.to_date) a
 GROUP BY d.to_date
UNION ALL
SELECT 'missing', m.to_date, m.kind, m.frequency, NULL, NULL, m.payment_account_id, pa.auth_account_id,
       m.settings_id, m.from_date
  FROM missing m
  JOIN payment_accounts pa ON pa.id = m.payment_account_id
"""

# both queries share the scope: statement days in range, optional frequency and account
_DUPLICATE_CANDIDATES = """
    -- periods held by more than one statement, interim or not: grouped on the columns of
    -- ix_statements_account_freq_dates alone, so the index is read in order and the heap not at all
    SELECT x.payment_account_id, x.frequency, x.from_date, x.to_date
      FROM statements x
     WHERE x.to_date BETWEEN CAST(:from_date AS date) AND CAST(:to_date AS date)
       AND (CAST(:frequency AS varchar) IS NULL OR x.frequency = CAST(:frequency AS varchar))
     GROUP BY x.payment_account_id, x.frequency, x.from_date, x.to_date
    HAVING count(*) > 1
"""

# of those, the periods with more than one non-interim statement (index probes for the few candidates)
_DUPLICATES = """
    SELECT pa.auth_account_id, c.payment_account_id, c.frequency, c.from_date, c.to_date,
           count(*) AS statements, array_agg(x.id ORDER BY x.id) AS statement_ids
      FROM unnest(CAST(:c_account AS integer[]), CAST(:c_frequency AS varchar[]), CAST(:c_from AS date[]),
                  CAST(:c_to AS date[])) AS c(payment_account_id, frequency, from_date, to_date)
      JOIN payment_accounts pa ON pa.id = c.payment_account_id
      JOIN statements x
        ON x.payment_account_id = c.payment_account_id AND x.frequency = c.frequency
       AND x.from_date = c.from_date AND x.to_date = c.to_date
     WHERE NOT x.is_interim_statement
       AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = CAST(:account AS varchar))
     GROUP BY pa.auth_account_id, c.payment_account_id, c.frequency, c.from_date, c.to_date
    HAVING count(*) > 1
     ORDER BY c.to_date, c.frequency, c.payment_account_id
"""
# Grouping every statement of the range by period: a hash aggregate of millions of groups spills to
# disk and a sort of them does too, while reading the account/frequency/dates index in order groups
# them as a stream. The planner's estimates favour the hash, so the query runs with these off.
_STREAM_GROUPING = ("SET LOCAL enable_hashagg = off", "SET LOCAL enable_sort = off")
_STREAM_GROUPING_RESET = ("SET LOCAL enable_hashagg TO DEFAULT", "SET LOCAL enable_sort TO DEFAULT")

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


def _fetch_streamed(conn: Connection, sql: str, params: dict) -> list[dict]:
    """Run ``sql`` with hash aggregates and sorts off (transaction-local), then put them back."""
    for setting in _STREAM_GROUPING:
        conn.execute(sa.text(setting))
    try:
        return db.fetch_all(conn, sql, params)
    finally:
        for setting in _STREAM_GROUPING_RESET:
            conn.execute(sa.text(setting))


def _find_duplicates(conn: Connection, params: dict) -> list[dict]:
    candidates = _fetch_streamed(conn, _DUPLICATE_CANDIDATES, params)
    if not candidates:
        return []
    keys = {
        "c_account": [c["payment_account_id"] for c in candidates],
        "c_frequency": [c["frequency"] for c in candidates],
        "c_from": [c["from_date"] for c in candidates],
        "c_to": [c["to_date"] for c in candidates],
    }
    return db.fetch_all(conn, _DUPLICATES, params | keys)


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
        _find_duplicates(conn, params),
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
