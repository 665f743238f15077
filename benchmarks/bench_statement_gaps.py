"""Benchmark: ``statements gaps`` over the whole history of the `large` sandbox.

Times ``paynb.ops.statements.find_statement_gaps()`` from the first statement setting to yesterday
(every frequency, every account: about 1.7M expected periods over two years), against the queries it
replaced (``tests/statement_gaps_reference.py``: one index probe per expected period, a sort of every
statement for duplicates) run on the same database in the same run, interleaved, ``--repeat`` times.
Both must report the same missing periods and duplicates. Target: at most 2 s (best and median).

    python benchmarks/bench_statement_gaps.py                  # fresh embedded PostgreSQL + large sandbox
    python benchmarks/bench_statement_gaps.py --db-url postgresql://postgres@127.0.0.1:5433/pay
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paynb.db import create_engine, dispose_engines  # noqa: E402
from paynb.ops.statements import find_statement_gaps  # noqa: E402
from paynb.ops.statements.gaps import _INCONSISTENT  # noqa: E402
from tests.statement_gaps_reference import DUPLICATES_SORTED, EXPECTED_PER_ROW  # noqa: E402

TARGET_S = 2.0


def run_paynb(url: str):
    engine = create_engine(url=url, run_id="bench-statement-gaps")
    t0 = time.perf_counter()
    report = find_statement_gaps(engine=engine)
    return time.perf_counter() - t0, report


def run_baseline(url: str, from_date, to_date) -> tuple[float, int, int]:
    """The replaced queries with the same parameters (rows fetched, nothing else done in Python)."""
    eng = sa.create_engine(url, poolclass=NullPool)
    params = {"from_date": from_date, "to_date": to_date, "frequency": None, "account": None}
    try:
        with eng.connect() as c:
            t0 = time.perf_counter()
            rows = c.execute(sa.text(EXPECTED_PER_ROW), params).fetchall()
            dups = c.execute(sa.text(DUPLICATES_SORTED), params).fetchall()
            c.execute(sa.text(_INCONSISTENT), params).fetchall()
            elapsed = time.perf_counter() - t0
    finally:
        eng.dispose()
    return elapsed, sum(1 for r in rows if r[0] == "missing"), len(dups)


def seed_large(seed: int):
    from paynb.sandbox.postgres import EmbeddedPostgres
    from paynb.sandbox.seed import apply_schema_to, seed_sandbox

    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="paynb-bench-gaps-"))).start()
    admin = sa.create_engine(pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql('CREATE DATABASE "bench_gaps"')
    admin.dispose()
    url = pg.dsn("bench_gaps")
    apply_schema_to(url)
    t0 = time.perf_counter()
    seed_sandbox(url, scale="large", seed=seed)
    print(f"large sandbox generated in {time.perf_counter() - t0:.1f} s")
    dispose_engines()
    return pg, url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db-url", help="an existing large sandbox (only read)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each contender, interleaved [5]")
    args = ap.parse_args(argv)

    pg = None
    url = args.db_url
    if url is None:
        pg, url = seed_large(args.seed)
    ours, base = [], []
    try:
        eng = sa.create_engine(url, poolclass=NullPool)
        with eng.connect() as c:
            n = c.execute(sa.text("SELECT count(*) FROM statements")).scalar_one()
            c.exec_driver_sql(
                "SELECT count(*) FROM statements JOIN statement_invoices ON statement_id = statements.id"
            )
        eng.dispose()
        report = None
        for i in range(args.repeat):
            t, report = run_paynb(url)
            b, base_missing, base_dups = run_baseline(url, report.from_date, report.to_date)
            ours.append(t)
            base.append(b)
            print(f"  run {i + 1}: paynb {t:.3f} s; per-period probes {b:.3f} s")
            if (len(report.missing), len(report.duplicates)) != (base_missing, base_dups):
                print("results differ from the baseline", file=sys.stderr)
                return 1
    finally:
        dispose_engines()
        if pg is not None:
            pg.destroy()
            shutil.rmtree(pg.root, ignore_errors=True)

    print(
        f"{report.from_date}..{report.to_date}: {n:,} statements, "
        f"{int(report.by_day['expected'].sum()):,} expected periods, {len(report.missing)} missing, "
        f"{len(report.duplicates)} duplicated, {len(report.inconsistent)} inconsistent"
    )
    print(f"                               best of {args.repeat}   median")
    print(f"paynb statements gaps          {min(ours):8.3f} s {statistics.median(ours):8.3f} s")
    print(f"baseline (per-period probes)   {min(base):8.3f} s {statistics.median(base):8.3f} s")
    print(
        f"ratio baseline / paynb         {min(base) / min(ours):8.1f}x "
        f"{statistics.median(base) / statistics.median(ours):8.1f}x"
    )
    ok = statistics.median(ours) <= TARGET_S
    print(f"target: median <= {TARGET_S:.0f} s -> {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
