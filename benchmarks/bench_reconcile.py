"""Reconciliation at sandbox scale: the set-based warehouse path against the per-invoice CFS API path, and
BCOL, each with its baseline measured in the same run.

Data: a sandbox pay-db (``--scale``, seed 42) and its warehouse (``paynb.sandbox.warehouse``) in an embedded
PostgreSQL under ``--dir`` (kept between runs, so only the first run seeds).

* ``reconcile cfs`` via the warehouse over every reference (the whole generated window).
  Baseline: the CFS REST API path (``reconcile_cfs_api``, the existing client, concurrency
  ``--concurrency``) on a ``--sample`` of references with the CFS server answering after ``--latency-ms``;
  extrapolated to all references. Target: the warehouse at least 50x faster.
* The API path against its floor (distinct CFS invoices x latency / concurrency). Target: within 1.5x.
* ``reconcile bcol`` over every DRAWDOWN invoice. Baseline: one warehouse query per invoice (what a
  spot check by key does, ``SELECT ... WHERE key = ...``) on a sample, extrapolated.

    .venv/bin/python benchmarks/bench_reconcile.py                  # large: 1.05M invoices (seeding ~90 s once)
    .venv/bin/python benchmarks/bench_reconcile.py --scale medium   # 100,000 invoices
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.context import Env
from paynb.ops.reconcile import reconcile_bcol, reconcile_cfs_api, reconcile_cfs_warehouse
from paynb.sandbox.cfs_server import CfsState, start_cfs_server
from paynb.sandbox.postgres import EmbeddedPostgres
from paynb.sandbox.warehouse import create_database, database_url, reader_url, seed_warehouse
from paynb.settings import Settings

START, END = date(2000, 1, 1), date(2100, 1, 1)
CLIENT_ID, CLIENT_SECRET, CONNECTOR = "bench", "bench-secret-8c3d", "bench-connector"


def prepare(pg: EmbeddedPostgres, scale: str) -> tuple[str, str, float | None]:
    """pay-db and warehouse databases for ``scale``; seeds them only when they are not there yet."""
    from paynb.sandbox.seed import apply_schema_to, seed_sandbox

    pay_name, dw_name = f"bench_pay_{scale}", f"bench_dw_{scale}"
    admin = sa.create_engine(pg.dsn("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        have = {r[0] for r in c.execute(sa.text("SELECT datname FROM pg_database"))}
    admin.dispose()
    seconds = None
    if dw_name not in have:
        started = time.perf_counter()
        create_database(pg.dsn("postgres"), pay_name)
        apply_schema_to(pg.dsn(pay_name))
        seed_sandbox(pg.dsn(pay_name), scale=scale, seed=42, progress=True)
        create_database(pg.dsn("postgres"), dw_name)
        seed_warehouse(pg.dsn(pay_name), pg.dsn(dw_name))
        seconds = time.perf_counter() - started
    return pg.dsn(pay_name), database_url(pg.dsn(pay_name), dw_name), seconds


def naive_bcol(dw_url: str, pay_url: str, sample: int) -> tuple[float, int]:
    """One warehouse query per DRAWDOWN invoice, on ``sample`` invoices; returns (seconds, total invoices)."""
    pay = sa.create_engine(pay_url, poolclass=NullPool)
    with pay.connect() as c:
        keys = [
            r[0]
            for r in c.execute(
                sa.text(
                    "SELECT r.invoice_number FROM invoices i JOIN invoice_references r ON r.invoice_id = i.id "
                    "AND r.status_code = 'COMPLETED' WHERE i.payment_method_code = 'DRAWDOWN'"
                )
            )
        ]
    pay.dispose()
    dw = sa.create_engine(dw_url, poolclass=NullPool)
    started = time.perf_counter()
    with dw.connect() as c:
        for key in keys[:sample]:
            c.execute(
                sa.text("SELECT key, total_amt, qty FROM colin.bconline_billing_record WHERE key = :k"),
                {"k": key},
            ).all()
    dw.dispose()
    return time.perf_counter() - started, len(keys)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", default="large", choices=["small", "medium", "large"])
    p.add_argument("--dir", type=Path, default=Path("/tmp/paynb-bench-reconcile"))
    p.add_argument("--sample", type=int, default=2000)
    p.add_argument("--latency-ms", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--bcol-baseline-sample", type=int, default=2000)
    args = p.parse_args()

    pg = EmbeddedPostgres(args.dir)
    pg.start()
    try:
        run(pg, args)
    finally:
        pg.stop()  # the data stays in --dir for the next run


def run(pg: EmbeddedPostgres, args: argparse.Namespace) -> None:
    pay_url, dw_url, seeded = prepare(pg, args.scale)
    if seeded is not None:
        print(f"seeded pay-db and warehouse ({args.scale}) in {seeded:.1f} s")
    env = Env(
        settings=Settings.load(
            env={"PAYNB_DATABASE_URL": pay_url, "PAYNB_DW_URL": reader_url(dw_url)}, dotenv=None
        )
    )

    reconcile_cfs_warehouse(START, END, env=env)  # warm the caches once; the figures are the second run
    started = time.perf_counter()
    wh = reconcile_cfs_warehouse(START, END, env=env)
    wh_s = time.perf_counter() - started

    state = CfsState.from_database(pay_url)
    with start_cfs_server(
        state, credentials={CLIENT_ID: CLIENT_SECRET}, pay_connector=CONNECTOR, latency_ms=args.latency_ms
    ) as server:
        api_env = Env(
            settings=Settings.load(
                env={
                    "PAYNB_DATABASE_URL": pay_url,
                    "PAYNB_CFS_BASE_URL": server.url,
                    "PAYNB_CFS_CLIENT_ID": CLIENT_ID,
                    "PAYNB_CFS_CLIENT_SECRET": CLIENT_SECRET,
                    "PAYNB_PAY_CONNECTOR_AUTH": CONNECTOR,
                    "PAYNB_CFS_CONCURRENCY": str(args.concurrency),
                },
                dotenv=None,
            )
        )
        started = time.perf_counter()
        api = reconcile_cfs_api(START, END, env=api_env, sample=args.sample)
        api_s = time.perf_counter() - started
        gets = server.stats()["routes"].get("get_invoice", 0)
    assert api.complete, api.notes
    floor_s = gets * args.latency_ms / 1000 / args.concurrency
    api_all_s = api_s * wh.compared / max(api.compared, 1)

    bcol_env = env
    reconcile_bcol(env=bcol_env)
    started = time.perf_counter()
    bcol = reconcile_bcol(env=bcol_env)
    bcol_s = time.perf_counter() - started
    naive_s, drawdown = naive_bcol(dw_url, pay_url, args.bcol_baseline_sample)
    naive_all_s = naive_s * drawdown / max(min(args.bcol_baseline_sample, drawdown), 1)

    invoices = sa.create_engine(pay_url, poolclass=NullPool)
    with invoices.connect() as c:
        n_inv = c.execute(sa.text("SELECT count(*) FROM invoices")).scalar()
    invoices.dispose()
    print(
        f"scale {args.scale}: {n_inv} invoices, {wh.compared} references compared, "
        f"{len(wh.findings)} CFS findings, {bcol.compared} DRAWDOWN invoices, {len(bcol.findings)} BCOL findings"
    )
    print(f"reconcile cfs via warehouse (all references):        {wh_s:8.2f} s")
    print(
        f"baseline: CFS API path on {api.compared} references:      {api_s:8.2f} s "
        f"({gets} GETs at {args.latency_ms} ms, concurrency {args.concurrency})"
    )
    print(
        f"baseline extrapolated to {wh.compared} references:   {api_all_s:8.1f} s "
        f"-> warehouse {api_all_s / wh_s:.0f}x faster (target >= 50x)"
    )
    print(
        f"API path floor (GETs x latency / concurrency):       {floor_s:8.2f} s -> API path "
        f"{api_s / floor_s:.2f}x its floor (target <= 1.5x)"
    )
    print(f"reconcile bcol (all DRAWDOWN invoices):              {bcol_s:8.2f} s")
    print(
        f"baseline: one query per key, extrapolated:          {naive_all_s:8.2f} s "
        f"-> {naive_all_s / bcol_s:.1f}x slower"
    )


if __name__ == "__main__":
    main()
