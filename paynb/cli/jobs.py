"""CLI: ``paynb run``, ``paynb runs list|show``, ``paynb audit verify``, ``paynb archive flush``.

Thin: each command parses options and calls :mod:`paynb.jobs`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import pandas as pd

from paynb.cli import exits
from paynb.cli.options import json_option
from paynb.errors import SecretLeak
from paynb.output import print_json, print_table

# exit codes of `paynb run` (2 is bad input, as for every paynb command)
EXIT_FAILED = {
    "cell_error": exits.CELL_ERROR,
    "timeout": exits.TIMEOUT,
    "dead_kernel": exits.DEAD_KERNEL,
    "kernel_error": exits.FAILED,
    "refused": exits.REFUSED,
}
EXIT_SECRET_LEAK = exits.SECRET_LEAK


@click.command("run")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A parameter value, converted strictly to the type the notebook declares. Repeatable.",
)
@click.option(
    "-f",
    "--params-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML mapping of parameters (values stay text until converted; -p wins on a clash).",
)
@click.option(
    "--archive",
    "archive_url",
    metavar="URL",
    help="file://DIR or s3://BUCKET/PREFIX (default: PAYNB_ARCHIVE_URL, else <data dir>/archive).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.IntRange(min=1),
    metavar="S",
    help="Stop a cell that runs longer than S seconds (the run fails with `timeout`).",
)
@click.option(
    "--kernel",
    "kernel_name",
    metavar="NAME",
    help="A named kernelspec (default: a kernel running paynb's own Python).",
)
@click.option(
    "--idempotency-key", metavar="KEY", help="Refuse to start if a successful run already recorded KEY."
)
@click.option("--help-notebook", is_flag=True, help="Print the notebook's parameters and exit.")
@json_option
def run_command(
    notebook: Path,
    parameters: tuple[tuple[str, str], ...],
    params_file: Path | None,
    archive_url: str | None,
    timeout_s: int | None,
    kernel_name: str | None,
    idempotency_key: str | None,
    help_notebook: bool,
    as_json: bool,
) -> None:
    """Run NOTEBOOK as an auditable job: typed parameters, run record, redaction, archive, ledger.

    Exit codes: 0 succeeded, 2 bad input (nothing ran), 3 cell error, 4 timeout, 5 dead kernel,
    6 secret found in the output (nothing archived), 7 refused: a data-fix cell raised a plan error
    (missing or wrong confirm, data changed since the plan; nothing applied), 1 anything else
    (docs/exit-codes.md).

    \b
    Example:
      paynb run notebooks/reports/stale_invoices.ipynb -p days 20 -p methods PAD,EFT
      paynb run notebooks/reports/stale_invoices.ipynb --help-notebook
      paynb run fix.ipynb -f params.yaml --archive s3://pay-archive/paynb --timeout 600
    """
    from paynb.jobs.params import read_notebook_schema
    from paynb.settings import get_settings

    settings = get_settings()
    if help_notebook:
        schema = read_notebook_schema(notebook, secret_values=settings.secret_values())
        if as_json:
            print_json(schema.to_dict())
            return
        rows = [p.to_dict() for p in schema.params.values()]
        frame = pd.DataFrame(rows, columns=["name", "type", "default", "help", "redact"])
        print_table(frame, title=f"Parameters of {notebook}")
        return

    from paynb.jobs.runner import run_notebook

    # an unreachable store is reported once, clearly, by the spool message; not by urllib3's retry log
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    given = dict(parameters)
    try:
        result = run_notebook(
            notebook,
            given,
            params_file=params_file,
            archive_url=archive_url,
            timeout_s=timeout_s,
            settings=settings,
            kernel_name=kernel_name,
            idempotency_key=idempotency_key,
            progress=not as_json,
        )
    except SecretLeak as err:
        click.echo(f"error: {err}", err=True)
        raise click.exceptions.Exit(EXIT_SECRET_LEAK) from None
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(f"run id   {result.run_id}")
        click.echo(f"status   {result.message}")
        if result.archive_state == "spooled":
            click.echo(f"archive  SPOOLED locally for {result.archive_url}")
            click.echo(f"         ({result.spool_reason}); deliver it with `paynb archive flush`")
        else:
            click.echo(f"archive  {result.archive_url}")
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED.get(result.failure_kind or "", 1))


@click.group("runs")
def runs_group() -> None:
    """The run ledger: every `paynb run`, newest first.

    \b
    Example:
      paynb runs list --limit 10
      paynb runs show 0193a1b2
    """


@runs_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs.")
@json_option
def runs_list(limit: int, as_json: bool) -> None:
    """List recent runs.

    \b
    Example:
      paynb runs list --limit 50 --json
    """
    from paynb.jobs.ledger import open_ledger

    if _no_ledger_yet(as_json):
        return
    entries = open_ledger().entries(limit=limit, newest_first=True)
    rows = [_run_row(e.record) for e in entries]
    if as_json:
        print_json(rows)
        return
    print_table(pd.DataFrame(rows, columns=["run_id", "started_at", "notebook", "status", "failure_kind",
                                            "seconds", "archive"]))  # fmt: skip


def _no_ledger_yet(as_json: bool) -> bool:
    """Say that no run has been recorded here (and create nothing) when the local ledger is absent."""
    from paynb.jobs.ledger import missing_local_ledger
    from paynb.settings import get_settings

    path = missing_local_ledger(get_settings())
    if path is None:
        return False
    if as_json:
        print_json([])
    else:
        click.echo(f"no runs recorded yet: {path} does not exist (`paynb run` creates it)")
    return True


def _run_row(record: dict[str, Any]) -> dict[str, Any]:
    archive = record.get("archive") or {}
    return {
        "run_id": record["run_id"],
        "started_at": record["started_at"][:19].replace("T", " "),
        "notebook": record["notebook"]["path"],
        "status": record["status"],
        "failure_kind": record.get("failure_kind") or "",
        "seconds": f"{record['duration_ms'] / 1000:.1f}",
        "archive": archive.get("state", "none"),
    }


@runs_group.command("show")
@click.argument("run_id")
@json_option
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run's record and where its archived objects are (RUN_ID or its first 8+ characters).

    \b
    Example:
      paynb runs show 0193a1b2-7c3d
    """
    from paynb.jobs.ledger import open_ledger

    ledger = open_ledger()
    entry = ledger.find_run(run_id)
    objects = [
        {"name": o.name, "url": f"{o.store_url.rstrip('/')}/{o.key}", "version_id": o.version_id or "",
         "sha256": o.sha256}
        for o in ledger.objects(entry.run_id).values()
    ]  # fmt: skip
    if as_json:
        print_json(
            {"seq": entry.seq, "record_hash": entry.record_hash, "record": entry.record, "objects": objects}
        )
        return
    rec = entry.record
    facts = {
        "run_id": rec["run_id"], "notebook": f"{rec['notebook']['path']} (sha256 {rec['notebook']['sha256'][:12]}…)",
        "status": rec["status"] + (f" ({rec['failure_kind']})" if rec.get("failure_kind") else ""),
        "detail": (rec.get("failure_detail") or {}).get("message", ""),
        "actor": f"{rec['actor']} on {rec['host']}", "started_at": rec["started_at"],
        "duration": f"{rec['duration_ms'] / 1000:.1f} s",
        "code": f"paynb {rec['paynb_version']}, git {rec['git']['commit'] or '-'}"
        + (" (dirty)" if rec["git"]["dirty"] else ""),
        "parameters": ", ".join(f"{k}={v}" for k, v in rec["parameters"].items()) or "(defaults)",
        "dry_run": rec.get("dry_run"), "rows_affected": rec.get("rows_affected"),
        "plan_sha256": rec.get("plan_sha256"), "idempotency_key": rec.get("idempotency_key"),
        "record_hash": entry.record_hash, "previous_record_hash": rec.get("previous_record_hash"),
        "archive": (rec.get("archive") or {}).get("url", "none"),
    }  # fmt: skip
    print_table(pd.DataFrame([{"field": k, "value": "" if v is None else str(v)} for k, v in facts.items()]))
    if objects:
        click.echo("")
        print_table(pd.DataFrame(objects), title="Archived objects")


@click.group("audit")
def audit_group() -> None:
    """Check archived runs against the ledger.

    \b
    Example:
      paynb audit verify --all
    """


@audit_group.command("verify")
@click.argument("run_id", required=False)
@click.option("--all", "check_all", is_flag=True, help="Verify every run in the ledger (and the archive).")
@json_option
def audit_verify(run_id: str | None, check_all: bool, as_json: bool) -> None:
    """Re-read every archived object, recompute hashes, check the ledger chain.

    Each run is ok, missing, tampered or chain_broken; the exit code is 1 if any run is not ok.

    \b
    Example:
      paynb audit verify 0193a1b2
      paynb audit verify --all --json
    """
    from paynb.jobs.audit import verify

    if _no_ledger_yet(as_json):
        if run_id:
            raise click.exceptions.Exit(1)
        return
    results = verify(run_id, all=check_all)
    rows = [r.to_dict() for r in results]
    if as_json:
        print_json(rows)
    else:
        print_table(pd.DataFrame(rows, columns=["run_id", "state", "detail"]))
        bad = sum(1 for r in results if not r.ok)
        click.echo(f"{len(results)} run(s) checked, {bad} with problems")
    if any(not r.ok for r in results):
        raise click.exceptions.Exit(1)


@click.group("archive")
def archive_group() -> None:
    """The run archive and its local spool.

    \b
    Example:
      paynb archive flush
    """


@archive_group.command("flush")
@json_option
def archive_flush(as_json: bool) -> None:
    """Deliver runs that were spooled locally because the store was unreachable.

    \b
    Example:
      paynb archive flush --json
    """
    from paynb.jobs.archive import flush_spool
    from paynb.jobs.ledger import open_ledger
    from paynb.settings import get_settings

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # failures show in the table
    settings = get_settings()
    results = flush_spool(settings, open_ledger(settings))
    rows = [
        {"run_id": r.run_id, "store": r.store_url, "delivered": ", ".join(r.delivered),
         "remaining": ", ".join(r.remaining), "error": r.error or ""}
        for r in results
    ]  # fmt: skip
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("the spool is empty")
    else:
        print_table(pd.DataFrame(rows))
    if any(r.remaining for r in results):
        raise click.exceptions.Exit(1)


commands: list[click.Command] = [run_command, runs_group, audit_group, archive_group]
