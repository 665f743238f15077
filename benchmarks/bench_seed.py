"""Benchmark: seed the `large` synthetic pay-db into a fresh embedded PostgreSQL.

Prints the wall time of ``generate(scale="large")`` (schema already applied), the time of each step,
the rows per table, and the 3-minute target. As a baseline measured in the same run on the same
server, it also times a plain one-million-row ``CREATE TABLE AS SELECT generate_series`` (what the
machine does with no pay-db logic at all) and the `small` scale.

    python benchmarks/bench_seed.py                 # large, seed 42, as_of = today (Pacific)
    python benchmarks/bench_seed.py --scale medium --seed 7
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paynb.sandbox.generator import generate  # noqa: E402
from paynb.sandbox.postgres import EmbeddedPostgres  # noqa: E402
from paynb.sandbox.schema import apply_schema  # noqa: E402

TARGET_S = 180.0


def fresh_database(pg: EmbeddedPostgres, name: str) -> str:
    admin = sa.create_engine(pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        # fixed names owned by this script
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    eng = sa.create_engine(pg.url(name), poolclass=NullPool)
    with eng.begin() as conn:
        apply_schema(conn)
    eng.dispose()
    return pg.dsn(name)


def baseline_million_rows(pg: EmbeddedPostgres) -> float:
    eng = sa.create_engine(pg.url("postgres"), poolclass=NullPool)
    with eng.begin() as conn:
        t0 = time.monotonic()
        conn.exec_driver_sql(
            "CREATE TEMP TABLE bench_baseline AS SELECT g AS id, md5(g::text) AS t, now() AS ts "
            "FROM generate_series(1, 1000000) g"
        )
        seconds = time.monotonic() - t0
    eng.dispose()
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="large")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", action="store_true", help="leave the server folder in place")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="paynb-bench-seed-"))
    pg = EmbeddedPostgres(root).start()
    try:
        base = baseline_million_rows(pg)
        small_url = fresh_database(pg, "bench_small")
        small = generate(small_url, scale="small", seed=args.seed)
        url = fresh_database(pg, f"bench_{args.scale}")
        t0 = time.monotonic()
        summary = generate(url, scale=args.scale, seed=args.seed, progress=True)
        wall = time.monotonic() - t0

        print(f"\nseed {args.scale} (seed {args.seed}, as_of {summary.as_of}) on {root}")
        rows = [
            ("baseline: 1,000,000-row CREATE TABLE AS", base, ""),
            (f"baseline: small scale ({small.counts['invoices']:,} invoices)", small.seconds, ""),
            (
                f"{args.scale}: generate()",
                wall,
                f"target < {TARGET_S:.0f} s -> {'OK' if wall < TARGET_S else 'OVER'}",
            ),
        ]
        for label, seconds, note in rows:
            print(f"  {label:45s} {seconds:8.2f} s   {note}")
        print(f"  accounts with WEEKLY settings: {summary.weekly_accounts:,} (target >= 12,583)")
        print("\nsteps:")
        for step, seconds in sorted(summary.step_seconds.items(), key=lambda kv: -kv[1]):
            if seconds >= 0.05:
                print(f"  {step:38s} {seconds:8.2f} s")
        print("\nrows:")
        for table, n in summary.counts.items():
            if n:
                print(f"  {table:38s} {n:>12,}")
        print(f"  {'total':38s} {sum(summary.counts.values()):>12,}")
        return 0 if wall < TARGET_S else 1
    finally:
        if args.keep:
            pg.stop()
        else:
            pg.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
