"""Deterministic synthetic pay-db for the sandbox and the tests.

Everything is computed on the server with set-based SQL (``sql/gen_*.sql``); pseudo-randomness is a
hash of (seed, stream tag, row number), so the same (scale, seed, as_of) always gives the same rows.
Python only picks the accounts, dates and files that the named runbook scenarios use, adds the few
rows those need, renders the settlement CSVs and writes the bookkeeping in ``paynb_sandbox``.

Lifecycle rules follow docs/status-lifecycles.md#by-payment-method (PAD roll-ups, CSV settlement, EJV journals and FEEDBACK,
routing slips, EFT, ONLINE_BANKING, DIRECT_PAY, BCOL) and statements follow docs/statements.md.
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
CSV_HEADER = [
    "Record type",
    "Source Transaction Type",
    "Source Transaction Number",
    "Application Id",
    "Application Date",
    "Application amount",
    "Customer Account",
    "Target transaction type",
    "Target transaction Number",
    "Target Transaction Original amount",
    "Target Transaction Outstanding Amount",
    "Target transaction status",
    "Reversal Reason code",
    "Reversal reason description",
]
STORED_CSV_DAYS = 16  # processed CSVs of the last N days are also put in the bucket
NSF_FEE = Decimal("30.00")

# --- static catalogue: fee codes, filing types, fee schedules, GLs ---------------------------------
CATALOGUE_START = date(2019, 1, 1)
FEE_CODES: list[tuple[str, str]] = [
    ("EN101", "30.00"), ("EN102", "70.00"), ("EN103", "350.00"), ("EN104", "100.00"), ("EN105", "43.39"),
    ("EN106", "15.00"), ("EN107", "7.00"), ("EN108", "10.00"), ("EN109", "27.50"), ("EN110", "20.00"),
    ("NSF01", "30.00"), ("PRI01", "100.00"), ("FUT01", "100.00"), ("TRF01", "1.50"), ("TRF02", "1.00"),
]  # fmt: skip
FILING_TYPES: list[tuple[str, str]] = [
    ("BCANN", "Annual Report"), ("BCINC", "Incorporation Application"), ("OTADD", "Change of Address"),
    ("NM620", "Reg. Submission Online"), ("CSBFILE", "Court Services filing"), ("VSBIRTH", "Birth Certificate"),
    ("PPRSR", "PPR Search"), ("RPTREG", "Rural Property Tax"), ("BSRCH", "Business Search"),
    ("NSF", "NSF Fee"),
]  # fmt: skip
# id, filing type, corp type, fee, priority, future effective, service fee, statutory GST, service GST
FEE_SCHEDULES: list[tuple[int, str, str, str, str | None, str | None, str | None, bool, bool]] = [
    (1, "BCANN", "BC", "EN105", None, None, "TRF01", False, False),
    (2, "BCINC", "BC", "EN103", "PRI01", "FUT01", "TRF01", False, False),
    (3, "OTADD", "BC", "EN106", "PRI01", "FUT01", "TRF01", False, False),
    (4, "BCANN", "BEN", "EN105", None, None, "TRF01", False, False),
    (5, "NM620", "NRO", "EN101", "PRI01", None, "TRF01", False, False),
    (6, "CSBFILE", "CSO", "EN104", None, None, "TRF01", False, False),
    (7, "VSBIRTH", "VS", "EN109", None, None, "TRF01", False, False),
    (8, "PPRSR", "PPR", "EN108", None, None, "TRF01", False, False),
    (9, "RPTREG", "RPT", "EN102", None, None, "TRF02", False, False),
    (10, "BSRCH", "BUS", "EN107", None, None, "TRF02", True, True),
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
PARTNER_GL = {"CSO": 4, "VS": 5}


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
    gen = _Generator(scale, seed, as_of)
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


class _Generator:
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
        self._prepare(conn)
        plan: list[tuple[str, Callable[[], None]]] = [
            ("drop indexes", lambda: self._drop_constraints(conn)),
            ("catalogue", lambda: self._catalogue(conn)),
        ]
        plan += [(n, self._sql_step(conn, s)) for n, s in sql_steps("gen_base.sql")]
        plan.append(("scenario choice", lambda: self._choose(conn)))
        plan += [(n, self._sql_step(conn, s)) for n, s in sql_steps("gen_derived.sql")]
        plan.append(("scenario rows", lambda: self._scenario_rows(conn)))
        plan.append(("settlement CSVs", lambda: self._settlement_csvs(conn)))
        plan += [(n, self._sql_step(conn, s)) for n, s in sql_steps("gen_statements.sql")]
        plan.append(("statement scenarios", lambda: self._statement_scenarios(conn)))
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
        exists = _one(conn, "SELECT to_regclass('public.invoices') IS NOT NULL AND "
                            "to_regclass('paynb_sandbox.scenarios') IS NOT NULL")  # fmt: skip
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
            [{"c": c, "a": Decimal(a)} for c, a in FEE_CODES],
        )
        conn.execute(
            sa.text("INSERT INTO filing_types (code, description) VALUES (:c, :d)"),
            [{"c": c, "d": d} for c, d in FILING_TYPES],
        )
        conn.execute(
            sa.text(
                "INSERT INTO fee_schedules (fee_schedule_id, filing_type_code, corp_type_code, fee_code, "
                "fee_start_date, priority_fee_code, future_effective_fee_code, service_fee_code, variable, "
                "show_on_pricelist, created_on, created_by, statutory_fees_gst_added, service_fees_gst_added) "
                "VALUES (:id, :ft, :ct, :fc, :start, :pri, :fut, :svc, false, true, :created, 'sandbox', :sg, :vg)"
            ),
            [
                {"id": i, "ft": ft, "ct": ct, "fc": fc, "start": CATALOGUE_START, "pri": pri, "fut": fut,
                 "svc": svc, "created": created, "sg": sg, "vg": vg}
                for i, ft, ct, fc, pri, fut, svc, sg, vg in FEE_SCHEDULES
            ],
        )  # fmt: skip
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
                {"created": created, "id": i, "name": n, "client": c, "rc": rc, "sl": sl, "stob": st, "proj": pj,
                 "start": CATALOGUE_START, "svc": None, "sgst": None, "vgst": None, "disb": None}
                for i, n, c, rc, sl, st, pj in SHARED_GLS
            ],
        )  # fmt: skip
        conn.execute(
            gl_sql,
            [
                {"created": created, "id": revenue_gl_id(i), "name": f"{ct} {ft} revenue", "client": "112",
                 "rc": "32363", "sl": "34725", "stob": f"{4400 + i}", "proj": "3200000", "start": CATALOGUE_START,
                 "svc": 1 if svc else None, "sgst": 2, "vgst": 3, "disb": PARTNER_GL.get(ct)}
                for i, ft, ct, _fc, _p, _f, svc, _sg, _vg in FEE_SCHEDULES
            ],
        )  # fmt: skip
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
        lock_ts = _one(conn, "SELECT received_on FROM (SELECT paynb_sandbox.utc(CAST(:d AS date) + 1 + "
                             "CASE WHEN extract(isodow FROM CAST(:d AS date) + 1) IN (6, 7) THEN time '17:30' "
                             "ELSE time '08:30' END) AS received_on) x", d=nsf_appl)  # fmt: skip
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
                used=used, lo=a - timedelta(days=lo), hi=a - timedelta(days=hi),
            )  # fmt: skip
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
        self._nsf_fee_invoice(conn)
        self._record_pad_scenarios(conn)
        self._record_ejv_scenarios(conn)
        self._partner_disbursements_stuck(conn)
        self._routing_slip(conn)
        self._partial_credit_candidate(conn)

    def _nsf_fee_invoice(self, conn: Connection) -> None:
        p = self.picks["nsf"]
        acc, lock_ts = p["account_id"], p["lock_ts"]
        grp = conn.execute(
            sa.text("SELECT invoice_number, total FROM g_pad WHERE account_id = :a AND run_date = :r"),
            {"a": acc, "r": p["run_date"]},
        ).one()
        number = grp[0]
        cfs_account = _one(conn, "SELECT cfs_account FROM cfs_accounts WHERE id = :a", a=acc)
        inv_id = _one(conn, "SELECT max(id) + 1 FROM invoices")
        created = lock_ts + timedelta(minutes=2)
        conn.execute(
            sa.text(
                "INSERT INTO invoices (created_by, created_on, id, invoice_status_code, total, paid, service_fees, "
                "corp_type_code, created_name, payment_account_id, cfs_account_id, payment_method_code, gst) "
                "VALUES ('SYSTEM', :c, :id, 'CREATED', :fee, 0, 0, 'BCR', 'SYSTEM', :a, :a, 'CC', 0)"
            ),
            {"c": created, "id": inv_id, "fee": NSF_FEE, "a": acc},
        )
        conn.execute(
            sa.text(
                "INSERT INTO payment_line_items (id, invoice_id, filing_fees, fee_schedule_id, quantity, description, "
                "pst, total, line_item_status_code, future_effective_fees, priority_fees, waived_fees, "
                "fee_distribution_id, service_fees) "
                "VALUES ((SELECT max(id) + 1 FROM payment_line_items), :i, :fee, :fs, 1, 'NSF Fee', 0, :fee, "
                "'ACTIVE', 0, 0, 0, :gl, 0)"
            ),
            {
                "i": inv_id,
                "fee": NSF_FEE,
                "fs": NSF_FEE_SCHEDULE_ID,
                "gl": revenue_gl_id(NSF_FEE_SCHEDULE_ID),
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO invoice_references (id, invoice_id, invoice_number, status_code, created_on, is_consolidated) "
                "VALUES ((SELECT max(id) + 1 FROM invoice_references), :i, :n, 'ACTIVE', :c, false)"
            ),
            {"i": inv_id, "n": number, "c": created},
        )
        nsf_id = _one(
            conn,
            "INSERT INTO non_sufficient_funds (description, invoice_id, invoice_number, cfs_account) "
            "VALUES ('NSF', :i, :n, :c) RETURNING id",
            i=inv_id, n=number, c=cfs_account,
        )  # fmt: skip
        conn.execute(
            sa.text("UPDATE payment_accounts SET has_nsf_invoices = :t, version = version + 1 WHERE id = :a"),
            {"t": lock_ts + timedelta(minutes=1), "a": acc},
        )
        invoices = [r[0] for r in _all(conn, "SELECT id FROM g_inv WHERE account_id = :a AND run_date = :r "
                                             "AND method = 'PAD' ORDER BY id", a=acc, r=p["run_date"])]  # fmt: skip
        refs = [
            r[0]
            for r in _all(
                conn, "SELECT id FROM invoice_references WHERE invoice_number = :n ORDER BY id", n=number
            )
        ]
        pays = [r[0] for r in _all(conn, "SELECT id FROM payments WHERE invoice_number = :n AND payment_status_code = 'FAILED' "
                                         "ORDER BY id", n=number)]  # fmt: skip
        self._record(
            "pad_nsf_freeze",
            {"invoices": [*invoices, inv_id], "invoice_references": refs, "payment_accounts": [acc],
             "cfs_accounts": [acc], "non_sufficient_funds": [nsf_id], "payments": pays},
            {"account_id": acc, "invoice_number": number, "nsf_fee_invoice_id": inv_id,
             "application_date": p["appl_date"].isoformat(), "cfs_account": cfs_account,
             "settlement_file": _csv_name(p["appl_date"])},
        )  # fmt: skip

    def _record_pad_scenarios(self, conn: Connection) -> None:
        a20 = self.as_of - timedelta(days=STALE_DAYS)
        noref = _all(
            conn,
            "SELECT account_id, since, cfs_status FROM g_flag_acc WHERE kind = 'pad_noref' ORDER BY since DESC",
        )
        inv: list[int] = []
        for acc, since, _status in noref:
            inv += [r[0] for r in _all(conn, "SELECT s.id FROM g_st s WHERE s.account_id = :a AND s.method = 'PAD' "
                                             "AND s.state = 'noref' AND s.run_date >= :s AND s.cdate < :c ORDER BY s.id",
                                       a=acc, s=since, c=a20)]  # fmt: skip
        self._record(
            "pad_stuck_no_reference",
            {
                "invoices": inv,
                "cfs_accounts": [r[0] for r in noref],
                "payment_accounts": [r[0] for r in noref],
            },
            {
                "accounts": [
                    {"account_id": r[0], "cfs_status": r[2], "stuck_since": r[1].isoformat()} for r in noref
                ]
            },
        )
        for name, kind in (("pad_stuck_uncharged", "uncharged"), ("pad_stuck_cfs_missing", "cfs_missing")):
            acc, run_date = conn.execute(
                sa.text("SELECT account_id, run_date FROM g_flag_grp WHERE kind = :k"), {"k": kind}
            ).one()
            number, total = conn.execute(
                sa.text("SELECT invoice_number, total FROM g_pad WHERE account_id = :a AND run_date = :r"),
                {"a": acc, "r": run_date},
            ).one()
            self._record(
                name,
                self._ids_for_numbers(conn, [number]),
                {"account_id": acc, "invoice_number": number, "total": str(total),
                 "amount_due": str(total) if kind == "uncharged" else None, "cfs_present": kind != "cfs_missing"},
            )  # fmt: skip
        files = self.picks["files"]
        variants = []
        tables: dict[str, list[int]] = {"invoices": [], "invoice_references": [], "cas_settlements": []}
        for kind, label in (("unprocessed_norow", "no cas_settlements row"),
                            ("unprocessed_started", "cas_settlements row with processed_on NULL")):  # fmt: skip
            d = files[kind]
            numbers = [r[0] for r in _all(conn, "SELECT invoice_number FROM g_pad WHERE appl_date = :d "
                                                "AND state = 'settled_unprocessed' ORDER BY invoice_number", d=d)]  # fmt: skip
            ids = self._ids_for_numbers(conn, numbers)
            tables["invoices"] += ids["invoices"]
            tables["invoice_references"] += ids["invoice_references"]
            cas = [
                r[0]
                for r in _all(conn, "SELECT id FROM cas_settlements WHERE file_name = :f", f=_csv_name(d))
            ]
            tables["cas_settlements"] += cas
            variants.append({"variant": label, "application_date": d.isoformat(), "file_name": _csv_name(d),
                             "key": f"ar/{_csv_name(d)}", "invoice_numbers": numbers})  # fmt: skip
        self._record("pad_stuck_settled_csv_unprocessed", tables, {"files": variants})
        d = files["unprocessed_nsf"]
        numbers = [r[0] for r in _all(conn, "SELECT invoice_number FROM g_pad WHERE appl_date = :d "
                                            "AND state IN ('settled_unprocessed', 'nsf_unprocessed') ORDER BY invoice_number", d=d)]  # fmt: skip
        nsf_number = _one(
            conn, "SELECT invoice_number FROM g_pad WHERE appl_date = :d AND state = 'nsf_unprocessed'", d=d
        )
        tables = self._ids_for_numbers(conn, numbers)
        self._record(
            "cas_csv_with_nsf",
            tables,
            {"application_date": d.isoformat(), "file_name": _csv_name(d), "key": f"ar/{_csv_name(d)}",
             "nsf_invoice_numbers": [nsf_number], "invoice_numbers": numbers},
        )  # fmt: skip

    def _ids_for_numbers(self, conn: Connection, numbers: list[str]) -> dict[str, list[int]]:
        refs = _all(
            conn,
            "SELECT id, invoice_id FROM invoice_references WHERE invoice_number = ANY(:n) ORDER BY id",
            n=list(numbers),
        )
        return {"invoices": sorted({r[1] for r in refs}), "invoice_references": [r[0] for r in refs]}

    def _record_ejv_scenarios(self, conn: Connection) -> None:
        p = self.picks["ejv"]
        f1 = p["no_feedback_run"]
        files = [
            r[0]
            for r in _all(
                conn,
                "SELECT id FROM ejv_files WHERE created_on = paynb_sandbox.utc(CAST(:d AS date) + time '20:01')",
                d=f1,
            )
        ]
        heads = [
            r[0]
            for r in _all(conn, "SELECT id FROM ejv_headers WHERE ejv_file_id = ANY(:f) ORDER BY id", f=files)
        ]
        links = _all(
            conn, "SELECT id, link_id FROM ejv_links WHERE ejv_header_id = ANY(:h) ORDER BY id", h=heads
        )
        inv = sorted(r[1] for r in links)
        refs = [
            r[0]
            for r in _all(
                conn, "SELECT id FROM invoice_references WHERE invoice_id = ANY(:i) ORDER BY id", i=inv
            )
        ]
        file_ref = _one(conn, "SELECT file_ref FROM ejv_files WHERE id = ANY(:f)", f=files)
        self._record(
            "ejv_no_feedback",
            {"ejv_files": files, "ejv_headers": heads, "ejv_links": [r[0] for r in links], "invoices": inv,
             "invoice_references": refs},
            {"file_ref": file_ref, "run_date": f1.isoformat()},
        )  # fmt: skip
        acc, f2 = p["stop_account"], p["error_run"]
        gl = _one(conn, "SELECT distribution_code_id FROM distribution_codes WHERE account_id = :a", a=acc)
        files = [
            r[0]
            for r in _all(
                conn, "SELECT id FROM ejv_files WHERE disbursement_status_code = 'ERRORED' ORDER BY id"
            )
        ]
        heads = [
            r[0]
            for r in _all(
                conn, "SELECT id FROM ejv_headers WHERE disbursement_status_code = 'ERRORED' ORDER BY id"
            )
        ]
        links = _all(
            conn, "SELECT id, link_id FROM ejv_links WHERE disbursement_status_code = 'ERRORED' ORDER BY id"
        )
        blocked = [
            r[0]
            for r in _all(
                conn, "SELECT id FROM g_st WHERE account_id = :a AND state = 'blocked' ORDER BY id", a=acc
            )
        ]
        refs = [r[0] for r in _all(conn, "SELECT id FROM invoice_references WHERE invoice_id = ANY(:i) "
                                         "AND status_code = 'CANCELLED' ORDER BY id", i=[r[1] for r in links])]  # fmt: skip
        self._record(
            "ejv_errored_stop_ejv",
            {"ejv_files": files, "ejv_headers": heads, "ejv_links": [r[0] for r in links],
             "distribution_codes": [gl], "payment_accounts": [acc],
             "invoices": sorted({r[1] for r in links} | set(blocked)), "invoice_references": refs},
            {"account_id": acc, "error_run_date": f2.isoformat(), "blocked_invoice_ids": blocked},
        )  # fmt: skip

    def _partner_disbursements_stuck(self, conn: Connection) -> None:
        cutoff = pacific_midnight_utc(self.as_of - timedelta(days=5))
        rows = _all(conn, "SELECT id, target_id FROM partner_disbursements WHERE status_code = 'COMPLETED' "
                          "AND created_on < :c ORDER BY created_on DESC, id DESC LIMIT 2", c=cutoff)  # fmt: skip
        if len(rows) < 2:
            raise SandboxError(
                f"scale {self.scale_name!r} has too few partner disbursements for partner_disbursement_stuck"
            )
        uploaded, waiting = rows
        conn.execute(
            sa.text(
                "UPDATE partner_disbursements SET status_code = 'UPLOADED', feedback_on = NULL WHERE id = :i"
            ),
            {"i": uploaded[0]},
        )
        conn.execute(
            sa.text(
                "UPDATE invoices SET disbursement_status_code = 'UPLOADED', disbursement_date = NULL WHERE id = :i"
            ),
            {"i": uploaded[1]},
        )
        conn.execute(
            sa.text("UPDATE partner_disbursements SET status_code = 'WAITING_FOR_JOB', feedback_on = NULL, "
                    "processed_on = NULL WHERE id = :i"),
            {"i": waiting[0]},
        )  # fmt: skip
        conn.execute(
            sa.text(
                "UPDATE invoices SET disbursement_status_code = NULL, disbursement_date = NULL WHERE id = :i"
            ),
            {"i": waiting[1]},
        )
        self._record(
            "partner_disbursement_stuck",
            {"partner_disbursements": [uploaded[0], waiting[0]], "invoices": [uploaded[1], waiting[1]]},
            {"uploaded_id": uploaded[0], "waiting_for_job_id": waiting[0]},
        )

    def _routing_slip(self, conn: Connection) -> None:
        row = conn.execute(
            sa.text(
                "SELECT rs.id, rs.number FROM routing_slips rs JOIN invoices i ON i.routing_slip = rs.number "
                "WHERE rs.status = 'ACTIVE' GROUP BY rs.id, rs.number ORDER BY count(*) DESC, rs.id LIMIT 1"
            )
        ).first()
        if row is None:
            raise SandboxError(f"scale {self.scale_name!r} has no routing slip with invoices")
        rs_id, number = row
        inv = [
            r[0] for r in _all(conn, "SELECT id FROM invoices WHERE routing_slip = :n ORDER BY id", n=number)
        ]
        pays = [
            r[0]
            for r in _all(
                conn, "SELECT id FROM payments WHERE receipt_number = :n AND is_routing_slip", n=number
            )
        ]
        cid = _one(
            conn,
            "INSERT INTO comments (comment, \"timestamp\", routing_slip_number, submitter_name) "
            "VALUES ('Cheque received at counter; linked to the client account.', "
            "(SELECT created_on FROM routing_slips WHERE id = :i) AT TIME ZONE 'UTC', :n, 'Sandbox Staff') RETURNING id",
            i=rs_id, n=number,
        )  # fmt: skip
        self._record(
            "routing_slip_with_transactions",
            {"routing_slips": [rs_id], "invoices": inv, "payments": pays, "comments": [cid]},
            {"number": number},
        )

    def _partial_credit_candidate(self, conn: Connection) -> None:
        # paid PAD roll-ups: COMPLETED reference, CFS invoice present; accounts of other scenarios excluded
        # (their CFS account is not ACTIVE)
        row = conn.execute(
            sa.text(
                """SELECT s.id FROM g_st s
                    WHERE s.method = 'PAD' AND s.state = 'paid' AND s.cdate BETWEEN :lo AND :hi
                      AND s.account_id NOT IN (SELECT account_id FROM g_flag_acc)
                      AND s.id IN (SELECT l.invoice_id FROM g_line l
                                    WHERE l.filing_fees > 0 AND l.service_fees > 0
                                    GROUP BY l.invoice_id HAVING count(*) >= 2)
                    ORDER BY paynb_sandbox.u(:seed, 68, s.id), s.id LIMIT 1"""
            ),
            {"lo": self.as_of - timedelta(days=120), "hi": self.as_of - timedelta(days=5), "seed": self.seed},
        ).first()
        if row is None:
            raise SandboxError(
                f"scale {self.scale_name!r} has no PAD invoice fit for pad_partial_credit_candidate"
            )
        inv = row[0]
        lines = [
            r[0]
            for r in _all(conn, "SELECT id FROM payment_line_items WHERE invoice_id = :i ORDER BY id", i=inv)
        ]
        gls = _all(
            conn,
            "SELECT DISTINCT unnest(ARRAY[d.distribution_code_id, d.service_fee_distribution_code_id, "
            "d.statutory_fees_gst_distribution_code_id, d.service_fee_gst_distribution_code_id]) AS g "
            "FROM payment_line_items l JOIN distribution_codes d ON d.distribution_code_id = l.fee_distribution_id "
            "WHERE l.invoice_id = :i ORDER BY 1",
            i=inv,
        )
        ref = _all(conn, "SELECT id, invoice_number FROM invoice_references WHERE invoice_id = :i", i=inv)[0]
        acc = _one(conn, "SELECT payment_account_id FROM invoices WHERE id = :i", i=inv)
        self._record(
            "pad_partial_credit_candidate",
            {"invoices": [inv], "payment_line_items": lines, "distribution_codes": [g[0] for g in gls if g[0]],
             "invoice_references": [ref[0]], "cfs_accounts": [acc]},
            {"invoice_id": inv, "invoice_number": ref[1], "account_id": acc},
        )  # fmt: skip

    # -- settlement CSVs into the store ------------------------------------------------------------
    def _settlement_csvs(self, conn: Connection) -> None:
        files = self.picks["files"]
        recent = [
            r[0]
            for r in _all(
                conn,
                "SELECT to_date(substr(file_name, 18, 8), 'YYYYMMDD') FROM cas_settlements "
                "WHERE processed_on IS NOT NULL AND received_on >= :lo ORDER BY 1",
                lo=pacific_midnight_utc(self.as_of - timedelta(days=STORED_CSV_DAYS)),
            )
        ]
        wanted = sorted(set(recent) | set(files.values()) | {self.picks["nsf"]["appl_date"]})
        rows = _all(
            conn,
            """SELECT x, kind, source, total, cfs_account, number, status FROM (
                   SELECT p.appl_date AS x, 'PAD' AS kind,
                          coalesce(p.receipt_number, (3000000000 + p.min_id)::text) AS source,
                          p.total, c.cfs_account, p.invoice_number AS number,
                          CASE WHEN p.state IN ('nsf', 'nsf_unprocessed') THEN 'Not PAID' ELSE 'Fully PAID' END AS status,
                          p.min_id AS k
                     FROM g_pad p JOIN cfs_accounts c ON c.id = p.account_id
                    WHERE p.state IN ('paid', 'nsf', 'settled_unprocessed', 'nsf_unprocessed')
                      AND p.appl_date = ANY(:days)
                   UNION ALL
                   SELECT s.ob_appl, 'OB', 'OB' || lpad(s.id::text, 8, '0'), s.total, c.cfs_account, s.ref_number,
                          'Fully PAID', s.id
                     FROM g_st s JOIN cfs_accounts c ON c.id = s.account_id
                    WHERE s.method = 'ONLINE_BANKING' AND s.state IN ('paid', 'settled_unprocessed')
                      AND s.ob_appl = ANY(:days)
               ) x ORDER BY x, kind DESC, k""",
            days=wanted,
        )
        by_day: dict[date, list[sa.Row]] = {d: [] for d in wanted}
        for r in rows:
            by_day[r[0]].append(r)
        payload = [{"k": f"ar/{_csv_name(d)}", "c": render_settlement_csv(d, by_day[d])} for d in wanted]
        conn.execute(
            sa.text(
                "INSERT INTO paynb_sandbox.store_objects (key, content, content_type) VALUES (:k, :c, 'text/csv')"
            ),
            payload,
        )
        self.picks["stored_csvs"] = [p["k"] for p in payload]

    # -- statement gaps and duplicates -------------------------------------------------------------
    def _statement_scenarios(self, conn: Connection) -> None:
        a = self.as_of

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
                {"statement_id": r[0], "account_id": r[1], "auth_account_id": r[2], "frequency": r[3],
                 "from_date": r[4].isoformat(), "to_date": r[5].isoformat()}
                for r in rows
            ]  # fmt: skip

        # DAILY: the job did not run for one mid-week day (no DAILY statement for anyone), and one
        # account misses one more day
        day = a - timedelta(days=9)
        while day.weekday() in (4, 5, 6) or (day + timedelta(days=1)).day == 1:
            day -= timedelta(days=1)
        gone = delete("s.frequency = 'DAILY' AND s.to_date = :d AND NOT s.is_interim_statement", d=day)
        one = _one(conn, "SELECT payment_account_id FROM statements WHERE frequency = 'DAILY' AND to_date = :d "
                         "ORDER BY paynb_sandbox.u(:seed, 70, payment_account_id), payment_account_id LIMIT 1",
                   d=a - timedelta(days=40), seed=self.seed)  # fmt: skip
        if not gone or one is None:
            raise SandboxError(
                f"scale {self.scale_name!r} has too few DAILY accounts for statement_gap_daily"
            )
        gone += delete("s.frequency = 'DAILY' AND s.to_date = :d AND s.payment_account_id = :p",
                       d=a - timedelta(days=40), p=one)  # fmt: skip
        self._record_gaps("statement_gap_daily", gone, {"missing_day_all_accounts": day.isoformat()})

        sat = a - timedelta(days=15)
        while sat.weekday() != 5:
            sat -= timedelta(days=1)
        acc = _one(
            conn,
            "SELECT s.payment_account_id FROM statements s JOIN payment_accounts pa ON pa.id = s.payment_account_id "
            "WHERE s.frequency = 'WEEKLY' AND s.to_date = :d AND NOT s.is_empty AND pa.payment_method <> 'EFT' "
            "ORDER BY paynb_sandbox.u(:seed, 71, s.payment_account_id), s.payment_account_id LIMIT 1",
            d=sat, seed=self.seed,
        )  # fmt: skip
        if acc is None:
            raise SandboxError(f"scale {self.scale_name!r} has no WEEKLY statement for statement_gap_weekly")
        self._record_gaps("statement_gap_weekly", delete("s.frequency = 'WEEKLY' AND s.to_date = :d "
                                                         "AND s.payment_account_id = :p", d=sat, p=acc), {})  # fmt: skip

        month_end = (a - timedelta(days=3)).replace(day=1) - timedelta(days=1)
        acc = _one(
            conn,
            "SELECT s.payment_account_id FROM statements s WHERE s.frequency = 'MONTHLY' AND s.to_date = :d "
            "ORDER BY s.is_empty, paynb_sandbox.u(:seed, 72, s.payment_account_id), s.payment_account_id LIMIT 1",
            d=month_end, seed=self.seed,
        )  # fmt: skip
        if acc is None:
            raise SandboxError(
                f"scale {self.scale_name!r} has no MONTHLY statement for statement_gap_monthly"
            )
        self._record_gaps("statement_gap_monthly", delete("s.frequency = 'MONTHLY' AND s.to_date = :d "
                                                          "AND s.payment_account_id = :p", d=month_end, p=acc), {})  # fmt: skip

        # duplicate: the cron ran twice for one Saturday
        dup_sat = sat - timedelta(days=14)
        src = conn.execute(
            sa.text(
                "SELECT s.id, s.payment_account_id FROM statements s WHERE s.frequency = 'WEEKLY' AND s.to_date = :d "
                "AND NOT s.is_empty ORDER BY paynb_sandbox.u(:seed, 73, s.payment_account_id), s.id LIMIT 1"
            ),
            {"d": dup_sat, "seed": self.seed},
        ).first()
        if src is None:
            raise SandboxError(f"scale {self.scale_name!r} has no WEEKLY statement for statement_duplicate")
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
        self._record(
            "statement_duplicate",
            {"statements": [src[0], new_id], "payment_accounts": [src[1]]},
            {"account_id": src[1], "frequency": "WEEKLY", "from_date": (dup_sat - timedelta(days=6)).isoformat(),
             "to_date": dup_sat.isoformat(), "statement_ids": [src[0], new_id]},
        )  # fmt: skip

    def _record_gaps(self, name: str, gone: list[dict[str, Any]], extra: dict[str, Any]) -> None:
        self._record(
            name,
            {"payment_accounts": sorted({g["account_id"] for g in gone})},
            {**extra, "periods": gone, "deleted_statement_ids": [g["statement_id"] for g in gone]},
        )

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _record(self, name: str, tables: dict[str, Iterable[int]], details: dict[str, Any]) -> None:
        if name not in BY_NAME:
            raise ValueError(f"scenario {name} is not in the catalogue")
        self.scn[name] = {"tables": {t: sorted(set(ids)) for t, ids in tables.items()}, "details": details}

    def _finish(self, conn: Connection) -> None:
        import json

        rows = []
        for name, rec in self.scn.items():
            sc = BY_NAME[name]
            for table, ids in rec["tables"].items():
                rows.append({"n": name, "d": sc.description, "r": sc.runbook_ref, "t": table, "i": ids,
                             "x": json.dumps(rec["details"], sort_keys=True, default=str)})  # fmt: skip
        conn.execute(
            sa.text(
                "INSERT INTO paynb_sandbox.scenarios (name, description, runbook_ref, table_name, ids, details) "
                "VALUES (:n, :d, :r, :t, :i, CAST(:x AS jsonb))"
            ),
            rows,
        )
        meta = {"seed": str(self.seed), "scale": self.scale_name, "as_of": self.as_of.isoformat(),
                "window_start": self.win_start.isoformat(), "generator_version": GENERATOR_VERSION}  # fmt: skip
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
            now=now, cutoff=now - timedelta(days=STALE_DAYS),
        ):  # fmt: skip
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


# --- settlement CSV rendering ----------------------------------------------------------------------
def _csv_name(day: date) -> str:
    return f"BCR_PAYMENT_APPL_{day:%Y%m%d}.csv"


def _csv_date(day: date) -> str:
    return day.strftime("%d-%b-%y")


def render_settlement_csv(day: date, rows: Iterable[Any]) -> bytes:
    """A CAS payment-reconciliation CSV for one Application Date (header of docs/files.md#columns).

    ``rows``: (day, kind 'PAD'|'OB', source number, total, customer account, target number, status).
    A 'Not PAID' PAD row is followed by its PADR reversal, as CAS sends them.
    """
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(CSV_HEADER)
    app = (day - date(2000, 1, 1)).days * 100_000
    n = 0
    for _d, kind, source, total, account, number, status in rows:
        total = Decimal(total).quantize(Decimal("0.01"))
        n += 1
        if kind == "PAD" and status == "Not PAID":
            for record in ("PADP", "PADR"):
                w.writerow([record, "BCR-PAD Daily", source, app + n, _csv_date(day), "0.00", account, "INV", number,
                            f"{total}", f"{total}", "Not PAID", "001", "NSF"])  # fmt: skip
                n += 1
        elif kind == "PAD":
            w.writerow(["PADP", "BCR-PAD Daily", source, app + n, _csv_date(day), f"{total}", account, "INV", number,
                        f"{total}", "0.00", "Fully PAID", "", ""])  # fmt: skip
        else:
            w.writerow(["BOLP", "BCR Online Banking Payments", source, app + n, _csv_date(day), f"{total}", account,
                        "INV", number, f"{total}", "0.00", "Fully PAID", "", ""])  # fmt: skip
    return buf.getvalue().encode("utf-8")
