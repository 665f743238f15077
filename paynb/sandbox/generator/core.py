"""The generator's core: the entry point :func:`generate`, the static catalogue, the choice of the
accounts, dates and files the named scenarios use, the bulk SQL steps, bookkeeping and the summary.

The rows each named scenario adds live in the sibling modules (see the package docstring); what is copied
from sbc-pay, and from which file: docs/sandbox-generator.md. Lifecycle rules follow
docs/status-lifecycles.md#by-payment-method and statements follow docs/statements.md.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool
from tqdm import tqdm

from paynb.db import build_url, translate_error
from paynb.errors import InputError, PaynbError, SandboxError
from paynb.formats.settlement_csv import settlement_header
from paynb.sandbox.scenarios import BY_NAME
from paynb.timez import pacific_midnight_utc, pacific_today

GENERATOR_VERSION = "1"
WINDOW_DAYS = 730
STALE_DAYS = 20


@dataclass(frozen=True)
class Scale:
    accounts: int
    invoices: int


SCALES: dict[str, Scale] = {
    "small": Scale(accounts=60, invoices=5_000),
    "medium": Scale(accounts=2_000, invoices=100_000),
    # >= 12,583 accounts with WEEKLY settings (83% of accounts are WEEKLY) and >= 1,000,000 invoices
    "large": Scale(accounts=18_000, invoices=1_050_000),
}

# settlement CSV header, as written by sbc-pay's test utility (docs/files.md#columns)
CSV_HEADER = list(settlement_header("test"))
STORED_CSV_DAYS = 16  # processed CSVs of the last N days are also put in the bucket
NSF_FEE = Decimal("30.00")

# --- static catalogue: fee codes, filing types, fee schedules, GLs ---------------------------------
# fee_codes and filing_types are the rows sbc-pay's data migrations leave (catalogue/*.csv, extracted by
# tools/extract_fee_catalogue.py); docs/sandbox-generator.md names the migrations.
CATALOGUE_START = date(2019, 1, 1)
# id, filing type, corp type, fee, priority, future effective, service fee, statutory GST, service GST;
# (filing type, corp type, fee code) as sbc-pay's migrations insert them (docs/sandbox-generator.md)
FEE_SCHEDULES: list[tuple[int, str, str, str, str | None, str | None, str | None, bool, bool]] = [
    (1, "BCANN", "BC", "EN108", None, None, "TRF01", False, False),
    (2, "BCINC", "BC", "EN109", "PRI01", "FUT01", "TRF01", False, False),
    (3, "BCADD", "BC", "EN101", "PRI01", "FUT01", "TRF01", False, False),
    (4, "BCANN", "BEN", "EN108", None, None, "TRF01", False, False),
    (5, "NM620", "NRO", "EN103", "PRI01", None, "TRF01", False, False),
    (6, "CSBFILE", "CSO", "EN110", None, None, None, False, False),
    (7, "WILLSEARCH", "VS", "EN202", "PRI02", None, "TRF01", False, False),
    (8, "SERCH", "PPR", "EN110", None, None, "TRF01", False, False),
    (9, "OLLXTFI", "RPT", "EN111", None, None, "TRF01", False, False),
    (10, "BSRCH", "BUS", "EN110", None, None, "TRF01", True, True),
    (11, "NSF", "BCR", "NSF01", None, None, None, False, False),
]
NSF_FEE_SCHEDULE_ID = 11
# distribution_code_id, name, client, responsibility centre, service line, stob, project
SHARED_GLS: list[tuple[int, str, str, str, str, str, str]] = [
    (1, "BC Registries service fees", "112", "32363", "34725", "4375", "3200000"),
    (2, "GST on statutory fees", "112", "32363", "34725", "1278", "3200000"),
    (3, "GST on service fees", "112", "32363", "34725", "1279", "3200000"),
    (4, "Court Services partner disbursement", "104", "20101", "10101", "4300", "1000000"),
    (5, "Vital Statistics partner disbursement", "068", "48110", "10101", "4300", "1000000"),
]
# partner corp types (corp_types.has_partner_disbursements) -> the partner's GL; their revenue GL is its own
# statutory-GST GL, else sbc-pay's partner distribution job skips the line (docs/sandbox-generator.md)
PARTNER_GL = {"CSO": 4, "VS": 5}


def catalogue_rows(name: str) -> list[dict[str, str]]:
    """The rows of ``paynb/sandbox/catalogue/<name>`` (a CSV with a header)."""
    text = resources.files("paynb.sandbox").joinpath("catalogue", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def revenue_gl_id(fee_schedule_id: int) -> int:
    """The revenue distribution code of a fee schedule (also payment_line_items.fee_distribution_id)."""
    return 10 + fee_schedule_id


@dataclass
class GenerationSummary:
    """What the generator wrote, and the answers a report run on it should give."""

    scale: str
    seed: int
    as_of: date
    seconds: float
    counts: dict[str, int]
    scenarios: dict[str, dict[str, list[int]]]
    weekly_accounts: int
    stale_days: int = STALE_DAYS
    # stale report (APPROVED older than stale_days) as of a time inside the as_of day; any time of that
    # Pacific day gives the same figures because no invoice sits on a bucket edge
    stale_now_utc: datetime | None = None
    stale_rows: list[dict[str, Any]] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def stale_count(self) -> int:
        return sum(r["count"] for r in self.stale_rows)

    @property
    def stale_total(self) -> Decimal:
        return sum((r["total"] for r in self.stale_rows), Decimal("0.00"))

    def stale_by_method(self) -> dict[str, tuple[int, Decimal]]:
        out: dict[str, tuple[int, Decimal]] = {}
        for r in self.stale_rows:
            c, t = out.get(r["payment_method"], (0, Decimal("0.00")))
            out[r["payment_method"]] = (c + r["count"], t + r["total"])
        return out

    def stale_grid(self) -> dict[tuple[str, str], tuple[int, Decimal]]:
        return {(r["payment_method"], r["age_bucket"]): (r["count"], r["total"]) for r in self.stale_rows}


# --- SQL plumbing ------------------------------------------------------------------------------------
_STEP = re.compile(r"^-- step: (.+)$", re.MULTILINE)
_BIND = re.compile(r"(?<![:\w]):(\w+)")


def _sql_file(name: str) -> str:
    return resources.files("paynb.sandbox").joinpath("sql", name).read_text(encoding="utf-8")


def sql_steps(name: str) -> list[tuple[str, str]]:
    """(step name, SQL) pairs of a ``sql/*.sql`` file split at ``-- step:`` markers."""
    text = _sql_file(name)
    marks = list(_STEP.finditer(text))
    return [
        (m.group(1).strip(), text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)])
        for i, m in enumerate(marks)
    ]


def _run(conn: Connection, sql: str, params: dict[str, Any]) -> None:
    used = {k: v for k, v in params.items() if k in set(_BIND.findall(sql))}
    conn.execute(sa.text(sql), used)


def _all(conn: Connection, sql: str, **params: Any) -> list[sa.Row]:
    return conn.execute(sa.text(sql), params).all()


def _one(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(sa.text(sql), params).scalar()


# --- public entry point ------------------------------------------------------------------------------
def generate(
    url: str,
    scale: str = "small",
    seed: int = 42,
    as_of: date | None = None,
    progress: bool = False,
) -> GenerationSummary:
    """Fill an empty sandbox pay-db (schema applied) with synthetic data and the named scenarios.

    ``as_of`` is the sandbox's "today" (Pacific); the data cover the two years before it.
    Everything happens in one transaction: on any error nothing is written.
    """
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r} (one of {', '.join(SCALES)})", field="scale")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise InputError(f"must be an integer in [0, 2**31), got {seed!r}", field="seed")
    as_of = as_of or pacific_today()
    started = time.monotonic()
    engine = sa.create_engine(build_url(url), poolclass=NullPool)
    gen = Generator(scale, seed, as_of)
    try:
        with engine.begin() as conn:
            gen.run(conn, progress)
            summary = gen.summarize(conn)
    except PaynbError:
        raise
    except sa.exc.DBAPIError as err:
        raise translate_error(err, engine) from None
    finally:
        engine.dispose()
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


class Generator:
    def __init__(self, scale: str, seed: int, as_of: date) -> None:
        self.scale_name = scale
        self.scale = SCALES[scale]
        self.seed = seed
        self.as_of = as_of
        self.win_start = as_of - timedelta(days=WINDOW_DAYS)
        self.params: dict[str, Any] = {
            "seed": seed,
            "as_of": as_of,
            "win_start": self.win_start,
            "n_acc": self.scale.accounts,
            "n_inv": self.scale.invoices,
        }
        self.step_seconds: dict[str, float] = {}
        self.fks: list[sa.Row] = []
        self.replica = False
        self.indexes: list[sa.Row] = []
        self.scn: dict[str, dict[str, Any]] = {}  # name -> {"tables": {table: ids}, "details": {...}}
        self.picks: dict[str, Any] = {}

    # -- orchestration -----------------------------------------------------------------------------
    def run(self, conn: Connection, progress: bool) -> None:
        from paynb.sandbox.generator import settlement_csvs, statements  # they import this module

        self._prepare(conn)
        plan: list[tuple[str, Callable[[], None]]] = [
            ("drop indexes", lambda: self._drop_constraints(conn)),
            ("catalogue", lambda: self._catalogue(conn)),
        ]
        plan += [(n, self._sql_step(conn, s)) for n, s in sql_steps("gen_base.sql")]
        plan.append(("scenario choice", lambda: self._choose(conn)))
        plan += [(n, self._sql_step(conn, s)) for n, s in sql_steps("gen_derived.sql")]
        plan.append(("scenario rows", lambda: self._scenario_rows(conn)))
        plan.append(("settlement CSVs", lambda: settlement_csvs.settlement_csvs(self, conn)))
        plan += [(n, self._sql_step(conn, s)) for n, s in sql_steps("gen_statements.sql")]
        plan.append(("statement scenarios", lambda: statements.statement_scenarios(self, conn)))
        plan.append(("bookkeeping", lambda: self._finish(conn)))
        plan.append(("rebuild indexes and keys", lambda: self._restore_constraints(conn)))
        with tqdm(
            total=len(plan), desc=f"seeding {self.scale_name}", disable=not progress, unit="step"
        ) as bar:
            for name, fn in plan:
                bar.set_postfix_str(name)
                t0 = time.monotonic()
                fn()
                self.step_seconds[name] = round(time.monotonic() - t0, 2)
                if name == "invoice slots":
                    self.params["n_slots"] = int(_one(conn, "SELECT count(*) FROM g_slot"))
                bar.update()

    def _drop_constraints(self, conn: Connection) -> None:
        """Bulk load without secondary indexes and without per-row foreign-key checks.

        Indexes are rebuilt at the end. A superuser keeps the foreign keys and turns their triggers off
        for this transaction (session_replication_role); anyone else drops them and adds them back at
        the end, which checks every row in one pass.
        """
        self.replica = bool(_one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        if self.replica:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            self.fks = _all(
                conn,
                "SELECT format('%I.%I', n.nspname, t.relname), c.conname, pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = 'public' AND c.contype = 'f' ORDER BY 1, 2",
            )
        self.indexes = _all(
            conn,
            "SELECT format('%I.%I', n.nspname, ci.relname), pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) ORDER BY 1",
        )
        # names come from the catalog, not from input
        for table, name, _def in self.fks:
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _def in self.indexes:
            conn.exec_driver_sql(f"DROP INDEX {name}")

    def _restore_constraints(self, conn: Connection) -> None:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for _name, definition in self.indexes:
            conn.exec_driver_sql(definition)
        for table, name, definition in self.fks:
            conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        if self.replica:
            conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
        conn.exec_driver_sql("ANALYZE")

    def _sql_step(self, conn: Connection, sql: str) -> Callable[[], None]:
        return lambda: _run(conn, sql, self.params)

    def _prepare(self, conn: Connection) -> None:
        # temp_buffers only takes effect before the session's first temp table; the work tables are big
        conn.exec_driver_sql("SET temp_buffers = '1GB'")
        conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        exists = _one(
            conn,
            "SELECT to_regclass('public.invoices') IS NOT NULL AND "
            "to_regclass('paynb_sandbox.scenarios') IS NOT NULL",
        )
        if not exists:
            raise SandboxError(
                "the database has no pay-db sandbox schema",
                hint="create it first with paynb.sandbox.schema.apply_schema (paynb sandbox up does both)",
            )
        if _one(conn, "SELECT EXISTS (SELECT 1 FROM payment_accounts) OR EXISTS (SELECT 1 FROM invoices)"):
            raise SandboxError(
                "the database already holds pay-db data; the generator fills only an empty schema",
                hint="use a fresh database (paynb sandbox up recreates it)",
            )
        cur = conn.connection.cursor()
        try:
            cur.execute(_sql_file("gen_functions.sql"))
        finally:
            cur.close()

    # -- static catalogue --------------------------------------------------------------------------
    def _catalogue(self, conn: Connection) -> None:
        created = datetime.combine(CATALOGUE_START, datetime.min.time())
        conn.execute(
            sa.text("INSERT INTO fee_codes (code, amount) VALUES (:c, :a)"),
            [{"c": r["code"], "a": Decimal(r["amount"])} for r in catalogue_rows("fee_codes.csv")],
        )
        conn.execute(
            sa.text("INSERT INTO filing_types (code, description) VALUES (:c, :d)"),
            [{"c": r["code"], "d": r["description"]} for r in catalogue_rows("filing_types.csv")],
        )
        conn.execute(
            sa.text(
                "INSERT INTO fee_schedules (fee_schedule_id, filing_type_code, corp_type_code, fee_code, "
                "fee_start_date, priority_fee_code, future_effective_fee_code, service_fee_code, variable, "
                "show_on_pricelist, created_on, created_by, statutory_fees_gst_added, service_fees_gst_added) "
                "VALUES (:id, :ft, :ct, :fc, :start, :pri, :fut, :svc, false, true, :created, 'sandbox', :sg, :vg)"
            ),
            [
                {
                    "id": i,
                    "ft": ft,
                    "ct": ct,
                    "fc": fc,
                    "start": CATALOGUE_START,
                    "pri": pri,
                    "fut": fut,
                    "svc": svc,
                    "created": created,
                    "sg": sg,
                    "vg": vg,
                }
                for i, ft, ct, fc, pri, fut, svc, sg, vg in FEE_SCHEDULES
            ],
        )
        gl_sql = sa.text(
            "INSERT INTO distribution_codes (created_on, distribution_code_id, name, client, responsibility_centre, "
            "service_line, stob, project_code, start_date, created_by, stop_ejv, version, "
            "service_fee_distribution_code_id, statutory_fees_gst_distribution_code_id, "
            "service_fee_gst_distribution_code_id, disbursement_distribution_code_id) "
            "VALUES (:created, :id, :name, :client, :rc, :sl, :stob, :proj, :start, 'sandbox', false, 1, "
            ":svc, :sgst, :vgst, :disb)"
        )
        conn.execute(
            gl_sql,
            [
                {
                    "created": created,
                    "id": i,
                    "name": n,
                    "client": c,
                    "rc": rc,
                    "sl": sl,
                    "stob": st,
                    "proj": pj,
                    "start": CATALOGUE_START,
                    "svc": None,
                    "sgst": None,
                    "vgst": None,
                    "disb": None,
                }
                for i, n, c, rc, sl, st, pj in SHARED_GLS
            ],
        )
        conn.execute(
            gl_sql,
            [
                {
                    "created": created,
                    "id": revenue_gl_id(i),
                    "name": f"{ct} {ft} revenue",
                    "client": "112",
                    "rc": "32363",
                    "sl": "34725",
                    "stob": f"{4400 + i}",
                    "proj": "3200000",
                    "start": CATALOGUE_START,
                    "svc": 1 if svc else None,
                    "sgst": revenue_gl_id(i) if ct in PARTNER_GL else 2,
                    "vgst": 3,
                    "disb": PARTNER_GL.get(ct),
                }
                for i, ft, ct, _fc, _p, _f, svc, _sg, _vg in FEE_SCHEDULES
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO distribution_code_links (distribution_link_id, fee_schedule_id, distribution_code_id) "
                "VALUES (:id, :fs, :gl)"
            ),
            [{"id": i, "fs": i, "gl": revenue_gl_id(i)} for i, *_ in FEE_SCHEDULES],
        )
        conn.execute(
            sa.text(
                "INSERT INTO tax_rates (id, tax_type, rate, start_date, description, updated_by, updated_name) "
                "VALUES (1, 'GST', 0.05, '2019-01-01 00:00:00+00', 'Goods and services tax', 'sandbox', 'Sandbox')"
            )
        )

    # -- scenario choice (before the lifecycle is computed) ---------------------------------------
    def _choose(self, conn: Connection) -> None:
        a = self.as_of
        for ddl in (
            "CREATE TEMP TABLE g_flag_acc (account_id integer PRIMARY KEY, kind text NOT NULL, since date, "
            "cfs_status text) ON COMMIT DROP",
            "CREATE TEMP TABLE g_flag_grp (account_id integer, run_date date, kind text NOT NULL, "
            "PRIMARY KEY (account_id, run_date)) ON COMMIT DROP",
            "CREATE TEMP TABLE g_flag_file (appl_date date PRIMARY KEY, kind text NOT NULL) ON COMMIT DROP",
            "CREATE TEMP TABLE g_flag_ejv (run_date date PRIMARY KEY, kind text NOT NULL) ON COMMIT DROP",
        ):
            conn.exec_driver_sql(ddl)
        used: list[int] = []

        def flag_acc(acc: int, kind: str, since: date | None, cfs_status: str | None) -> None:
            conn.execute(
                sa.text("INSERT INTO g_flag_acc VALUES (:a, :k, :s, :c)"),
                {"a": acc, "k": kind, "s": since, "c": cfs_status},
            )
            used.append(acc)

        def flag_grp(acc: int, run_date: date, kind: str) -> None:
            conn.execute(
                sa.text("INSERT INTO g_flag_grp VALUES (:a, :r, :k)"), {"a": acc, "r": run_date, "k": kind}
            )
            used.append(acc)

        def pad_account(lo: date, hi: date, tag: int, min_n: int = 1) -> tuple[int, date] | None:
            """A PAD account not used yet with >= min_n invoices run in [lo, hi]; and its latest run."""
            row = conn.execute(
                sa.text(
                    "SELECT account_id, max(run_date) FROM g_inv0 "
                    "WHERE method = 'PAD' AND run_date BETWEEN :lo AND :hi AND account_id <> ALL(CAST(:used AS integer[])) "
                    "GROUP BY account_id HAVING count(*) >= :n "
                    "ORDER BY paynb_sandbox.u(:seed, :tag, account_id), account_id LIMIT 1"
                ),
                {"lo": lo, "hi": hi, "used": used, "n": min_n, "seed": self.seed, "tag": tag},
            ).first()
            return (row[0], row[1]) if row else None

        # PAD stuck without a reference: CREATE_INVOICES skips these accounts from `since` on. Small
        # scales may lack data in the preferred window; wider windows are tried in order.
        for j, (status, days) in enumerate((("PENDING_PAD_ACTIVATION", 45), ("FREEZE", 75), ("ACTIVE", 120))):
            hit = None
            for scale_up, min_n in ((1, 2), (1, 1), (3, 1), (6, 1)):
                since = a - timedelta(days=days * scale_up)
                hit = pad_account(since, a - timedelta(days=22), 60 + j, min_n)
                if hit:
                    break
            if hit is None:
                raise SandboxError(
                    f"scale {self.scale_name!r} has too few PAD invoices for pad_stuck_no_reference"
                )
            flag_acc(hit[0], "pad_noref", since, status)

        for kind, tag in (("uncharged", 64), ("cfs_missing", 65)):
            hit = None
            for lo, hi in ((45, 25), (120, 21), (600, 21)):
                hit = pad_account(a - timedelta(days=lo), a - timedelta(days=hi), tag)
                if hit:
                    break
            if hit is None:
                raise SandboxError(
                    f"scale {self.scale_name!r} has too few PAD invoices for the {kind} scenario"
                )
            flag_grp(hit[0], hit[1], kind)

        # NSF: the roll-up settled on a recent Application Date came back "Not PAID"
        row = None
        for lo, hi in ((14, 4), (40, 3), (600, 3)):
            row = conn.execute(
                sa.text(
                    "SELECT account_id, max(run_date) FROM g_inv0 WHERE method = 'PAD' "
                    "AND paynb_sandbox.next_bday(run_date) BETWEEN :lo AND :hi "
                    "AND account_id <> ALL(CAST(:used AS integer[])) "
                    "GROUP BY account_id ORDER BY paynb_sandbox.u(:seed, 66, account_id), account_id LIMIT 1"
                ),
                {"lo": a - timedelta(days=lo), "hi": a - timedelta(days=hi), "used": used, "seed": self.seed},
            ).first()
            if row:
                break
        if row is None:
            raise SandboxError(f"scale {self.scale_name!r} has too few PAD invoices for pad_nsf_freeze")
        nsf_acc, nsf_run = row
        nsf_appl = _one(conn, "SELECT paynb_sandbox.next_bday(:d)", d=nsf_run)
        lock_ts = _one(
            conn,
            "SELECT received_on FROM (SELECT paynb_sandbox.utc(CAST(:d AS date) + 1 + "
            "CASE WHEN extract(isodow FROM CAST(:d AS date) + 1) IN (6, 7) THEN time '17:30' "
            "ELSE time '08:30' END) AS received_on) x",
            d=nsf_appl,
        )
        flag_acc(nsf_acc, "pad_nsf", nsf_appl, "FREEZE")
        flag_grp(nsf_acc, nsf_run, "nsf")
        # a locked account cannot create PAD invoices any more
        conn.execute(
            sa.text("DELETE FROM g_inv0 WHERE account_id = :a AND created_on > :t"),
            {"a": nsf_acc, "t": lock_ts},
        )
        self.picks["nsf"] = {
            "account_id": nsf_acc,
            "run_date": nsf_run,
            "appl_date": nsf_appl,
            "lock_ts": lock_ts,
        }

        # settlement files that were never processed (most PAD roll-ups first)
        dates: list[sa.Row] = []
        for lo, hi in ((40, 22), (70, 21), (200, 21)):
            dates = _all(
                conn,
                "SELECT paynb_sandbox.next_bday(run_date) AS x, count(DISTINCT account_id) AS n FROM g_inv0 "
                "WHERE method = 'PAD' AND account_id <> ALL(CAST(:used AS integer[])) "
                "AND paynb_sandbox.next_bday(run_date) BETWEEN :lo AND :hi "
                "GROUP BY 1 ORDER BY n DESC, x DESC LIMIT 3",
                used=used,
                lo=a - timedelta(days=lo),
                hi=a - timedelta(days=hi),
            )
            if len(dates) == 3:
                break
        if len(dates) < 3:
            raise SandboxError(
                f"scale {self.scale_name!r} has too few PAD invoices for the settlement scenarios"
            )
        files = {
            "unprocessed_nsf": dates[0][0],
            "unprocessed_norow": dates[1][0],
            "unprocessed_started": dates[2][0],
        }
        for kind, d in files.items():
            conn.execute(sa.text("INSERT INTO g_flag_file VALUES (:d, :k)"), {"d": d, "k": kind})
        nsf_row = conn.execute(
            sa.text(
                "SELECT account_id, run_date FROM g_inv0 WHERE method = 'PAD' AND paynb_sandbox.next_bday(run_date) = :x "
                "AND account_id <> ALL(CAST(:used AS integer[])) "
                "ORDER BY paynb_sandbox.u(:seed, 67, account_id), account_id LIMIT 1"
            ),
            {"x": files["unprocessed_nsf"], "used": used, "seed": self.seed},
        ).first()
        flag_grp(nsf_row[0], nsf_row[1], "nsf_unprocessed")
        self.picks["files"] = files

        # EJV: a gov account whose journal was rejected (stop_ejv), and a file with no FEEDBACK
        stop = f1 = None
        for lo, hi in ((70, 30), (200, 25), (700, 25)):
            stop = conn.execute(
                sa.text(
                    "SELECT i.account_id, min(i.run_date) FILTER (WHERE i.run_date BETWEEN :lo AND :hi) AS f2 "
                    "FROM g_inv0 i JOIN g_acc ac ON ac.id = i.account_id AND ac.billable "
                    "WHERE i.method = 'EJV' GROUP BY i.account_id "
                    "HAVING min(i.run_date) FILTER (WHERE i.run_date BETWEEN :lo AND :hi) IS NOT NULL "
                    "ORDER BY (max(i.run_date) FILTER (WHERE i.run_date <= :recent) > "
                    "          min(i.run_date) FILTER (WHERE i.run_date BETWEEN :lo AND :hi)) DESC, "
                    "         count(*) DESC, i.account_id LIMIT 1"
                ),
                {
                    "lo": a - timedelta(days=lo),
                    "hi": a - timedelta(days=hi),
                    "recent": a - timedelta(days=21),
                },
            ).first()
            if stop:
                break
        if stop is None:
            raise SandboxError(f"scale {self.scale_name!r} has too few EJV invoices for ejv_errored_stop_ejv")
        flag_acc(stop[0], "ejv_stop", stop[1], None)
        for lo, hi in ((40, 22), (120, 21), (700, 21)):
            f1 = conn.execute(
                sa.text(
                    "SELECT i.run_date FROM g_inv0 i JOIN g_acc ac ON ac.id = i.account_id AND ac.billable "
                    "WHERE i.method = 'EJV' AND i.run_date BETWEEN :lo AND :hi AND i.account_id <> :stop "
                    "AND i.run_date <> :f2 GROUP BY i.run_date ORDER BY count(*) DESC, i.run_date DESC LIMIT 1"
                ),
                {"lo": a - timedelta(days=lo), "hi": a - timedelta(days=hi), "stop": stop[0], "f2": stop[1]},
            ).first()
            if f1:
                break
        if f1 is None:
            raise SandboxError(f"scale {self.scale_name!r} has too few EJV invoices for ejv_no_feedback")
        conn.execute(sa.text("INSERT INTO g_flag_ejv VALUES (:d, 'no_feedback')"), {"d": f1[0]})
        self.picks["ejv"] = {"stop_account": stop[0], "error_run": stop[1], "no_feedback_run": f1[0]}

    # -- rows only scenarios need (after the bulk load) -------------------------------------------
    def _scenario_rows(self, conn: Connection) -> None:
        # the scenario modules import this one
        from paynb.sandbox import routing_slips
        from paynb.sandbox.generator import disbursements, ejv, pad, routing_slip

        pad.nsf_fee_invoice(self, conn)
        pad.record_pad_scenarios(self, conn)
        ejv.record_ejv_scenarios(self, conn)
        disbursements.partner_disbursements_stuck(self, conn)
        routing_slip.routing_slip(self, conn)
        routing_slips.add_scenarios(conn, self.record)  # the void scenarios (docs/routing-slips.md)
        pad.partial_credit_candidate(self, conn)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def record(self, name: str, tables: dict[str, Iterable[int]], details: dict[str, Any]) -> None:
        if name not in BY_NAME:
            raise ValueError(f"scenario {name} is not in the catalogue")
        self.scn[name] = {"tables": {t: sorted(set(ids)) for t, ids in tables.items()}, "details": details}

    def _finish(self, conn: Connection) -> None:
        import json

        rows = []
        for name, rec in self.scn.items():
            sc = BY_NAME[name]
            for table, ids in rec["tables"].items():
                rows.append(
                    {
                        "n": name,
                        "d": sc.description,
                        "r": sc.runbook_ref,
                        "t": table,
                        "i": ids,
                        "x": json.dumps(rec["details"], sort_keys=True, default=str),
                    }
                )
        conn.execute(
            sa.text(
                "INSERT INTO paynb_sandbox.scenarios (name, description, runbook_ref, table_name, ids, details) "
                "VALUES (:n, :d, :r, :t, :i, CAST(:x AS jsonb))"
            ),
            rows,
        )
        meta = {
            "seed": str(self.seed),
            "scale": self.scale_name,
            "as_of": self.as_of.isoformat(),
            "window_start": self.win_start.isoformat(),
            "generator_version": GENERATOR_VERSION,
        }
        conn.execute(
            sa.text("INSERT INTO paynb_sandbox.meta (key, value) VALUES (:k, :v)"),
            [{"k": k, "v": v} for k, v in meta.items()],
        )
        # sequences continue after the generated ids
        for table, column in _all(
            conn,
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "WHERE c.table_schema = 'public' AND c.column_default LIKE 'nextval(%' ORDER BY 1",
        ):
            conn.execute(
                sa.text(
                    # identifiers come from information_schema
                    f'SELECT setval(pg_get_serial_sequence(:t, :c), coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'  # noqa: S608
                ),
                {"t": f"public.{table}", "c": column},
            )
        conn.exec_driver_sql("ANALYZE")

    # -- summary ---------------------------------------------------------------------------------------
    def summarize(self, conn: Connection) -> GenerationSummary:
        from paynb.aging import bucket_label

        counts: dict[str, int] = {}
        for schema, table in _all(
            conn,
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('public', 'paynb_sandbox') "
            "ORDER BY schemaname DESC, tablename",
        ):
            key = table if schema == "public" else f"{schema}.{table}"
            counts[key] = int(_one(conn, f'SELECT count(*) FROM "{schema}"."{table}"'))  # noqa: S608 (catalog names)
        weekly = int(
            _one(
                conn,
                "SELECT count(DISTINCT payment_account_id) FROM statement_settings WHERE frequency = 'WEEKLY'",
            )
        )
        now = pacific_midnight_utc(self.as_of) + timedelta(hours=12)
        grid: dict[tuple[str, str], list[Any]] = {}
        for method, age, total in _all(
            conn,
            "SELECT payment_method_code, floor(extract(epoch FROM (:now - created_on)) / 86400)::integer, total "
            "FROM invoices WHERE invoice_status_code = 'APPROVED' AND created_on < :cutoff",
            now=now,
            cutoff=now - timedelta(days=STALE_DAYS),
        ):
            cell = grid.setdefault((method, bucket_label(age, STALE_DAYS)), [0, Decimal("0.00")])
            cell[0] += 1
            cell[1] += total
        from paynb.aging import age_buckets

        order = {label: i for i, (label, _, _) in enumerate(age_buckets(STALE_DAYS))}
        stale_rows = [
            {"payment_method": m, "age_bucket": b, "count": c, "total": t}
            for (m, b), (c, t) in sorted(grid.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
        ]
        return GenerationSummary(
            scale=self.scale_name,
            seed=self.seed,
            as_of=self.as_of,
            seconds=0.0,
            counts=counts,
            scenarios={n: rec["tables"] for n, rec in self.scn.items()},
            weekly_accounts=weekly,
            stale_now_utc=now,
            stale_rows=stale_rows,
            step_seconds=dict(self.step_seconds),
        )


def csv_name(day: date) -> str:
    """The name of the CAS settlement CSV of one Application Date."""
    return f"BCR_PAYMENT_APPL_{day:%Y%m%d}.csv"
