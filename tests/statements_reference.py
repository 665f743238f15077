"""A plain per-account reference implementation of ``GENERATE_STATEMENTS`` (docs/statements.md).

Written straight from the rules, for clarity rather than speed: a Python loop over accounts with a
query or two per account over psycopg2, the shape of the real job. Used by the statement tests
(equivalence with paynb's set-based generation) and by ``benchmarks/bench_statements.py``.
It shares no code with ``paynb.ops.statements``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Vancouver")


@dataclass
class Setting:
    settings_id: int
    account_id: int
    auth_account_id: str | None
    account_payment_method: str | None
    notify: bool


def connect(url: str):
    """A psycopg2 connection from a SQLAlchemy-style URL (``postgresql+psycopg2://…``)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    return psycopg2.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


def pacific_midnight_as_utc(day: date) -> datetime:
    """Local 00:00 of ``day`` in Vancouver, as naive UTC (what ``created_on`` holds)."""
    return datetime.combine(day, time(0), tzinfo=PACIFIC).astimezone(UTC).replace(tzinfo=None)


def statement_periods(day: date) -> list[tuple[str, str, date, date]]:
    """(kind, frequency, from, to) the job makes for statement day ``day``."""
    periods = [("DAILY", "DAILY", day, day)]
    sunday = day - timedelta(days=(day.weekday() + 1) % 7)
    if day.weekday() == 5:  # Saturday: the week Sunday..Saturday
        periods.append(("WEEKLY", "WEEKLY", sunday, day))
    elif sunday != day:  # other days: gap statements, never a one-day period
        periods.append(("GAP", "WEEKLY", sunday, day))
    if (day + timedelta(days=1)).day == 1:  # last day of the month
        periods.append(("MONTHLY", "MONTHLY", day.replace(day=1), day))
    return periods


def _settings(cur, frequency: str, day: date, account: str | None, ends_today: bool) -> list[Setting]:
    sql = """
        SELECT ss.id, pa.id, pa.auth_account_id, pa.payment_method,
               coalesce(pa.statement_notification_enabled, false)
          FROM statement_settings ss
          JOIN payment_accounts pa ON pa.id = ss.payment_account_id
         WHERE ss.frequency = %s AND ss.from_date <= %s AND (ss.to_date IS NULL OR ss.to_date >= %s)
    """
    args: list = [frequency, day, day]
    if ends_today:
        sql += " AND ss.to_date = %s"
        args.append(day)
    if account is not None:
        sql += " AND pa.auth_account_id = %s"
        args.append(account)
    cur.execute(sql + " ORDER BY pa.id, ss.id", args)
    return [Setting(*row) for row in cur.fetchall()]


def _has_interim(cur, account_id: int, start: date, end: date) -> bool:
    cur.execute(
        """SELECT 1 FROM statements WHERE payment_account_id = %s AND is_interim_statement
            AND from_date <= %s AND to_date >= %s LIMIT 1""",
        (account_id, start, end),
    )
    return cur.fetchone() is not None


def _invoices(cur, auth_account_id: str | None, lo: datetime, hi: datetime) -> list[tuple[int, str]]:
    cur.execute(
        """SELECT i.id, i.payment_method_code, pa.payment_method
             FROM invoices i JOIN payment_accounts pa ON pa.id = i.payment_account_id
            WHERE pa.auth_account_id = %s AND i.created_on >= %s AND i.created_on < %s""",
        (auth_account_id, lo, hi),
    )
    kept = []
    for invoice_id, method, account_method in cur.fetchall():
        # EFT accounts see only EFT invoices; every other account sees every non-EFT invoice
        if (method == "EFT") == (account_method == "EFT"):
            kept.append((invoice_id, method))
    return kept


def reference_generate(
    conn,
    statement_day: date,
    account: str | None = None,
    *,
    override: bool = True,
    created_on: date,
) -> dict[str, int]:
    """Generate statements for ``statement_day`` on a psycopg2 connection (caller commits).

    Returns the number of statements written per kind.
    """
    written: dict[str, int] = {}
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        for kind, frequency, start, end in statement_periods(statement_day):
            settings = _settings(cur, frequency, statement_day, account, ends_today=kind == "GAP")
            if kind == "GAP":
                settings = [s for s in settings if not _has_interim(cur, s.account_id, start, end)]
            reusable: dict[int, tuple[int, str | None]] = {}
            if override:
                for account_id in dict.fromkeys(s.account_id for s in settings):
                    cur.execute(
                        """SELECT id, payment_methods FROM statements
                            WHERE payment_account_id = %s AND frequency = %s AND from_date = %s
                              AND to_date = %s AND NOT is_interim_statement ORDER BY id""",
                        (account_id, frequency, start, end),
                    )
                    existing = cur.fetchall()
                    if existing:
                        cur.execute(
                            "DELETE FROM statement_invoices WHERE statement_id = ANY(%s)",
                            ([row[0] for row in existing],),
                        )
                        reusable[account_id] = existing[0]
            lo = pacific_midnight_as_utc(start)
            hi = pacific_midnight_as_utc(end + timedelta(days=1))
            linked: set[int] = set()  # statements that got their invoices in this period already
            for s in settings:
                invoices = _invoices(cur, s.auth_account_id, lo, hi)
                # every setting of the account (two of one frequency = bad history) maps to the same
                # reused statement, as the job's lookup by (account, frequency, from, to) does
                reuse = reusable.get(s.account_id)
                if invoices:
                    methods = ",".join(sorted({m for _, m in invoices}))
                elif reuse is not None:
                    methods = reuse[1]
                else:
                    methods = s.account_payment_method
                status = "PENDING" if s.notify and not override else "SKIP"
                if reuse is not None:
                    statement_id = reuse[0]
                    cur.execute(
                        """UPDATE statements SET notification_status_code = %s, payment_methods = %s,
                                  created_on = %s, is_empty = %s WHERE id = %s""",
                        (status, methods, created_on, not invoices, statement_id),
                    )
                else:
                    cur.execute(
                        """INSERT INTO statements (frequency, statement_settings_id, payment_account_id,
                                  from_date, to_date, created_on, notification_status_code,
                                  is_interim_statement, payment_methods, is_empty)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, false, %s, %s) RETURNING id""",
                        (
                            frequency,
                            s.settings_id,
                            s.account_id,
                            start,
                            end,
                            created_on,
                            status,
                            methods,
                            not invoices,
                        ),
                    )
                    statement_id = cur.fetchone()[0]
                if invoices and statement_id not in linked:
                    linked.add(statement_id)
                    cur.executemany(
                        "INSERT INTO statement_invoices (statement_id, invoice_id) VALUES (%s, %s)",
                        [(statement_id, invoice_id) for invoice_id, _ in invoices],
                    )
                written[kind] = written.get(kind, 0) + 1
    return written


def snapshot(cur, statement_day: date, max_id_before: int) -> list[tuple]:
    """Statements ending on ``statement_day`` with their invoice ids, normalised for comparison.

    Every statement a run touches ends on its statement day. Ids of statements created by the run are
    masked (-1); ids that existed before (``<= max_id_before``) are kept, since reuse must keep them.
    """
    cur.execute(
        """SELECT s.id, s.frequency, s.statement_settings_id, s.payment_account_id, s.from_date, s.to_date,
                  s.created_on, s.notification_status_code, s.is_interim_statement, s.payment_methods,
                  s.is_empty,
                  coalesce(array_agg(si.invoice_id ORDER BY si.invoice_id)
                           FILTER (WHERE si.invoice_id IS NOT NULL), '{}')
             FROM statements s LEFT JOIN statement_invoices si ON si.statement_id = s.id
            WHERE s.to_date = %s GROUP BY s.id""",
        (statement_day,),
    )
    rows = [(r[0] if r[0] <= max_id_before else -1, *r[1:11], tuple(r[11])) for r in cur.fetchall()]
    return sorted(rows, key=repr)


def table_counts(cur) -> tuple[int, int, int]:
    cur.execute(
        """SELECT (SELECT count(*) FROM statements), (SELECT count(*) FROM statement_invoices),
                  (SELECT coalesce(max(id), 0) FROM statements)"""
    )
    return cur.fetchone()
