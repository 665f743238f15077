"""CLI: ``paynb ejv …`` — EJV (CGI journal voucher) files and their reconciliation."""

from __future__ import annotations

from typing import Any

import click

from paynb.cli.options import json_option
from paynb.output import format_table, print_json_lines, rows_frame


@click.group()
def ejv() -> None:
    """EJV: CGI INBOX files sent to CAS and the FEEDBACK files CAS returns.

    \b
    Example:
      paynb ejv parse-feedback FEEDBACK.F3505.20260731190100 --json
    """


@ejv.command("parse-feedback")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--allow-truncated", is_flag=True, help="Accept a last batch without its BT trailer (a cut-short file)."
)
@json_option
def parse_feedback_command(file: str, allow_truncated: bool, as_json: bool) -> None:
    """Decode a FEEDBACK file: batch, journal, flow-through ids, C/D, date, amount, return code per line.

    Positions are those sbc-pay's pay-queue reads (pay-domain.md §3.4). A malformed line stops with an
    error naming the file, the line and the field.

    \b
    Example:
      paynb ejv parse-feedback FEEDBACK.F3505.20260731190100
      paynb ejv parse-feedback FEEDBACK.F3505.20260731190100 --json | jq 'select(.is_success == false)'
    """
    from paynb.formats.feedback import parse_feedback_file

    parsed = parse_feedback_file(file, require_trailer=not allow_truncated)
    if as_json:
        print_json_lines(r.to_dict() for r in parsed.records)
        return
    rows = [
        {
            "line": r.line_number,
            "type": f"{r.batch_type}{r.record_type}",
            "batch": r.batch_number,
            "journal": r.journal_name,
            "flowthrough": r.flowthrough or r.ap_reference,
            "invoice": r.invoice_id,
            "c/d": r.debit_credit,
            "effective": r.effective_date,
            "amount": r.amount,
            "rc": r.return_code,
            "message": r.return_message,
        }
        for r in parsed.records
    ]
    click.echo(format_table(_text_frame(rows)))
    errors = parsed.errors()
    batches = ", ".join(str(n) for n in parsed.batch_numbers) or "none"
    click.echo(
        f"\n{len(parsed.records)} records; batch(es) {batches}; file type (guess) {parsed.file_type or 'unknown'};"
        f" {len(parsed.invoice_ids())} invoice(s); {len(errors)} record(s) with a return code other than 0000"
    )
    if not parsed.complete:
        click.echo("WARNING: the last batch has no BT trailer; sbc-pay ignores such a batch.")
    if errors:
        click.echo(
            "Next: a failed payment JD line cancels the invoice reference and sets stop_ejv on the GL."
        )


@ejv.command("parse-inbox")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
def parse_inbox_command(file: str, as_json: bool) -> None:
    """Decode an INBOX file (GS-separated): batch, journals, detail lines with date, GL, amount, flow-through.

    \b
    Example:
      paynb ejv parse-inbox INBOX.F3505.20260730190100
      paynb ejv parse-inbox INBOX.F3505.20260730190100 --json
    """
    from paynb.formats.inbox import parse_inbox_file

    parsed = parse_inbox_file(file)
    if as_json:
        print_json_lines(r.to_dict() for r in parsed.records)
        return
    rows = [
        {
            "line": r.line_number,
            "type": f"{r.batch_type}{r.record_type}",
            "batch": r.batch_number,
            "journal": r.journal_name,
            "jd#": r.journal_line_number,
            "effective": r.effective_date,
            "gl": r.gl_string,
            "amount": r.amount,
            "c/d": r.debit_credit,
            "flowthrough": r.flowthrough or r.ap_reference,
            "invoice": r.invoice_id,
        }
        for r in parsed.records
    ]
    click.echo(format_table(_text_frame(rows)))
    dates = ", ".join(sorted(f"{d:%Y-%m-%d}" for d in parsed.effective_dates())) or "none"
    click.echo(
        f"\n{len(parsed.records)} records; feeder {parsed.feeder}; batch(es)"
        f" {', '.join(str(n) for n in parsed.batch_numbers)}; effective date(s) {dates};"
        f" {len(parsed.invoice_ids())} invoice(s)"
    )
    for problem in parsed.verify_totals():
        click.echo(f"WARNING: {problem}")


def _text_frame(rows: list[dict[str, Any]]) -> Any:
    """Cells as display strings, so pandas never turns optional ints into floats."""
    from paynb.canonical import to_jsonable

    return rows_frame([{k: "" if v is None else str(to_jsonable(v)) for k, v in row.items()} for row in rows])


commands: list[click.Command] = [ejv]
