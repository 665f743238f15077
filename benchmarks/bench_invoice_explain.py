"""Benchmark: ``paynb invoice explain`` of one invoice, cold and warm, in-process.

Needs a running sandbox (``paynb sandbox up --scale large --dir .sandbox && source .sandbox/sandbox.env``).
Picks a stuck PAD invoice and an EJV invoice from the injected scenarios and times:

* cold: the first explain in a fresh process state (empty FEEDBACK index in a new data dir);
* warm: the same explain again (index built, connections pooled);
* baseline (same run): pay-db only (``use_cfs=False, use_files=False``): what the SQL alone costs;
* baseline for cold (same run): a FEEDBACK/INBOX search that reads the whole history into a fresh index,
  which a cold explain did before it read only files stamped after the invoice was created.

Targets: warm <= 1 s, cold <= 3 s.

    python benchmarks/bench_invoice_explain.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_WARM_S = 1.0
TARGET_COLD_S = 3.0


def main() -> int:
    if not os.environ.get("PAYNB_DATABASE_URL"):
        print(
            "start the sandbox first: paynb sandbox up --scale large --dir .sandbox && source .sandbox/sandbox.env"
        )
        return 2
    os.environ["PAYNB_DATA_DIR"] = tempfile.mkdtemp(prefix="paynb-bench-explain-")
    import sqlalchemy as sa

    from paynb.context import Env
    from paynb.ops.invoice import explain_invoices

    env = Env.from_environment()
    with env.read() as conn:
        picks = {}
        for name in ("pad_stuck_settled_csv_unprocessed", "ejv_no_feedback"):
            row = conn.execute(
                sa.text(
                    "SELECT ids[1] FROM paynb_sandbox.scenarios WHERE name = :n AND table_name = 'invoices'"
                ),
                {"n": name},
            ).first()
            if row and row[0]:
                picks[name] = str(row[0])
    ok = True
    for name, invoice in picks.items():
        started = time.perf_counter()
        report = explain_invoices([invoice], env=env)
        cold = time.perf_counter() - started
        warm_runs = []
        for _ in range(5):
            started = time.perf_counter()
            explain_invoices([invoice], env=env)
            warm_runs.append(time.perf_counter() - started)
        base_runs = []
        for _ in range(5):
            started = time.perf_counter()
            explain_invoices([invoice], env=env, use_cfs=False, use_files=False)
            base_runs.append(time.perf_counter() - started)
        warm = statistics.median(warm_runs)
        base = statistics.median(base_runs)
        codes = [s.code for e in report.explanations for s in e.situations]
        verdict = "ok" if warm <= TARGET_WARM_S and cold <= TARGET_COLD_S else "MISSED"
        ok &= verdict == "ok"
        print(
            f"{name} (invoice {invoice}, {codes}): cold {cold:.2f} s (target {TARGET_COLD_S}), warm median "
            f"{warm:.2f} s (target {TARGET_WARM_S}); baseline pay-db only {base:.3f} s  {verdict}"
        )
    # baseline for cold: reading every FEEDBACK/INBOX file into a fresh index, as a cold explain did before
    # it read only the files stamped after the invoice was created
    from paynb.ops.ejv.search import search_feedback

    if picks:
        started = time.perf_counter()
        full = search_feedback(
            [int(i) for i in picks.values()],
            settings=env.settings,
            progress=False,
            index_path=Path(tempfile.mkdtemp(prefix="paynb-bench-explain-")) / "full.sqlite",
        )
        print(
            f"baseline cold, whole history: {time.perf_counter() - started:.2f} s "
            f"({full.files_scanned:,} files, {full.bytes_read / 1e6:,.0f} MB read)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
