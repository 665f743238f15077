"""Benchmark: FEEDBACK search on gs:// (the fake-gcs-server emulator) and s3:// (moto), and a warm search
whose cost does not grow with history.

For each store, in the same run:

1. 2,000 FEEDBACK files (>= 200 MB, written as in ``bench_ejv_search``) in ``cgi_feedback/``; search 1,000
   ids: **cold** (empty index) and **warm** (median of 5);
2. 18,000 more, small and older, files (20,000 in all), indexed once with ``--reindex``; then **warm**
   again (median of 5), and the **baseline**: the same warm search listing the whole folder (what the
   search did before it listed only the names after the newest indexed ones).

Targets: cold <= 20 s, warm <= 0.3 s with 2,000 and with 20,000 files.

    python benchmarks/bench_ejv_search_stores.py
    python benchmarks/bench_ejv_search_stores.py --files 200 --history 2000 --stores gs   # quicker
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_ejv_search import FIRST_INVOICE, make_feedback  # noqa: E402
from paynb.ops.ejv import search as search_module  # noqa: E402
from paynb.ops.ejv.search import search_feedback  # noqa: E402
from paynb.settings import Settings  # noqa: E402

TARGET_COLD_S = 20.0
TARGET_WARM_S = 0.3
BUCKET = "bench-pay"


def _start(kind: str, tmp: Path, args: argparse.Namespace):
    """(settings, put(key, data), stop) for a fresh server of ``kind``."""
    if kind == "gs":
        from paynb.sandbox.gcs import start_gcs_emulator

        server = start_gcs_emulator(tmp / "gcs", backend=args.gcs_backend)
        client = server.client()
        client.create_bucket(BUCKET)
        bucket = client.bucket(BUCKET)
        env = {**server.env(), "PAYNB_BUCKET_URL": f"gs://{BUCKET}"}

        def put(key: str, data: bytes) -> None:
            bucket.blob(key).upload_from_string(data, content_type="text/plain", if_generation_match=0)

        return Settings.load(env=env, dotenv=None), put, server.stop
    import io

    from paynb.sandbox.s3 import ensure_bucket, start_s3_server

    server = start_s3_server()
    s3 = server.client()
    ensure_bucket(s3, BUCKET, versioning=False)
    env = {**server.env(), "PAYNB_BUCKET": BUCKET}

    def put_s3(key: str, data: bytes) -> None:
        s3.put_object(BUCKET, key, io.BytesIO(data), len(data), content_type="text/plain")

    return Settings.load(env=env, dotenv=None), put_s3, server.stop


def _search(wanted, settings, index, workers, **kw):
    t = time.perf_counter()
    result = search_feedback(
        wanted, settings=settings, index_path=index, workers=workers, progress=False, **kw
    )
    return result, time.perf_counter() - t


def _warm(wanted, settings, index, workers, expected) -> tuple[float, list[float]]:
    runs = []
    for _ in range(5):
        result, s = _search(wanted, settings, index, workers)
        assert result.files_scanned == 0 and len(result.mentions) == expected, (result.files_scanned,)
        runs.append(s)
    return statistics.median(runs), runs


def _listing_floor(settings: Settings) -> float:
    """Median of 5: one listing of cgi_feedback/FEEDBACK after its newest key, which returns nothing. The
    store's own cost for the warm search's largest listing, whatever paynb does with the answer."""
    from paynb.store import pay_bucket

    store = pay_bucket(settings)
    newest = max(info.key for info in store.list("cgi_feedback/FEEDBACK", recursive=True))
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        assert not list(store.list("cgi_feedback/FEEDBACK", recursive=True, start_after=newest))
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def bench(kind: str, args: argparse.Namespace) -> dict[str, float]:
    per_file = args.lines_per_file // 2
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp_name:
        tmp = Path(tmp_name)
        settings, put, stop = _start(kind, tmp, args)
        try:
            t = time.perf_counter()

            def upload(i: int) -> int:
                invoices = range(FIRST_INVOICE + i * per_file, FIRST_INVOICE + (i + 1) * per_file)
                name, data = make_feedback(i, invoices, random.Random(args.seed * 1_000_003 + i))
                put(f"cgi_feedback/{name}", data)
                return len(data)

            with ThreadPoolExecutor(max_workers=8) as pool:
                total = sum(pool.map(upload, range(args.files)))
            out["upload_s"] = time.perf_counter() - t
            out["mb"] = total / 1e6
            rng = random.Random(args.seed)
            all_ids = range(FIRST_INVOICE, FIRST_INVOICE + per_file * args.files)
            wanted = sorted(rng.sample(all_ids, min(args.ids, len(all_ids))))
            expected = 2 * len(wanted)
            index = tmp / "ejv-index.sqlite"
            cold, out["cold_s"] = _search(wanted, settings, index, args.workers)
            assert len(cold.mentions) == expected and cold.files_scanned == args.files
            out["warm_s"], _ = _warm(wanted, settings, index, args.workers, expected)

            # history: small older files (names sort before the 2,000), indexed once with --reindex
            def history(i: int) -> None:
                invoice = 1_000_000 + i
                _, data = make_feedback(10_000 + i, range(invoice, invoice + 1), random.Random(i))
                put(f"cgi_feedback/FEEDBACK.F3505.2019{i:010d}", data)

            t = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(history, range(args.history)))
            out["history_upload_s"] = time.perf_counter() - t
            full, out["reindex_s"] = _search(wanted, settings, index, args.workers, reindex=True)
            assert full.files_scanned == args.files + args.history
            out["warm_big_s"], _ = _warm(wanted, settings, index, args.workers, expected)
            out["floor_s"] = _listing_floor(settings)
            window = search_module.RELIST_WINDOW
            search_module.RELIST_WINDOW = 10**9  # list the whole folder, as before
            try:
                out["baseline_full_list_s"], _ = _warm(wanted, settings, index, args.workers, expected)
            finally:
                search_module.RELIST_WINDOW = window
        finally:
            stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--history", type=int, default=18000, help="older small files added afterwards")
    parser.add_argument("--lines-per-file", type=int, default=224)
    parser.add_argument("--ids", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--stores", default="gs,s3", help="comma list of gs, s3")
    parser.add_argument(
        "--gcs-backend",
        default="filesystem",
        choices=("filesystem", "memory"),
        help="the emulator's store; its filesystem back end reads every object's attributes under the "
        "prefix for each listing, whatever startOffset says, which real GCS does not",
    )
    args = parser.parse_args(argv)
    ok = True
    for kind in args.stores.split(","):
        r = bench(kind, args)
        n_all = args.files + args.history
        cold_ok, warm_ok, big_ok = (
            r["cold_s"] <= TARGET_COLD_S,
            r["warm_s"] <= TARGET_WARM_S,
            r["warm_big_s"] <= TARGET_WARM_S,
        )
        ok = ok and cold_ok and warm_ok and big_ok
        where = f" (emulator back end: {args.gcs_backend})" if kind == "gs" else ""
        print(
            f"\n[{kind}://]{where} {args.files} FEEDBACK files, {r['mb']:.1f} MB (uploaded in {r['upload_s']:.1f} s), {args.ids} ids"
        )
        print(
            f"  cold search:                 {r['cold_s']:7.2f} s  target <= {TARGET_COLD_S:.1f} s  {'OK' if cold_ok else 'MISSED'}"
        )
        print(
            f"  warm search (median of 5):   {r['warm_s']:7.3f} s  target <= {TARGET_WARM_S:.1f} s  {'OK' if warm_ok else 'MISSED'}"
        )
        print(
            f"  with {n_all} files: --reindex {r['reindex_s']:.1f} s (history uploaded in {r['history_upload_s']:.1f} s)"
        )
        print(
            f"  warm search (median of 5):   {r['warm_big_s']:7.3f} s  target <= {TARGET_WARM_S:.1f} s  {'OK' if big_ok else 'MISSED'}"
        )
        print(
            f"  of which the store's floor:  {r['floor_s']:7.3f} s  (one listing after the newest key, empty)"
        )
        print(
            f"  baseline, listing all {n_all}: {r['baseline_full_list_s']:7.3f} s  "
            f"-> {r['baseline_full_list_s'] / r['warm_big_s']:.1f}x slower than listing only new names"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
