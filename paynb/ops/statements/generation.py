"""Set-based statement generation that reproduces ``GENERATE_STATEMENTS`` (docs/statements.md).

The job loops over accounts and pays round trips per account; here every statement day, frequency
and account is handled by a fixed number of SQL statements over four relations:

1. ``targets``: one row per statement to write (period × active setting × account) with, for an
   override, every non-interim statement of that account and period (lowest id first = the one reused);
2. ``inv``: the invoices of each target (Pacific-midnight window over naive-UTC ``created_on``, all
   statuses, EFT accounts only EFT invoices, other accounts every non-EFT invoice);
3. ``details``: per target ``is_empty``, sorted ``payment_methods`` and ``notification_status_code``;
4. ``old``: the statement_invoices currently on the matched statements.

A dry run evaluates them as CTEs in a read-only transaction. Apply materialises them as temporary
tables in one :func:`paynb.db.write_transaction`, recomputes the plan there and refuses unless it still
hashes to the confirmed sha256, then writes: links removed, reused statements updated, new statements
and links inserted. Every lookup into the big tables is an index probe (no scan of statements or
statement_invoices), so the cost follows the number of statements written, not the table sizes.

Rules kept from the job (docs/statements.md#observed-behaviour): windows are DST-correct Pacific days (1); invoice status is ignored (3);
EFT matching uses the invoice account's current method (4); gap statements only for WEEKLY settings
ending that day with no covering interim statement (5); MONTHLY ignores the setting's from_date (6);
an override empties every matching non-interim duplicate and reuses the lowest id, leaving the others
with no invoices and their old ``is_empty`` (7); an account filter limits every frequency (8);
``created_on`` is the UTC date of the run (10); an override always writes ``SKIP`` (11).
``payment_methods`` is written sorted (9); an empty new statement falls back to the account's
method, a reused one that is now empty keeps its old value.

The job deletes all links of the matched statements and re-inserts the new list. Here links that would
come back identical are kept: the resulting (statement_id, invoice_id) rows are the same, only the
surrogate ``statement_invoices.id`` of unchanged links differs from what the job would give (nothing
references it). Reused statements whose values do not change are not rewritten.

If one account has two settings of the same frequency active on a day (bad settings history), the job
looks the statement to reuse up by (account, frequency, from, to), so with an override every setting
of that account maps to the same reused statement (lowest id): it holds the invoices once and every
other matching statement is emptied. Only when no statement of the period exists yet does each setting
get a new statement of its own (with its settings id). Re-running the same day therefore keeps the row
count: a first run writes one row per setting, later override runs write none. See
``docs/statement-generation.md`` for the job's code path and the one case paynb does not
copy (an account filter on a first run, where the job links the invoices to one statement only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paynb import db
from paynb.errors import ConfirmMismatch, StalePlanError
from paynb.ops.statements.periods import (
    KIND_FREQUENCY,
    KINDS,
    Period,
    check_range,
    parse_account,
    periods_for_range,
    require_day,
)
from paynb.plan import Plan
from paynb.timez import to_naive_utc, utcnow_naive

PLAN_KIND = "statements.generate"
# serialises paynb statement runs against each other (pg_advisory_xact_lock key, "paynbstm")
_LOCK_KEY = 0x7061796E6273746D

# -- the three relations -------------------------------------------------------------------------

_TARGETS = """
WITH periods AS (
    SELECT *
      FROM unnest(CAST(:p_ord AS integer[]), CAST(:p_day AS date[]), CAST(:p_kind AS text[]),
                  CAST(:p_freq AS text[]), CAST(:p_from AS date[]), CAST(:p_to AS date[]),
                  CAST(:p_lo AS timestamp[]), CAST(:p_hi AS timestamp[]))
           AS p(ord, statement_day, kind, frequency, from_date, to_date, lo, hi)
),
candidates AS (
    SELECT p.ord, p.kind, p.statement_day, p.frequency, p.from_date, p.to_date, p.lo, p.hi,
           ss.id AS settings_id, pa.id AS payment_account_id, pa.auth_account_id,
           pa.payment_method AS account_payment_method,
           coalesce(pa.statement_notification_enabled, false) AS notify
      FROM periods p
      JOIN statement_settings ss
        ON ss.frequency = p.frequency
       AND ss.from_date <= p.statement_day
       AND (ss.to_date IS NULL OR ss.to_date >= p.statement_day)
       AND (p.kind <> 'GAP' OR ss.to_date = p.statement_day)
      JOIN payment_accounts pa ON pa.id = ss.payment_account_id
     WHERE (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = CAST(:account AS varchar))
       AND (p.kind <> 'GAP' OR NOT EXISTS (
            SELECT 1 FROM statements x
             WHERE x.payment_account_id = pa.id AND x.is_interim_statement
               AND x.from_date <= p.from_date AND x.to_date >= p.statement_day))
       AND (NOT CAST(:missing_only AS boolean) OR NOT EXISTS (
            SELECT 1 FROM statements x
             WHERE x.payment_account_id = pa.id AND x.frequency = p.frequency
               AND x.from_date = p.from_date AND x.to_date = p.to_date))
),
ranked AS (
    SELECT c.*,
           row_number() OVER (PARTITION BY c.payment_account_id, c.frequency, c.from_date, c.to_date
                              ORDER BY c.settings_id) AS key_rank
      FROM candidates c
)
SELECT row_number() OVER (ORDER BY r.ord, r.payment_account_id, r.settings_id)::integer AS tid,
       r.ord, r.kind, r.statement_day, r.frequency, r.from_date, r.to_date, r.lo, r.hi,
       r.settings_id, r.payment_account_id, r.auth_account_id, r.account_payment_method, r.notify,
       m.ids[1] AS reuse_id, m.first_methods AS reuse_payment_methods, m.ids AS match_ids
  FROM ranked r
  -- an override's cleanup set: every non-interim statement of the period, lowest id first (index lookup)
  LEFT JOIN LATERAL (
        SELECT array_agg(x.id ORDER BY x.id) AS ids,
               (array_agg(x.payment_methods ORDER BY x.id))[1] AS first_methods
          FROM statements x
         WHERE CAST(:override AS boolean)
           AND x.payment_account_id = r.payment_account_id AND x.frequency = r.frequency
           AND x.from_date = r.from_date AND x.to_date = r.to_date AND NOT x.is_interim_statement) m ON true
 -- a second setting of the same frequency maps to the statement the first one reuses (the job looks
 -- the reused statement up by account, frequency and period); it writes a row only when none exists
 WHERE r.key_rank = 1 OR m.ids IS NULL
"""

_INV = """
SELECT t.tid, i.id AS invoice_id, i.payment_method_code
  FROM paynb_stmt_targets t
  JOIN payment_accounts ipa ON ipa.auth_account_id = t.auth_account_id
  JOIN invoices i
    ON i.payment_account_id = ipa.id AND i.created_on >= t.lo AND i.created_on < t.hi
 -- the run's overall window, as constants, lets the planner range-scan created_on
 WHERE i.created_on >= CAST(:win_lo AS timestamp) AND i.created_on < CAST(:win_hi AS timestamp)
   AND CASE WHEN ipa.payment_method = 'EFT' THEN i.payment_method_code = 'EFT'
            ELSE i.payment_method_code <> 'EFT' END
"""

_DETAILS = """
SELECT t.tid, t.kind, t.statement_day, t.frequency, t.from_date, t.to_date, t.settings_id,
       t.payment_account_id, t.auth_account_id, t.reuse_id,
       coalesce(a.invoice_count, 0)::integer AS invoice_count,
       a.invoice_count IS NULL AS is_empty,
       CASE WHEN a.invoice_count IS NOT NULL THEN a.methods
            WHEN t.reuse_id IS NOT NULL THEN t.reuse_payment_methods
            ELSE t.account_payment_method END AS payment_methods,
       CASE WHEN t.notify AND NOT CAST(:override AS boolean) THEN 'PENDING' ELSE 'SKIP' END
           AS notification_status_code,
       coalesce(a.invoices_md5, '') AS invoices_md5,
       t.reuse_id AS statement_id  -- new statements get theirs from the sequence at apply
  FROM paynb_stmt_targets t
  LEFT JOIN (
        SELECT tid, count(*) AS invoice_count,
               string_agg(DISTINCT payment_method_code, ',' ORDER BY payment_method_code) AS methods,
               md5(string_agg(invoice_id::text, ',' ORDER BY invoice_id)) AS invoices_md5
          FROM paynb_stmt_inv
         GROUP BY tid) a ON a.tid = t.tid
"""

# the statement_invoices an override finds on the matched statements; = ANY(ARRAY(...)) probes the
# statement_id index instead of scanning statement_invoices
_OLD = """
SELECT si.id, si.statement_id, si.invoice_id
  FROM statement_invoices si
 WHERE si.statement_id = ANY (ARRAY(SELECT unnest(match_ids) FROM paynb_stmt_targets))
"""

# per kind: what would be written, what an override empties, and one digest of every row
_REPORT_CTES = """
summary AS (
    SELECT kind, count(*) AS statements, count(*) FILTER (WHERE reuse_id IS NULL) AS new,
           count(reuse_id) AS reused, sum(invoice_count) AS statement_invoices,
           count(*) FILTER (WHERE is_empty) AS empty,
           count(*) FILTER (WHERE notification_status_code = 'PENDING') AS pending
      FROM paynb_stmt_details
     GROUP BY kind
),
matching AS (
    SELECT t.kind, mid AS id FROM paynb_stmt_targets t CROSS JOIN LATERAL unnest(t.match_ids) mid
),
existing AS (
    SELECT kind, count(*) AS existing FROM matching GROUP BY kind
),
wanted AS (
    SELECT d.kind, d.tid, d.reuse_id, i.invoice_id
      FROM paynb_stmt_details d
      JOIN paynb_stmt_inv i ON i.tid = d.tid
),
removed AS (
    SELECT m.kind, count(*) AS links_removed
      FROM matching m
      JOIN paynb_stmt_old o ON o.statement_id = m.id
     WHERE NOT EXISTS (SELECT 1 FROM wanted w WHERE w.reuse_id = o.statement_id AND w.invoice_id = o.invoice_id)
     GROUP BY m.kind
),
added AS (
    SELECT w.kind, count(*) AS links_added
      FROM wanted w
     WHERE w.reuse_id IS NULL
        OR NOT EXISTS (SELECT 1 FROM paynb_stmt_old o
                        WHERE o.statement_id = w.reuse_id AND o.invoice_id = w.invoice_id)
     GROUP BY w.kind
),
digest AS (
    SELECT md5(string_agg(concat_ws('|', tid, kind, statement_day, payment_account_id, settings_id,
                                    from_date, to_date, coalesce(reuse_id::text, '-'),
                                    notification_status_code, coalesce(payment_methods, '-'), is_empty,
                                    invoice_count, invoices_md5), ';' ORDER BY tid)) AS value
      FROM paynb_stmt_details
)
SELECT s.kind, s.statements, s.new, s.reused, s.statement_invoices, s.empty, s.pending,
       coalesce(e.existing, 0) AS existing, coalesce(r.links_removed, 0) AS links_removed,
       coalesce(a.links_added, 0) AS links_added,
       (SELECT value FROM digest) AS digest
  FROM summary s
  LEFT JOIN existing e ON e.kind = s.kind
  LEFT JOIN removed r ON r.kind = s.kind
  LEFT JOIN added a ON a.kind = s.kind
"""

_DRY_RUN_SQL = (
    "WITH paynb_stmt_targets AS MATERIALIZED (\n"
    + _TARGETS
    + "),\npaynb_stmt_inv AS MATERIALIZED (\n"
    + _INV
    + "),\npaynb_stmt_details AS MATERIALIZED (\n"
    + _DETAILS
    + "),\npaynb_stmt_old AS MATERIALIZED (\n"
    + _OLD
    + "),\n"
    + _REPORT_CTES
)
_APPLY_REPORT_SQL = "WITH " + _REPORT_CTES

_CREATE_TEMP = (
    ("paynb_stmt_targets", _TARGETS),
    ("paynb_stmt_inv", _INV),
    ("paynb_stmt_details", _DETAILS),
    ("paynb_stmt_old", _OLD),
)

# the override's cleanup as a diff: links the job would delete and re-insert identically are kept
_DELETE_LINKS = """
DELETE FROM statement_invoices si
 WHERE si.id = ANY (ARRAY(
        SELECT o.id FROM paynb_stmt_old o
         WHERE NOT EXISTS (SELECT 1 FROM paynb_stmt_details d JOIN paynb_stmt_inv i ON i.tid = d.tid
                            WHERE d.reuse_id = o.statement_id AND i.invoice_id = o.invoice_id)))
"""

# only rows whose values change; = ANY(ARRAY(...)) makes it probe the primary key, not scan statements
_UPDATE_REUSED = """
UPDATE statements x
   SET notification_status_code = d.notification_status_code,
       payment_methods = d.payment_methods,
       created_on = :created_on,
       is_empty = d.is_empty
  FROM paynb_stmt_details d
 WHERE x.id = d.reuse_id
   AND x.id = ANY (ARRAY(SELECT reuse_id FROM paynb_stmt_details WHERE reuse_id IS NOT NULL))
   AND (x.notification_status_code, x.payment_methods, x.created_on, x.is_empty)
       IS DISTINCT FROM (d.notification_status_code, d.payment_methods, CAST(:created_on AS date), d.is_empty)
"""

_ASSIGN_IDS = """
UPDATE paynb_stmt_details d
   SET statement_id = n.id
  FROM (SELECT tid, nextval('statements_id_seq')::integer AS id
          FROM (SELECT tid FROM paynb_stmt_details WHERE reuse_id IS NULL ORDER BY tid) o) n
 WHERE d.tid = n.tid
"""

_INSERT_STATEMENTS = """
INSERT INTO statements (id, frequency, statement_settings_id, payment_account_id, from_date, to_date,
                        created_on, notification_status_code, is_interim_statement, payment_methods,
                        is_empty)
SELECT statement_id, frequency, settings_id, payment_account_id, from_date, to_date,
       :created_on, notification_status_code, false, payment_methods, is_empty
  FROM paynb_stmt_details
 WHERE reuse_id IS NULL
 ORDER BY statement_id
"""

_INSERT_LINKS = """
INSERT INTO statement_invoices (statement_id, invoice_id)
SELECT d.statement_id, i.invoice_id
  FROM paynb_stmt_inv i
  JOIN paynb_stmt_details d ON d.tid = i.tid
 WHERE d.reuse_id IS NULL
    OR NOT EXISTS (SELECT 1 FROM paynb_stmt_old o
                    WHERE o.statement_id = d.reuse_id AND o.invoice_id = i.invoice_id)
 ORDER BY d.statement_id, i.invoice_id
"""


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindCounts:
    """What one kind of statement (DAILY, WEEKLY, GAP = weekly cut short, MONTHLY) would get."""

    kind: str
    statements: int = 0
    new: int = 0
    reused: int = 0
    statement_invoices: int = 0
    empty: int = 0
    pending: int = 0
    existing: int = 0  # non-interim statements an override matches (reused + duplicates)
    links_removed: int = 0  # statement_invoices deleted (from duplicates, or no longer in the window)
    links_added: int = 0  # statement_invoices inserted (new statements, or new in the window)

    @property
    def frequency(self) -> str:
        return KIND_FREQUENCY[self.kind]

    @property
    def duplicates_emptied(self) -> int:
        return self.existing - self.reused


@dataclass(frozen=True)
class GenerationPlan:
    """A dry run: per-kind counts of the statements and statement_invoices that would be written."""

    from_date: date
    to_date: date
    account: str | None
    override: bool
    missing_only: bool
    created_on: date
    kinds: tuple[str, ...]
    counts: tuple[KindCounts, ...]
    digest: str

    def count(self, kind: str) -> KindCounts:
        for c in self.counts:
            if c.kind == kind:
                return c
        return KindCounts(kind)

    @property
    def total_statements(self) -> int:
        return sum(c.statements for c in self.counts)

    @property
    def total_statement_invoices(self) -> int:
        return sum(c.statement_invoices for c in self.counts)

    def to_plan(self) -> Plan:
        body = {
            # what the statements.generate fix re-plans from (paynb/ops/statements/apply.py)
            "params": {
                "from_date": self.from_date,
                "to_date": self.to_date,
                "account": self.account,
                "override": self.override,
                "missing_only": self.missing_only,
            },
            "from_date": self.from_date,
            "to_date": self.to_date,
            "account": self.account,
            "override": self.override,
            "missing_only": self.missing_only,
            "created_on": self.created_on,
            "counts": {c.kind: _counts_dict(c) for c in self.counts},
            "rows_md5": self.digest,
        }
        days = f"{self.from_date}" if self.from_date == self.to_date else f"{self.from_date}..{self.to_date}"
        summary = (
            f"statements for {days}"
            + (f" account {self.account}" if self.account else "")
            + f": {self.total_statements} statements, {self.total_statement_invoices} statement_invoices"
        )
        warnings = []
        dup = sum(c.duplicates_emptied for c in self.counts)
        if dup:
            warnings.append(f"{dup} duplicate statements lose their invoices (ids kept, docs/statements.md)")
        return Plan(kind=PLAN_KIND, body=body, summary=summary, warnings=tuple(warnings))

    @property
    def sha256(self) -> str:
        return self.to_plan().sha256

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {
                "kind": c.kind,
                "frequency": c.frequency,
                "statements": c.statements,
                "new": c.new,
                "reused": c.reused,
                "statement_invoices": c.statement_invoices,
                "empty": c.empty,
                "pending": c.pending,
                "links_removed": c.links_removed,
                "links_added": c.links_added,
                "duplicates_emptied": c.duplicates_emptied,
            }
            for c in self.counts
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "report": "statements_generate",
            "applied": False,
            "sha256": self.sha256,
            "plan": self.to_plan().to_dict(),
            "rows": self.to_frame().to_dict(orient="records"),
        }


@dataclass(frozen=True)
class GenerationResult:
    """An applied plan and the row counts the database reported."""

    plan: GenerationPlan
    run_id: str
    written: dict[str, int] = field(default_factory=dict)
    #: ids of the statements written: {"new": [...], "reused": [...]} (reused = existing ids kept)
    statement_ids: dict[str, list[int]] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.plan.to_frame()

    def to_dict(self) -> dict[str, Any]:
        out = self.plan.to_dict()
        out.update(
            {
                "applied": True,
                "run_id": self.run_id,
                "written": dict(self.written),
                "statement_ids": {k: list(v) for k, v in self.statement_ids.items()},
            }
        )
        return out


def _counts_dict(c: KindCounts) -> dict[str, int]:
    return {
        "statements": c.statements,
        "new": c.new,
        "reused": c.reused,
        "statement_invoices": c.statement_invoices,
        "empty": c.empty,
        "pending": c.pending,
        "existing": c.existing,
        "links_removed": c.links_removed,
        "links_added": c.links_added,
    }


# -- planning ------------------------------------------------------------------------------------


def period_params(periods: list[Period]) -> dict[str, list[Any]]:
    """The periods as parallel arrays (bound parameters; windows computed here, in Python)."""
    bounds = [p.bounds_utc() for p in periods]
    return {
        "p_ord": list(range(len(periods))),
        "p_day": [p.statement_day for p in periods],
        "p_kind": [p.kind for p in periods],
        "p_freq": [p.frequency for p in periods],
        "p_from": [p.from_date for p in periods],
        "p_to": [p.to_date for p in periods],
        "p_lo": [b[0] for b in bounds],
        "p_hi": [b[1] for b in bounds],
        "win_lo": min((b[0] for b in bounds), default=None),
        "win_hi": max((b[1] for b in bounds), default=None),
    }


def _params(periods: list[Period], account: str | None, override: bool, missing_only: bool) -> dict:
    return {
        **period_params(periods),
        "account": account,
        "override": override,
        "missing_only": missing_only,
    }


def _plan_from_rows(
    rows: list[dict],
    *,
    from_date: date,
    to_date: date,
    periods: list[Period],
    account: str | None,
    override: bool,
    missing_only: bool,
    created_on: date,
) -> GenerationPlan:
    kinds = tuple(k for k in KINDS if any(p.kind == k for p in periods))
    by_kind = {r["kind"]: r for r in rows}
    counts = tuple(
        KindCounts(
            kind=k,
            **{
                name: int(by_kind[k][name])
                for name in (
                    "statements",
                    "new",
                    "reused",
                    "statement_invoices",
                    "empty",
                    "pending",
                    "existing",
                    "links_removed",
                    "links_added",
                )
            },
        )
        if k in by_kind
        else KindCounts(k)
        for k in kinds
    )
    digest = rows[0]["digest"] if rows and rows[0]["digest"] else ""
    return GenerationPlan(
        from_date=from_date,
        to_date=to_date,
        account=account,
        override=override,
        missing_only=missing_only,
        created_on=created_on,
        kinds=kinds,
        counts=counts,
        digest=digest,
    )


def _created_on(run_time: datetime | None) -> date:
    """``statements.created_on`` is the UTC date of the run (docs/statements.md#observed-behaviour item 10)."""
    return (to_naive_utc(run_time) if run_time else utcnow_naive()).date()


def plan_on(
    conn: Connection,
    from_date: date,
    to_date: date,
    *,
    account: str | None = None,
    override: bool = True,
    missing_only: bool = False,
    run_time: datetime | None = None,
) -> GenerationPlan:
    """Dry run on an open connection (read-only is enough)."""
    periods = periods_for_range(from_date, to_date)
    rows = db.fetch_all(conn, _DRY_RUN_SQL, _params(periods, account, override, missing_only))
    return _plan_from_rows(
        rows,
        from_date=from_date,
        to_date=to_date,
        periods=periods,
        account=account,
        override=override,
        missing_only=missing_only,
        created_on=_created_on(run_time),
    )


def apply_on(
    conn: Connection,
    from_date: date,
    to_date: date,
    *,
    confirm: str | None,
    account: str | None = None,
    override: bool = True,
    missing_only: bool = False,
    run_time: datetime | None = None,
) -> tuple[GenerationPlan, dict[str, int]]:
    """Apply inside the caller's write transaction. Re-plans there and checks ``confirm`` first."""
    if not confirm:
        raise ConfirmMismatch("applying statements needs the sha256 of the reviewed dry run (confirm)")
    periods = periods_for_range(from_date, to_date)
    params = _params(periods, account, override, missing_only)
    created_on = _created_on(run_time)
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    for name, select in _CREATE_TEMP:
        # names are module constants; values stay bound parameters
        conn.execute(sa.text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {select}"), params)
    rows = db.fetch_all(conn, _APPLY_REPORT_SQL, params)
    plan = _plan_from_rows(
        rows,
        from_date=from_date,
        to_date=to_date,
        periods=periods,
        account=account,
        override=override,
        missing_only=missing_only,
        created_on=created_on,
    )
    if confirm.strip().lower() != plan.sha256:
        raise StalePlanError(
            f"the statement plan is now {plan.sha256[:12]}…, not the confirmed {confirm.strip()[:12]}…"
        )
    written = {
        "statement_invoices_deleted": conn.execute(sa.text(_DELETE_LINKS)).rowcount,
        "statements_updated": conn.execute(sa.text(_UPDATE_REUSED), {"created_on": created_on}).rowcount,
    }
    conn.execute(sa.text(_ASSIGN_IDS))
    written["statements_inserted"] = conn.execute(
        sa.text(_INSERT_STATEMENTS), {"created_on": created_on}
    ).rowcount
    written["statement_invoices_inserted"] = conn.execute(sa.text(_INSERT_LINKS)).rowcount
    return plan, written


def written_statement_ids(conn: Connection) -> dict[str, list[int]]:
    """After :func:`apply_on`, in its transaction: the ids of the statements it wrote, new and reused."""
    # two arrays in one row: a row per statement costs more in Python than the query (14k on a Saturday)
    new, reused = conn.execute(
        sa.text(
            "SELECT coalesce(array_agg(statement_id ORDER BY statement_id) FILTER (WHERE reuse_id IS NULL), '{}'),"
            " coalesce(array_agg(statement_id ORDER BY statement_id) FILTER (WHERE reuse_id IS NOT NULL), '{}')"
            " FROM paynb_stmt_details"
        )
    ).one()
    return {"new": list(new), "reused": list(reused)}


# -- public API ----------------------------------------------------------------------------------


def _run(
    from_date: date,
    to_date: date,
    *,
    account: str | None,
    override: bool,
    missing_only: bool,
    apply: bool,
    confirm: str | None,
    engine: Engine | None,
    run_id: str | None,
    run_time: datetime | None,
) -> GenerationPlan | GenerationResult:
    check_range(from_date, to_date)
    given_engine = engine is not None
    engine = engine or db.create_engine(run_id=run_id)
    kwargs = dict(account=account, override=override, missing_only=missing_only, run_time=run_time)
    from paynb.ops.statements import apply as fix

    if not apply:
        with db.read_connection(engine) as conn:
            return fix.remember(plan_on(conn, from_date, to_date, **kwargs))
    # the write is the statements.generate fix: confirmed, re-planned in its transaction, in the ledger
    from paynb.context import Env

    if not confirm:
        raise ConfirmMismatch("applying statements needs the sha256 of the reviewed dry run (confirm)")
    plan = fix.recall(
        confirm, from_date, to_date, account=account, override=override, missing_only=missing_only
    )
    if plan is None:  # not planned in this process: plan now (the apply re-plans in its transaction anyway)
        with db.read_connection(engine) as conn:
            plan = plan_on(conn, from_date, to_date, **kwargs)
    # a given engine serves both (tests, benchmarks); otherwise applies write as the writer role
    overrides = {"engine": engine, "write_engine": engine} if given_engine else {"engine": engine}
    env = Env(run_id=run_id, overrides=overrides)
    return fix.apply_generation(plan, confirm, env=env, run_time=run_time)


def generate(
    statement_day: date | str,
    account: str | None = None,
    *,
    override: bool = True,
    apply: bool = False,
    confirm: str | None = None,
    engine: Engine | None = None,
    run_id: str | None = None,
    run_time: datetime | None = None,
) -> GenerationPlan | GenerationResult:
    """What ``invoke_jobs.py GENERATE_STATEMENTS <statement_day> [account]`` does, set-based.

    ``override=True`` is the job with a date argument (cleanup and id reuse, notifications SKIP);
    ``override=False`` is the nightly run for that day (no cleanup; PENDING when notifications are on).
    Dry run by default: returns a :class:`GenerationPlan`. With ``apply=True`` and ``confirm`` equal to
    the dry run's ``sha256``, writes everything in one transaction and returns a :class:`GenerationResult`.

    Example::

        plan = generate("2025-03-08")
        generate("2025-03-08", apply=True, confirm=plan.sha256)
    """
    day = require_day(statement_day, "statement_day")
    return _run(
        day,
        day,
        account=parse_account(account),
        override=override,
        missing_only=False,
        apply=apply,
        confirm=confirm,
        engine=engine,
        run_id=run_id,
        run_time=run_time,
    )


def generate_range(
    from_date: date | str,
    to_date: date | str,
    account: str | None = None,
    *,
    missing_only: bool = True,
    override: bool = True,
    apply: bool = False,
    confirm: str | None = None,
    engine: Engine | None = None,
    run_id: str | None = None,
    run_time: datetime | None = None,
) -> GenerationPlan | GenerationResult:
    """Every statement day from ``from_date`` to ``to_date`` in one run (one transaction).

    ``missing_only=True`` (default) writes only the statements no row exists for yet, which fills
    the gaps :func:`find_statement_gaps` reports and leaves existing statements untouched.
    ``missing_only=False`` does what running the job once per day with a date override would do.
    """
    start = require_day(from_date, "from_date")
    end = require_day(to_date, "to_date")
    return _run(
        start,
        end,
        account=parse_account(account),
        override=override,
        missing_only=missing_only,
        apply=apply,
        confirm=confirm,
        engine=engine,
        run_id=run_id,
        run_time=run_time,
    )
