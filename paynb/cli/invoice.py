"""CLI: ``paynb invoice explain`` — everything about an invoice and what to do next."""

from __future__ import annotations

from pathlib import Path

import click

from paynb.cli import exits
from paynb.cli.options import export_report, json_option, report_options
from paynb.output import format_table, print_json

# docs/exit-codes.md: 2 = some ids unknown (the known ones are still explained); 9 = a source could not
# be read, so the explanation may be incomplete (the code every report with unread rows exits with)
UNKNOWN_IDS_EXIT = exits.UNKNOWN_IDS
INCOMPLETE_EXIT = exits.INCOMPLETE


@click.group()
def invoice() -> None:
    """Questions about single invoices.

    \b
    Example:
      paynb invoice explain 12345 REG00012345
    """


@invoice.command()
@click.argument("ids", nargs=-1)
@click.option(
    "--from-file", type=click.File("r"), help="Read ids from a file (one per line, or comma-separated)."
)
@click.option(
    "--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML page."
)
@click.option("--no-cfs", is_flag=True, help="Do not call CFS (pay-db and files only).")
@click.option("--no-files", is_flag=True, help="Do not search FEEDBACK/INBOX files and settlement CSVs.")
@json_option
@report_options
def explain(ids, from_file, html_out, no_cfs, no_files, as_json) -> None:
    """pay-db, CFS, FEEDBACK/INBOX and settlement CSVs about invoices; a timeline; the diagnosis and the
    next command. Accepts pay-db ids, REG numbers and CFS numbers. Read-only.

    \b
    Examples:
      paynb invoice explain 12345
      paynb invoice explain REG00012345 --json
      paynb invoice explain --from-file ids.txt --html explain.html
      paynb invoice explain 12345 12346 --xlsx explain.xlsx
    """
    from paynb.errors import InputError
    from paynb.files import write_private
    from paynb.ops.invoice import explain_invoices
    from paynb.ops.invoice.view import render_html, render_text

    given = list(ids) + ([line for line in from_file.read().splitlines()] if from_file else [])
    if not given:
        raise InputError("give at least one invoice id, REG number or CFS number", field="ID")
    report = explain_invoices(given, use_cfs=not no_cfs, use_files=not no_files)
    export_report(_export_tables(report))
    if html_out is not None:
        try:
            write_private(html_out, render_html(report))
        except OSError as err:
            raise InputError(f"cannot write the page ({err.strerror})", file=str(html_out)) from None
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(render_text(report, format_table=format_table))
        if html_out is not None:
            click.echo(f"wrote {html_out}")
    if report.unknown:
        click.echo(f"error: not found in pay-db: {', '.join(report.unknown)}", err=True)
        raise click.exceptions.Exit(UNKNOWN_IDS_EXIT)
    if not report.complete:
        click.echo("error: some sources could not be read; the explanation may be incomplete", err=True)
        raise click.exceptions.Exit(INCOMPLETE_EXIT)


def _export_tables(report) -> dict:
    """A diagnosis sheet (one row per situation), then each invoice's timeline and sections."""
    import pandas as pd

    from paynb.ops.invoice.view import section_frames, timeline_frame

    diagnosis = pd.DataFrame(
        [
            {
                "invoice_id": e.invoice_id,
                "severity": s.severity,
                "title": s.title,
                "detail": s.detail,
                "next": s.next_command,
            }
            for e in report.explanations
            for s in e.situations
        ],
        columns=["invoice_id", "severity", "title", "detail", "next"],
    )
    tables = {"diagnosis": diagnosis}
    for e in report.explanations:
        tables[f"{e.invoice_id} timeline"] = timeline_frame(e)
        for name, frame in section_frames(e).items():
            tables[f"{e.invoice_id} {name}"] = frame
    return tables


commands = [invoice]
