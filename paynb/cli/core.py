"""CLI: ``paynb doctor``, ``paynb stale``, ``paynb demo``."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click

from paynb.cli.options import (
    account_options,
    auth_account_filter,
    day_count,
    export_report,
    json_option,
    report_options,
)
from paynb.output import format_table, print_json, print_table, rows_frame


@click.command()
@json_option
def doctor(as_json: bool) -> None:
    """Check every configured dependency (pay-db, CFS, store). Prints no secrets; exits 1 on a failure.

    \b
    Example:
      source .sandbox/sandbox.env && paynb doctor
      eval "$(paynb sandbox env .sandbox)" && paynb doctor
    """
    from paynb.ops.doctor import run_checks

    checks = run_checks()
    rows = [{"check": c.name, "status": c.status, "detail": c.detail} for c in checks]
    if as_json:
        print_json(rows)
    else:
        print_table(rows_frame(rows))
        if any(c.name == "database" and c.status == "fail" and "no database" in c.detail for c in checks):
            click.echo("\n" + _settings_hint(Path(".sandbox")))
    if not all(c.ok for c in checks):
        raise click.exceptions.Exit(1)


def _settings_hint(box: Path) -> str:
    """What to do when no setting reached this process. A sandbox.env written before its lines carried
    `export` sets shell variables only, so sourcing it again never helps: say so and give the way that works."""
    env_file = box / "sandbox.env"
    if not env_file.is_file():
        return (
            "No settings reached paynb. Start the sandbox with `paynb sandbox up --dir .sandbox` and then "
            "`source .sandbox/sandbox.env`, or set PAYNB_DATABASE_URL (see README, Configuration)."
        )
    text = env_file.read_text(errors="replace")
    exported = any(line.startswith("export ") for line in text.splitlines())
    why = f"{env_file} exists but its settings are not in this process's environment" + (
        "" if exported else " (the file has no `export` lines: it was written by an older paynb)"
    )
    return (
        f"{why}. Run, in this same shell:\n"
        f'  eval "$(paynb sandbox env {box})"\n'
        f"or point paynb at the file: export PAYNB_ENV_FILE={env_file}"
    )


@click.command()
@click.option(
    "--days",
    default=20,
    show_default=True,
    type=int,
    callback=day_count,
    help="Minimum age in calendar days (UTC).",
)
@click.option("--method", default=None, help="Only this payment method (PAD, EJV, EFT, INTERNAL …).")
@account_options
@click.option("--as-of", "as_of", default=None, type=click.DateTime(), help="Compute ages at this UTC time.")
@click.option("--list", "as_list", is_flag=True, help="Also list the invoices (id, accounts, age, total).")
@json_option
@report_options
def stale(
    days: int,
    method: str | None,
    auth_account: str | None,
    account_id: int | None,
    as_of: datetime | None,
    as_list: bool,
    as_json: bool,
) -> None:
    """Invoices APPROVED for longer than --days calendar days, by payment method and age bucket.

    --csv writes the invoice list (every stale invoice); --xlsx writes the invoices, the age buckets and
    the totals by method, one sheet each.

    \b
    Example:
      paynb stale --days 20
      paynb stale --method PAD --list --auth-account 1234
      paynb stale --days 30 --csv stale.csv --xlsx stale.xlsx
      paynb stale --method PAD --json
    """
    from paynb.ops.stale import find_stale_invoices

    account = auth_account_filter(auth_account, account_id)
    report = find_stale_invoices(days, method=method, account=account, now=as_of)
    export_report(
        {"invoices": report.invoice_list(), "by_bucket": report.to_frame(), "by_method": report.by_method()}
    )
    if as_json:
        print_json(report.to_dict(include_invoices=as_list))
        return
    click.echo(f"APPROVED invoices older than {days} days (as of {report.now_utc:%Y-%m-%d %H:%M} UTC)")
    if as_list:
        click.echo(format_table(report.invoice_list(), title="Invoices"))
        click.echo("")
    click.echo(format_table(report.to_frame()))
    click.echo("")
    click.echo(format_table(report.by_method(), title="By payment method"))
    click.echo(f"\n{report.total_count} invoices, total {report.total_amount}")
    if report.total_count:
        if not as_list:
            click.echo("The invoices: add --list (or --csv FILE).")
        click.echo(
            "Next: `paynb pad triage` explains each stuck PAD invoice; `paynb ejv health` the EJV ones."
        )


@click.command()
@click.option(
    "--dir", "directory", default=".sandbox", show_default=True, type=click.Path(), help="Sandbox folder."
)
@click.option("--scale", default="small", show_default=True, help="small | medium | large")
def demo(directory: str, scale: str) -> None:
    """Run the main job on the embedded sandbox: sandbox up, doctor, then the stale-invoice report job.

    \b
    Example:
      paynb demo --dir .sandbox
    """
    from paynb.ops.doctor import run_checks
    from paynb.sandbox.manager import Sandbox

    box = Sandbox(directory)
    env = box.up(scale=scale, echo=lambda m: click.echo(m, err=True))
    os.environ.update(env)
    click.echo(f"sandbox ready in {box.root} (settings in {box.env_path})\n")
    checks = run_checks()
    print_table(
        rows_frame([{"check": c.name, "status": c.status, "detail": c.detail} for c in checks]),
        title="doctor",
    )
    if not all(c.ok for c in checks):
        raise click.exceptions.Exit(1)
    click.echo("")
    _run_stale_job(env)


def _run_stale_job(env: dict[str, str]) -> None:
    from paynb.bundled import packaged_notebook
    from paynb.jobs import run_notebook

    notebook = packaged_notebook("reports/stale_invoices.ipynb")
    click.echo("running the shipped notebooks/reports/stale_invoices.ipynb as an audited job …")
    result = run_notebook(notebook, {"days": "20"}, archive_url=env.get("PAYNB_ARCHIVE_URL"))
    summary = result.record.get("summary")
    if isinstance(summary, dict) and summary.get("columns"):
        import pandas as pd

        frame = pd.DataFrame(summary["rows"], columns=summary["columns"])
        click.echo(format_table(frame, title="Stale invoices by payment method (from the run record)"))
    click.echo(f"run id:   {result.run_id}")
    click.echo(f"status:   {result.status}" + (f" ({result.failure_kind})" if result.failure_kind else ""))
    click.echo(f"archive:  {result.archive_url} [{result.archive_state}]")
    if not result.ok:
        click.echo(result.message, err=True)
        raise click.exceptions.Exit(1)
    from paynb.jobs import verify

    checks = verify(result.run_id)
    click.echo(
        f"audit:    {', '.join(f'{c.run_id[:8]} {c.state}' for c in checks)} (paynb audit verify {result.run_id})"
    )
    click.echo(
        "\nThe sandbox keeps running: `source DIR/sandbox.env` to use it, `paynb sandbox down --dir DIR` to stop it."
    )


TEMPLATE_KINDS = ("report", "datafix")


@click.command(name="new")
@click.argument("kind", type=click.Choice(TEMPLATE_KINDS))
@click.argument("name")
@click.option(
    "--area", default=None, help="Folder under notebooks/ (default: reports for report, datafix for datafix)."
)
def new(kind: str, name: str, area: str | None) -> None:
    """Start a notebook from a template (report: parameters → query → charts → summary;
    datafix: parameters → preflight → plan → review → apply → verify). The notebook is written to
    notebooks/AREA/NAME.ipynb under the current folder (your project), never outside it.

    \b
    Example:
      paynb new report refunds_by_partner
      paynb new datafix void_routing_slip --area datafix
    """
    import re
    import shutil

    from paynb.bundled import template
    from paynb.errors import InputError

    if not re.fullmatch(r"[a-z][a-z0-9_]{1,60}", name):
        raise InputError("use lower_snake_case, 2-61 characters", field="NAME")
    area = area if area is not None else ("reports" if kind == "report" else "datafix")
    # a folder under notebooks/, nothing else: no absolute path, no `..`, no odd characters
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,60}(/[a-z][a-z0-9_]{0,60}){0,3}", area):
        outside = area.startswith("/") or ".." in area.split("/")
        raise InputError(
            f"{area!r} is not a folder under notebooks/"
            + (f" (it points outside the current project {Path.cwd()})" if outside else ""),
            field="--area",
            hint="give a relative lower_snake_case folder such as reports, datafix or triage/pad",
        )
    project = Path.cwd().resolve()
    notebooks = project / "notebooks"
    target = (notebooks / area / f"{name}.ipynb").resolve()
    if not target.is_relative_to(notebooks.resolve()):  # e.g. a symlink inside notebooks/
        raise InputError(
            f"notebooks/{area} resolves outside notebooks/ of the current project {project}",
            field="--area",
            hint="give a folder name under notebooks/, e.g. --area reports",
        )
    if target.exists():
        raise InputError("already exists; pick another name", file=str(target.relative_to(project)))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template(kind), target)
    click.echo(f"created {target.relative_to(project)} from the {kind} template")


commands = [doctor, stale, demo, new]
