"""paynb's job overhead: ``paynb run`` of a notebook against bare ``papermill.execute_notebook`` of the
same notebook, alternating, in the same process and the same run.

Bare papermill: defaults (autosave on, output to a local file), kernel ``python3``.
paynb: parameter schema and checks, run record, redaction and secret scan, HTML render, archive (to
the sandbox S3 server when the sandbox is used, else the local data folder) and the ledger.

Target: paynb's median at most 30 % over papermill's. One warm-up of each is run first and not counted
(imports, nbconvert's templates), which is what a long-running scheduler process sees; the first,
cold run is printed too.

The default notebook is ``notebooks/reports/stale_invoices.ipynb``, which reads pay-db: a sandbox is
started in a temporary folder (or pass ``--env-file .sandbox/sandbox.env`` to use a running one).

    .venv/bin/python benchmarks/bench_run_overhead.py
    .venv/bin/python benchmarks/bench_run_overhead.py --reps 9 -p days 30
    .venv/bin/python benchmarks/bench_run_overhead.py tests/notebooks/success.ipynb --no-sandbox
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = ROOT / "notebooks" / "reports" / "stale_invoices.ipynb"
FALLBACK_NOTEBOOK = ROOT / "tests" / "notebooks" / "success.ipynb"
TARGET = 1.30


def load_env_file(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebook",
        nargs="?",
        type=Path,
        default=None,
        help="default: the stale-invoice report (or a fixture notebook if it is missing)",
    )
    parser.add_argument("--reps", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--env-file", type=Path, help="settings of a running sandbox (sandbox.env)")
    parser.add_argument(
        "--no-sandbox", action="store_true", help="do not start a sandbox (notebook needs no DB)"
    )
    args = parser.parse_args(argv)

    notebook = args.notebook or (DEFAULT_NOTEBOOK if DEFAULT_NOTEBOOK.exists() else FALLBACK_NOTEBOOK)
    work = Path(tempfile.mkdtemp(prefix="paynb-bench-run-"))
    sandbox = None
    if args.env_file:
        env = load_env_file(args.env_file)
    elif args.no_sandbox:
        env = {}
    else:
        from paynb.sandbox.manager import Sandbox

        print(f"starting a sandbox in {work / 'sandbox'} (small data set) …", flush=True)
        sandbox = Sandbox(work / "sandbox")
        t0 = time.perf_counter()
        env = sandbox.up(scale="small", echo=lambda *_: None)
        print(f"sandbox up in {time.perf_counter() - t0:.1f} s", flush=True)
    env = {**env, "PAYNB_DATA_DIR": str(work / "data")}
    os.environ.update(env)  # both kernels inherit the sandbox settings the same way

    import papermill

    from paynb.jobs import run_notebook
    from paynb.jobs.params import read_notebook_schema, resolve_parameters
    from paynb.settings import Settings

    settings = Settings.load(env=dict(os.environ), dotenv=None)
    schema = read_notebook_schema(notebook, secret_values=settings.secret_values())
    typed = resolve_parameters(schema, dict(args.parameter))
    given = dict(args.parameter)

    def bare() -> float:
        start = time.perf_counter()
        papermill.execute_notebook(
            str(notebook),
            str(work / "bare.ipynb"),
            parameters=typed,
            kernel_name="python3",
            progress_bar=False,
        )
        return time.perf_counter() - start

    phases: list[dict[str, float]] = []

    def paynb() -> float:
        start = time.perf_counter()
        result = run_notebook(notebook, given, settings=settings)
        elapsed = time.perf_counter() - start
        if not result.ok:
            raise SystemExit(f"paynb run failed: {result.message}")
        phases.append(result.timings)
        return elapsed

    try:
        print(f"notebook: {notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook}")
        print(f"archive:  {settings.archive_url or 'file://' + str(work / 'data' / 'archive')}")
        cold_bare, cold_paynb = bare(), paynb()
        print(f"cold (first) run: papermill {cold_bare:.2f} s, paynb {cold_paynb:.2f} s")
        phases.clear()
        times: dict[str, list[float]] = {"papermill": [], "paynb": []}
        for i in range(args.reps):
            # alternate the order so drift on a shared machine hits both equally
            pair = (
                (("papermill", bare), ("paynb", paynb))
                if i % 2 == 0
                else (("paynb", paynb), ("papermill", bare))
            )
            for name, fn in pair:
                times[name].append(fn())
        med_bare = statistics.median(times["papermill"])
        med_paynb = statistics.median(times["paynb"])
        ratio = med_paynb / med_bare
        print(f"{args.reps} timed runs each (after one warm-up):")
        for name, values in times.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"  {name:<9} median {statistics.median(values):.2f} s   [{shown}]")
        print(
            f"  overhead  {med_paynb - med_bare:+.2f} s, ratio {ratio:.2f} (target <= {TARGET:.2f}): "
            f"{'MET' if ratio <= TARGET else 'MISSED'}"
        )
        steps = {k: statistics.median(p.get(k, 0.0) for p in phases) for k in phases[0]}
        print("  paynb steps (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))
        return 0 if ratio <= TARGET else 1
    finally:
        if sandbox is not None:
            sandbox.down(purge=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
