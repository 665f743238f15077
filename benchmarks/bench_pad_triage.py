"""PAD triage at the FAQ's scale: paynb's ``triage_stuck_pad`` against a naive sequential loop, same run.

Data: 665 PAD invoices APPROVED for more than 20 days (the FAQ figure), rolled up into 120 CFS invoices
(5-6 pay-db invoices each), in a fresh embedded PostgreSQL; an in-process CFS sandbox server answering
every call after ``--latency-ms`` (100 ms); settlement CSVs in a local store for the invoices CAS shows paid.

* paynb: the whole triage (pay-db queries, one CFS GET per distinct CFS invoice at ``--concurrency``,
  the CSV search for amount_due = 0, classification).
* baseline: what the N2 notebook does by hand: one join query, one token, then one GET per pay-db invoice,
  one after the other (no CSV search, which only flatters the baseline).

The floor is ``distinct CFS invoices x latency / concurrency``. Targets: paynb <= 1.5x the floor, and at
least 10x faster than the baseline.

    .venv/bin/python benchmarks/bench_pad_triage.py                      # full baseline (about 70 s)
    .venv/bin/python benchmarks/bench_pad_triage.py --baseline-sample 100   # baseline on 100 GETs, scaled
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb import db
from paynb.cfs import CfsClient
from paynb.formats.settlement_csv import SettlementRow, write_settlement_csv
from paynb.ops.pad.triage import triage_stuck_pad
from paynb.sandbox.cfs_server import CfsState, start_cfs_server
from paynb.sandbox.postgres import EmbeddedPostgres
from paynb.sandbox.schema import apply_schema
from paynb.secrets import Secret
from paynb.settings import Settings
from paynb.store import open_store
from paynb.timez import utcnow_naive

CLIENT_ID, CLIENT_SECRET, CONNECTOR = "bench", "bench-secret-4f1a", "bench-connector"

NAIVE_SQL = """
SELECT i.id, ir.invoice_number, ca.cfs_party, ca.cfs_account, ca.cfs_site
  FROM invoices i
  JOIN invoice_references ir ON ir.invoice_id = i.id AND ir.status_code = 'ACTIVE'
  JOIN cfs_accounts ca ON ca.id = i.cfs_account_id
 WHERE i.invoice_status_code = 'APPROVED' AND i.payment_method_code = 'PAD'
   AND i.created_on < (now() AT TIME ZONE 'UTC') - interval '20 days'
 ORDER BY i.id
 LIMIT :limit
"""


def build(url: str, store_dir: Path, invoices: int, distinct: int, seed: int) -> CfsState:
    """Accounts, roll-ups, references, what CAS knows, and a CSV for a third of the settled roll-ups."""
    rng = random.Random(seed)
    now = utcnow_naive()
    state = CfsState()
    store = open_store(f"file://{store_dir}")
    sizes = [invoices // distinct + (1 if i < invoices % distinct else 0) for i in range(distinct)]
    csv_rows: dict[str, list[SettlementRow]] = {}
    eng = sa.create_engine(url, poolclass=NullPool)
    with eng.begin() as c:
        for n, size in enumerate(sizes):
            party, account, site = f"{10000 + n}", f"{20000 + n}", f"{30000 + n}"
            pa = c.execute(
                sa.text(
                    "INSERT INTO payment_accounts (auth_account_id, name, payment_method, billable) "
                    "VALUES (:a, :n, 'PAD', true) RETURNING id"
                ),
                {"a": f"{5000 + n}", "n": f"Bench account {n}"},
            ).scalar_one()
            cfs_id = c.execute(
                sa.text(
                    "INSERT INTO cfs_accounts (account_id, cfs_party, cfs_account, cfs_site, status, "
                    "payment_method) VALUES (:pa, :p, :a, :s, 'ACTIVE', 'PAD') RETURNING id"
                ),
                {"pa": pa, "p": party, "a": account, "s": site},
            ).scalar_one()
            created = now - timedelta(days=rng.randint(21, 90))
            ids = [
                c.execute(
                    sa.text(
                        "INSERT INTO invoices (created_by, created_on, invoice_status_code, total, paid, "
                        "payment_account_id, cfs_account_id, payment_method_code, corp_type_code) VALUES "
                        "('bench', :c, 'APPROVED', :t, 0, :pa, :cfs, 'PAD', 'BC') RETURNING id"
                    ),
                    {
                        "c": created + timedelta(minutes=i),
                        "t": Decimal(rng.randint(500, 35000)) / 100,
                        "pa": pa,
                        "cfs": cfs_id,
                    },
                ).scalar_one()
                for i in range(size)
            ]
            number = f"REG{ids[0]:08d}"
            total = c.execute(
                sa.text("SELECT sum(total) FROM invoices WHERE id = ANY(:i)"), {"i": ids}
            ).scalar_one()
            c.execute(
                sa.text(
                    "INSERT INTO invoice_references (invoice_id, invoice_number, status_code, created_on) "
                    "SELECT id, :n, 'ACTIVE', :c FROM invoices WHERE id = ANY(:i)"
                ),
                {"n": number, "c": created + timedelta(days=1), "i": ids},
            )
            settled = n % 3 == 0  # a third paid in CAS (amount_due 0), the rest not yet debited
            state.add_invoice(party, account, site, number, total, 0 if settled else total)
            if settled and n % 2 == 0:  # half of those have a CSV nobody processed
                day = (created + timedelta(days=2)).date()
                csv_rows.setdefault(f"BCR_PAYMENT_APPL_{day:%Y%m%d}.csv", []).append(
                    SettlementRow(
                        "PADP",
                        "BCR-PAD Daily",
                        f"RCPT{n:06d}",
                        n,
                        day,
                        total,
                        account,
                        "INV",
                        number,
                        total,
                        Decimal("0"),
                        "Fully PAID",
                    )
                )
    eng.dispose()
    for name, rows in sorted(csv_rows.items()):
        store.put(f"ar/{name}", write_settlement_csv(rows).encode(), content_type="text/csv")
    return state


def naive(url: str, base: str, limit: int | None = None) -> list[Decimal]:
    """The hand-run notebook: one query, one token, then one GET per pay-db invoice, sequentially
    (``limit``: only the first invoices, for a quick run)."""
    eng = sa.create_engine(url, poolclass=NullPool)
    with eng.connect() as c:
        rows = c.execute(sa.text(NAIVE_SQL), {"limit": limit}).all()  # LIMIT NULL = all rows
    eng.dispose()
    session = requests.Session()
    token = session.post(
        f"{base}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        headers={"Pay-Connector": CONNECTOR},
        timeout=30,
    ).json()["access_token"]
    dues = []
    for _, number, party, account, site in rows:
        resp = session.get(
            f"{base}/cfs/parties/{party}/accs/{account}/sites/{site}/invs/{number}/",
            headers={"Authorization": f"Bearer {token}", "Pay-Connector": CONNECTOR},
            timeout=30,
        )
        resp.raise_for_status()
        dues.append(Decimal(str(resp.json()["amount_due"])))
    return dues


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--invoices", type=int, default=665)
    p.add_argument("--distinct", type=int, default=120)
    p.add_argument("--latency-ms", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument(
        "--baseline-sample", type=int, default=0, help="time the baseline on N GETs and scale (0 = all)"
    )
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="paynb-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        try:
            admin = sa.create_engine(pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.exec_driver_sql('CREATE DATABASE "bench"')
            admin.dispose()
            url = pg.dsn("bench")
            eng = sa.create_engine(url, poolclass=NullPool)
            with eng.begin() as c:
                apply_schema(c)
            eng.dispose()
            started = time.perf_counter()
            state = build(url, Path(tmp) / "store", args.invoices, args.distinct, args.seed)
            print(f"data set built in {time.perf_counter() - started:.1f} s")

            with start_cfs_server(
                state,
                credentials={CLIENT_ID: CLIENT_SECRET},
                pay_connector=CONNECTOR,
                latency_ms=args.latency_ms,
            ) as server:
                settings = Settings()
                engine = db.create_engine(settings, url=url)
                store = open_store(f"file://{Path(tmp) / 'store'}")
                client = CfsClient(
                    base_url=server.url,
                    client_id=CLIENT_ID,
                    client_secret=Secret(CLIENT_SECRET),
                    pay_connector=Secret(CONNECTOR),
                    concurrency=args.concurrency,
                )
                started = time.perf_counter()
                report = triage_stuck_pad(
                    20, settings=settings, engine=engine, cfs=client, store=store, progress=False
                )
                paynb_s = time.perf_counter() - started
                client.close()
                gets = server.stats()["routes"].get("get_invoice", 0)
                assert len(report) == args.invoices, len(report)

                server.reset_stats()
                started = time.perf_counter()
                dues = naive(url, server.url, args.baseline_sample or None)
                naive_s = (time.perf_counter() - started) * args.invoices / len(dues)
                naive_gets = server.stats()["routes"].get("get_invoice", 0)
                db.dispose_engines()
        finally:
            pg.destroy()

    by_number = {r.cfs_invoice_number: r.cfs_amount_due for r in report.rows}
    assert len(by_number) == args.distinct
    floor_s = args.distinct * args.latency_ms / 1000 / args.concurrency
    summary = report.summary_by_action()
    print(
        f"pay-db invoices {args.invoices}, distinct CFS invoices {args.distinct}, latency {args.latency_ms} ms, "
        f"concurrency {args.concurrency}"
    )
    print(
        "actions: "
        + ", ".join(f"{a} {n}" for a, n in zip(summary["action"], summary["invoices"], strict=True))
    )
    scaled = f", timed on {naive_gets} and scaled to {args.invoices}" if len(dues) < args.invoices else ""
    print(f"paynb triage:   {paynb_s:7.2f} s  ({gets} CFS GETs)")
    print(f"naive baseline: {naive_s:7.2f} s  (one GET per pay-db invoice{scaled})")
    print(f"floor:          {floor_s:7.2f} s  (distinct x latency / concurrency)")
    ratio, speedup = paynb_s / floor_s, naive_s / paynb_s
    print(f"ratio to floor: {ratio:7.2f} x  (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})")
    print(f"speed-up:       {speedup:7.1f} x  (target >= 10x: {'met' if speedup >= 10 else 'MISSED'})")


if __name__ == "__main__":
    main()
