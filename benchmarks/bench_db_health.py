"""Benchmark: finding and repairing one broken index vs the FAQ's database-wide REINDEX.

On a fresh PostgreSQL holding the synthetic pay-db (``--scale``, default ``large``), one leaf page of
``ix_invoices_payment_account_id`` is zeroed on disk (the FAQ's incident), then:

* ``db check`` of every pay-db index (amcheck when the server has it, else the probe), and the probe alone;
* amcheck alone (``bt_index_check`` of every index), when the server ships it (Debian's PostgreSQL does:
  the benchmark uses it when found under /usr/lib/postgresql, the embedded build otherwise);
* the targeted repair: ``db reindex`` plan + apply of just the broken index;
* the baseline: ``REINDEX DATABASE CONCURRENTLY`` after zeroing the same page again.

Target: the targeted repair costs at most a tenth of the database-wide reindex.

    python benchmarks/bench_db_health.py --scale medium
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paynb.context import Env  # noqa: E402
from paynb.db import dispose_engines  # noqa: E402
from paynb.fixes import FixRun  # noqa: E402
from paynb.ops.dbhealth import check_indexes  # noqa: E402
from paynb.ops.dbhealth.reindex import ReindexFix  # noqa: E402
from paynb.sandbox.postgres import EmbeddedPostgres  # noqa: E402
from paynb.settings import Settings  # noqa: E402

INDEX = "ix_invoices_payment_account_id"
PAGE = 8192
TARGET_RATIO = 0.10


def zero_page(pg: EmbeddedPostgres, dsn: str, block: int | None) -> None:
    eng = sa.create_engine(dsn, poolclass=NullPool)
    with eng.begin() as c:
        c.exec_driver_sql("CHECKPOINT")
        rel, pages = c.execute(
            sa.text("SELECT pg_relation_filepath(:i), pg_relation_size(:i) / 8192"), {"i": INDEX}
        ).one()
        block = block if block is not None else max(1, int(pages) // 2)  # a page the tree really uses
    eng.dispose()
    dispose_engines()
    pg.stop()
    with open(pg.data_dir / rel, "r+b") as fh:
        fh.seek(block * PAGE)
        fh.write(b"\0" * PAGE)
    pg.start()


def timed(label: str, fn):
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    print(f"{label:<48} {seconds:8.2f} s", flush=True)
    return seconds, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="large", choices=["small", "medium", "large"])
    parser.add_argument(
        "--block", type=int, default=None, help="Which page of the index to zero (default: the middle one)."
    )
    args = parser.parse_args(argv)

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if debian:
        os.environ["PAYNB_PG_BIN"] = str(Path(debian[-1]).parent)
    root = Path(tempfile.mkdtemp(prefix="paynb-bench-dbhealth-"))
    pg = EmbeddedPostgres(root)
    pg.destroy()
    pg.start()
    try:
        admin = sa.create_engine(pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql('CREATE DATABASE "paydb"')
        admin.dispose()
        dsn = pg.dsn("paydb")
        from paynb.sandbox.schema import apply_schema
        from paynb.sandbox.seed import seed_sandbox

        eng = sa.create_engine(dsn, poolclass=NullPool)
        with eng.begin() as c:
            apply_schema(c)
        eng.dispose()
        print(f"seeding the {args.scale} sandbox …", flush=True)
        seed_sandbox(dsn, scale=args.scale, seed=42, as_of=date.today())
        eng = sa.create_engine(dsn, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            has_amcheck = bool(
                c.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'").first()
            )
            if has_amcheck:
                c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
            c.exec_driver_sql("VACUUM ANALYZE")
            invoices = c.exec_driver_sql("SELECT count(*) FROM invoices").scalar_one()
            size = c.exec_driver_sql(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ).scalar_one()
            n_indexes = c.exec_driver_sql(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
            ).scalar_one()
        eng.dispose()
        print(f"{invoices:,} invoices, {n_indexes} indexes, database {size}; server {pg._bin}")
        settings = Settings.load(
            env={"PAYNB_DATABASE_URL": dsn, "PAYNB_DATABASE_ADMIN_URL": dsn}, dotenv=None
        )
        env = Env(settings=settings)

        zero_page(pg, dsn, args.block)
        t_check, report = timed("db check, every index (auto)", lambda: check_indexes(env=env))
        assert [c.index for c in report.broken] == [INDEX], report.broken
        t_probe, _ = timed("db check, every index (probe)", lambda: check_indexes(env=env, method="probe"))
        if has_amcheck:
            timed(
                "amcheck alone (bt_index_check, every index)",
                lambda: check_indexes(env=env, method="amcheck"),
            )
        fix = ReindexFix()

        def targeted() -> None:
            plan = fix.plan(env, tables=["invoices"])
            fix.execute(env, plan, FixRun(env, plan, "bench"))

        t_targeted, _ = timed("targeted repair (plan + REINDEX one index)", targeted)
        assert not check_indexes(env=env, indexes=[INDEX]).broken

        zero_page(pg, dsn, args.block)
        eng = sa.create_engine(dsn, poolclass=NullPool, isolation_level="AUTOCOMMIT")

        def database_wide() -> None:
            with eng.connect() as c:
                c.exec_driver_sql('REINDEX DATABASE CONCURRENTLY "paydb"')

        t_db, _ = timed("baseline: REINDEX DATABASE CONCURRENTLY", database_wide)
        eng.dispose()
        ratio = t_targeted / t_db if t_db else float("inf")
        verdict = "ok" if ratio <= TARGET_RATIO else "MISSED"
        print(f"\ntargeted / database-wide = {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")
        print(f"check (auto) {t_check:.2f} s, probe {t_probe:.2f} s")
        return 0 if ratio <= TARGET_RATIO else 1
    finally:
        dispose_engines()
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
