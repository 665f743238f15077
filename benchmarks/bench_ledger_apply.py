"""The audit cost of one apply: its ledger entries (``apply-started`` and ``apply-finished``, each chained
under the ledger lock and checked against its schema) plus their two write-once anchors in the archive.

Baselines measured in the same run: a bare one-row INSERT transaction into the same SQLite ledger file,
and a bare ``put`` of an anchor-sized object to the same archive. Archives: the local folder
(``file://``) and the sandbox S3 server over HTTP (``s3://``, skipped with ``--no-s3``).

Target: an apply's entries plus anchors cost at most 50 ms (median).

    .venv/bin/python benchmarks/bench_ledger_apply.py
    .venv/bin/python benchmarks/bench_ledger_apply.py --reps 200 --no-s3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 50.0


def _plan():  # type: ignore[no-untyped-def]
    from paynb.plan import Plan

    rows = [{"table": "invoices", "id": 1000 + i, "before": "APPROVED", "after": "PAID"} for i in range(20)]
    return Plan(
        kind="bench.fix", body={"params": {"ids": list(range(20))}, "changes": rows}, summary="20 rows"
    )


def measure(settings, reps: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from paynb.context import Env
    from paynb.fixes import Outcome
    from paynb.ledger import open_ledger, record_apply_finished, record_apply_started
    from paynb.ledger.anchors import _store, anchor_key, archive_url

    env = Env(settings=settings, operator="bench")
    ledger = open_ledger(settings)
    plan = _plan()
    outcome = Outcome(
        "applied",
        20,
        {"status": "APPROVED"},
        {"status": "PAID"},
        {"rows": [{"table": "invoices", "id": 1000 + i} for i in range(20)]},
    )
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_bare (n INTEGER, body TEXT)")
    store = _store(archive_url(settings), settings)
    body = b"x" * 300
    times: dict[str, list[float]] = {"apply (2 entries + 2 anchors)": [], "bare INSERT": [], "bare put": []}

    def apply_once() -> float:
        start = time.perf_counter()
        started = record_apply_started("bench.fix", plan, env=env, ticket="BENCH-1", reason="benchmark")
        record_apply_finished(started, outcome, {"ok": True}, env=env)
        return time.perf_counter() - start

    def insert_once(n: int) -> float:
        start = time.perf_counter()
        with ledger.engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO bench_bare (n, body) VALUES (:n, :b)"), {"n": n, "b": "x" * 300}
            )
        return time.perf_counter() - start

    def put_once(n: int) -> float:
        start = time.perf_counter()
        store.put(anchor_key("bench-bare", n), body, content_type="application/json")
        return time.perf_counter() - start

    apply_once(), insert_once(-1), put_once(10**9)  # warm-up: imports, schema validator, clients
    for n in range(reps):
        times["apply (2 entries + 2 anchors)"].append(apply_once())
        times["bare INSERT"].append(insert_once(n))
        times["bare put"].append(put_once(n))
    return times


def report(label: str, times: dict[str, list[float]]) -> bool:
    print(f"{label}:")
    for name, values in times.items():
        ms = sorted(v * 1000 for v in values)
        print(
            f"  {name:<30} median {statistics.median(ms):7.2f} ms   p90 {ms[int(len(ms) * 0.9) - 1]:7.2f} ms"
        )
    median = statistics.median(times["apply (2 entries + 2 anchors)"]) * 1000
    met = median <= TARGET_MS
    print(f"  apply audit cost {median:.2f} ms (target <= {TARGET_MS:.0f} ms): {'MET' if met else 'MISSED'}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100, help="timed applies per archive (default 100)")
    parser.add_argument("--no-s3", action="store_true", help="only the local-folder archive")
    args = parser.parse_args(argv)

    from paynb.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="paynb-bench-ledger-"))
    ok = True
    s3 = None
    try:
        local = Settings.load(env={"PAYNB_DATA_DIR": str(work / "local")}, dotenv=None)
        ok &= report("archive file:// (local folder)", measure(local, args.reps))
        if not args.no_s3:
            from paynb.sandbox.s3 import ensure_bucket, start_s3_server

            s3 = start_s3_server()
            ensure_bucket(s3.client(), "bench-archive", versioning=True)
            remote = Settings.load(
                env={
                    **s3.env(),
                    "PAYNB_DATA_DIR": str(work / "s3"),
                    "PAYNB_ARCHIVE_URL": "s3://bench-archive/paynb",
                },
                dotenv=None,
            )
            ok &= report("archive s3:// (sandbox S3 server over HTTP)", measure(remote, args.reps))
    finally:
        if s3 is not None:
            s3.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
