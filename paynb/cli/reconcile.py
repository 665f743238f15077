"""CLI: ``paynb reconcile cfs|bcol|disbursements`` — pay-db against CAS, BCOL and FEEDBACK outcomes."""

from __future__ import annotations

from pathlib import Path

import click

from paynb.cli.options import json_option
from paynb.output import format_table, print_json

# docs/reconciliation.md: 3 = a source could not be read in full; the findings are a lower bound
INCOMPLETE_EXIT = 3

_day = click.DateTime(formats=["%Y-%m-%d"])


def _outputs(func):  # type: ignore[no-untyped-def]
    for option in reversed(
        [
            json_option,
            click.option(
                "--csv",
                "csv_out",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Also write the findings as CSV.",
            ),
            click.option(
                "--xlsx",
                "xlsx_out",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Also write an XLSX workbook (by class, findings; money as numbers).",
            ),
            click.option(
                "--chart",
                "chart_out",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Also draw the mismatches by class and age as a PNG (needs paynb[lab]).",
            ),
        ]
    ):
        func = option(func)
    return func


def _emit(report, as_json: bool, csv_out, xlsx_out, chart_out) -> None:  # type: ignore[no-untyped-def]
    from paynb.ops.reconcile import view

    if csv_out:
        view.write_csv(report, csv_out)
    if xlsx_out:
        view.write_xlsx(report, xlsx_out)
    if chart_out:
        view.chart(report, chart_out)
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(view.render_text(report, format_table=format_table))
        for path in (csv_out, xlsx_out, chart_out):
            if path:
                click.echo(f"wrote {path}")
    if not report.complete:
        click.echo("error: a source could not be read in full; this report is INCOMPLETE", err=True)
        raise click.exceptions.Exit(INCOMPLETE_EXIT)


@click.group()
def reconcile() -> None:
    """Compare pay-db with CAS/CFS, BCOL and partner-disbursement outcomes. Read-only.

    \b
    Example:
      paynb reconcile cfs --from 2026-11-01 --to 2026-11-30
    """


@reconcile.command()
@click.option(
    "--from", "date_from", type=_day, required=True, help="First day (reference created), YYYY-MM-DD."
)
@click.option("--to", "date_to", type=_day, required=True, help="Last day, YYYY-MM-DD.")
@click.option(
    "--method",
    "methods",
    multiple=True,
    help="Payment method (repeatable): PAD, ONLINE_BANKING, INTERNAL, EFT. Default: all four.",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "warehouse", "cfs-api"]),
    default="auto",
    show_default=True,
    help="warehouse (PAYNB_DW_URL, set-based) or cfs-api (a sample through the CFS REST API).",
)
@click.option("--sample", type=int, default=2000, show_default=True, help="References asked through cfs-api.")
@_outputs
def cfs(date_from, date_to, methods, source, sample, as_json, csv_out, xlsx_out, chart_out) -> None:
    """pay-db references against CAS transactions and credit memos.

    \b
    Examples:
      paynb reconcile cfs --from 2026-11-01 --to 2026-11-30
      paynb reconcile cfs --from 2026-11-01 --to 2026-11-30 --method PAD --json
      paynb reconcile cfs --from 2026-11-01 --to 2026-11-02 --source cfs-api --sample 500 --xlsx cfs.xlsx
    """
    from paynb.ops.reconcile import reconcile_cfs

    report = reconcile_cfs(
        date_from.date(),
        date_to.date(),
        methods=methods or None,
        source=source,
        sample=sample,
        progress=not as_json,
    )
    _emit(report, as_json, csv_out, xlsx_out, chart_out)


@reconcile.command()
@click.option("--from", "date_from", type=_day, help="First day (reference created); default: all.")
@click.option("--to", "date_to", type=_day, help="Last day; default: all.")
@_outputs
def bcol(date_from, date_to, as_json, csv_out, xlsx_out, chart_out) -> None:
    """DRAWDOWN invoices against colin.bconline_billing_record (charges, refunds by the
    BCOL_REFUND_CONFIRMATION rule, missing keys).

    \b
    Examples:
      paynb reconcile bcol
      paynb reconcile bcol --from 2026-01-01 --to 2026-11-30 --csv bcol.csv
    """
    from paynb.ops.reconcile import reconcile_bcol

    report = reconcile_bcol(
        date_from.date() if date_from else None, date_to.date() if date_to else None, progress=not as_json
    )
    _emit(report, as_json, csv_out, xlsx_out, chart_out)


@reconcile.command()
@click.option("--from", "date_from", type=_day, help="First day (disbursement created); default: all.")
@click.option("--to", "date_to", type=_day, help="Last day; default: all.")
@click.option(
    "--stuck-days",
    type=int,
    default=3,
    show_default=True,
    help="WAITING_FOR_JOB/UPLOADED for longer than this counts as stuck.",
)
@_outputs
def disbursements(date_from, date_to, stuck_days, as_json, csv_out, xlsx_out, chart_out) -> None:
    """Partner disbursements stuck or ERRORED, stop_ejv distribution codes, amounts per partner and month.

    \b
    Examples:
      paynb reconcile disbursements
      paynb reconcile disbursements --from 2026-10-01 --to 2026-10-31 --json
    """
    from paynb.ops.reconcile import reconcile_disbursements

    report = reconcile_disbursements(
        date_from.date() if date_from else None, date_to.date() if date_to else None, stuck_days=stuck_days
    )
    _emit(report, as_json, csv_out, xlsx_out, chart_out)


commands = [reconcile]
