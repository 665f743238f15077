"""Benchmark: FEEDBACK search over 2,000 files (>= 200 MB) in the sandbox S3, for 1,000 invoice ids.

The files are written by paynb's own writers (``format_*`` INBOX records -> ``render_feedback``), fully
deterministic (``--seed``): one GI batch per file, journals of 16 invoices, a credit/debit JD pair per
invoice, and a rejected line (return code 0155) every 97th invoice. They go into a moto S3 server
(``paynb.sandbox.s3.start_s3_server``) run in its own process, as in ``paynb sandbox up``.

Measured in the same run:

* **cold**: ``search_feedback`` with an empty local index (lists, downloads in parallel, scans, indexes);
* **warm**: the same search again (lists; every file is unchanged, so nothing is downloaded);
* **naive baseline**: download every object one after another and parse each with the strict FEEDBACK
  parser, keeping the records of the wanted invoices (what a "download the bucket and grep" notebook does).

Targets: cold <= 20 s, warm <= 0.5 s.

    python benchmarks/bench_ejv_search.py
    python benchmarks/bench_ejv_search.py --files 200 --lines-per-file 240   # a quick smaller run
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from paynb.formats.feedback import parse_feedback, render_feedback  # noqa: E402
from paynb.formats.inbox import (  # noqa: E402
    InboxRecord,
    format_batch_header,
    format_batch_trailer,
    format_journal_detail,
    format_journal_header,
    gl_string,
    journal_batch_name,
    journal_name,
    parse_inbox,
)
from paynb.ops.ejv.search import search_feedback  # noqa: E402
from paynb.sandbox.postgres import free_port  # noqa: E402
from paynb.settings import Settings  # noqa: E402
from paynb.store import open_store  # noqa: E402

TARGET_COLD_S = 20.0
TARGET_WARM_S = 0.5
BUCKET = "bench-ejv"
LEGACY = "bench-ejv-cgi-ejv"
INVOICES_PER_JOURNAL = 16
FIRST_INVOICE = 5_000_000
REVENUE_GL = gl_string("112", "32363", "34725", "4401", "3200000")


def account_gl(account: int) -> str:
    return gl_string(
        f"{account % 80 + 10:03d}", f"{10000 + account:05d}", "10101", "6001", f"{1000000 + account:07d}"
    )


def make_feedback(index: int, invoices: range, rng: random.Random) -> tuple[str, bytes]:
    """One FEEDBACK file (name, bytes) for a batch holding ``invoices``, rendered from its INBOX."""
    batch = 100_000 + index
    day = date(2025, 9, 1) + timedelta(days=index % 400)
    lines = [format_batch_header("3505", "GI", 2026, batch)]
    count, batch_total, line_no = 0, Decimal(0), 0
    ids = list(invoices)
    for j in range(0, len(ids), INVOICES_PER_JOURNAL):
        header = batch * 100 + j // INVOICES_PER_JOURNAL
        journal = journal_name("FI", header)
        chunk = ids[j : j + INVOICES_PER_JOURNAL]
        amounts = [Decimal(rng.randrange(100, 100_000)) / 100 for _ in chunk]
        total = sum(amounts, Decimal(0))
        lines.append(format_journal_header("3505", "GI", journal, journal_batch_name("FI", batch), total))
        count += 1
        batch_total += total
        for invoice, amount in zip(chunk, amounts, strict=True):
            tag = f"#{invoice}"
            description = (
                f"{'BCREGISTRIES ' + day.strftime('%B %d').upper() + ' DISBURSEMENTS':<{100 - len(tag)}}{tag}"
            )
            for gl, dc in ((REVENUE_GL, "C"), (account_gl(header % 997), "D")):
                line_no += 1
                count += 1
                lines.append(
                    format_journal_detail(
                        "3505", "GI", journal, line_no, day, gl, amount, dc, description, str(invoice)
                    )
                )
    lines.append(format_batch_trailer("3505", "GI", 2026, batch, count, batch_total))
    inbox = parse_inbox("".join(lines), file=f"INBOX.{index}")

    def outcome(record: InboxRecord) -> tuple[str, str]:
        if record.record_type == "JD" and record.invoice_id is not None and record.invoice_id % 97 == 0:
            return "0155", "JD 0155 Invalid account code combination"
        return "0000", ""

    stamp = (date(2025, 9, 2) + timedelta(days=index)).strftime("%Y%m%d")
    name = f"FEEDBACK.F3505.{stamp}{index % 86400:06d}"
    return name, render_feedback(inbox, outcome=outcome).encode()


def start_moto() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "paynb.sandbox.s3", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening" not in line:
        proc.terminate()
        raise SystemExit(f"the sandbox S3 server did not start: {line!r}")
    return proc, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--lines-per-file", type=int, default=224, help="JD lines per file (2 per invoice)")
    parser.add_argument("--ids", type=int, default=1000, help="invoice ids to search for")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from minio import Minio

    proc, port = start_moto()
    try:
        env = {
            "PAYNB_S3_ENDPOINT": f"127.0.0.1:{port}",
            "PAYNB_S3_ACCESS_KEY": "bench",
            "PAYNB_S3_SECRET_KEY": "bench-secret",
            "PAYNB_S3_SECURE": "false",
            "PAYNB_S3_REGION": "us-east-1",
            "PAYNB_BUCKET": BUCKET,
            "PAYNB_LEGACY_EJV_BUCKET": LEGACY,
        }
        settings = Settings.load(env=env, dotenv=None)
        client = Minio(
            f"127.0.0.1:{port}",
            access_key="bench",
            secret_key="bench-secret",
            secure=False,
            region="us-east-1",
        )
        client.make_bucket(BUCKET)
        client.make_bucket(LEGACY)

        rng = random.Random(args.seed)
        per_file = args.lines_per_file // 2
        started = time.perf_counter()
        total_bytes = 0

        def upload(i: int) -> int:
            invoices = range(FIRST_INVOICE + i * per_file, FIRST_INVOICE + (i + 1) * per_file)
            name, data = make_feedback(i, invoices, random.Random(args.seed * 1_000_003 + i))
            client.put_object(
                BUCKET, f"cgi_feedback/{name}", io.BytesIO(data), len(data), content_type="text/plain"
            )
            return len(data)

        with ThreadPoolExecutor(max_workers=4) as pool:
            total_bytes = sum(pool.map(upload, range(args.files)))
        print(
            f"generated and uploaded {args.files} FEEDBACK files, {total_bytes / 1e6:.1f} MB"
            f" ({per_file * args.files} invoices) in {time.perf_counter() - started:.1f} s"
        )
        all_ids = range(FIRST_INVOICE, FIRST_INVOICE + per_file * args.files)
        wanted = sorted(rng.sample(all_ids, min(args.ids, len(all_ids))))
        expected_records = 2 * len(wanted)

        with tempfile.TemporaryDirectory() as tmp:
            index = Path(tmp) / "ejv-index.sqlite"
            t = time.perf_counter()
            cold = search_feedback(
                wanted, settings=settings, index_path=index, workers=args.workers, progress=False
            )
            cold_s = time.perf_counter() - t
            assert len(cold.mentions) == expected_records, (len(cold.mentions), expected_records)
            assert cold.files_scanned == args.files and not cold.problems
            warm_runs = []
            for _ in range(5):
                t = time.perf_counter()
                warm = search_feedback(
                    wanted, settings=settings, index_path=index, workers=args.workers, progress=False
                )
                warm_runs.append(time.perf_counter() - t)
                assert warm.files_scanned == 0 and len(warm.mentions) == expected_records
            warm_s = statistics.median(warm_runs)
            # how much of a warm search is the object listing alone (moto renders every key it returns)
            main_store = open_store(f"s3://{BUCKET}", settings)
            list_runs = []
            for _ in range(5):
                t = time.perf_counter()
                listed = list(main_store.list("cgi_feedback/"))
                list_runs.append(time.perf_counter() - t)
            list_s = statistics.median(list_runs)
            assert len(listed) == args.files
            index_mb = index.stat().st_size / 1e6

        # naive: download everything one object after another, parse each file, keep the wanted records
        wanted_set = set(wanted)
        t = time.perf_counter()
        found = 0
        for obj in client.list_objects(BUCKET, prefix="cgi_feedback/", recursive=True):
            resp = client.get_object(BUCKET, obj.object_name)
            try:
                data = resp.read()
            finally:
                resp.close()
                resp.release_conn()
            found += sum(1 for r in parse_feedback(data, file=obj.object_name) if r.invoice_id in wanted_set)
        naive_s = time.perf_counter() - t
        assert found == expected_records, (found, expected_records)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    errors = sum(1 for m in cold.mentions if m.is_success is False)
    print(
        f"searched {len(wanted)} invoice ids -> {len(cold.mentions)} FEEDBACK records ({errors} with an error code)"
    )
    print(
        f"cold search (empty index, {args.workers} workers): {cold_s:6.2f} s  target <= {TARGET_COLD_S:.1f} s  "
        f"{'OK' if cold_s <= TARGET_COLD_S else 'MISSED'}  ({total_bytes / 1e6 / cold_s:.0f} MB/s, index {index_mb:.1f} MB)"
    )
    print(
        f"warm search (indexed, median of 5):   {warm_s:6.3f} s  target <= {TARGET_WARM_S:.1f} s  "
        f"{'OK' if warm_s <= TARGET_WARM_S else 'MISSED'}  (runs: {', '.join(f'{r:.3f}' for r in warm_runs)})"
    )
    print(f"  of which listing {args.files} objects (S3 LIST, median of 5): {list_s:.3f} s")
    print(
        f"naive baseline (sequential download + strict parse): {naive_s:6.2f} s  "
        f"-> cold is {naive_s / cold_s:.1f}x faster, warm {naive_s / warm_s:.0f}x faster"
    )
    return 0 if cold_s <= TARGET_COLD_S and warm_s <= TARGET_WARM_S else 1


if __name__ == "__main__":
    sys.exit(main())
