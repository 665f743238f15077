"""CLI: ``paynb settlement …`` — CAS settlement (payment application) CSV files."""

from __future__ import annotations

import click

from paynb.cli.options import json_option
from paynb.output import format_table, print_json_lines, rows_frame


@click.group()
def settlement() -> None:
    """CAS settlement CSVs (BCR_PAYMENT_APPL_YYYYMMDD.csv) that move PAD/OB invoices to PAID.

    \b
    Example:
      paynb settlement parse BCR_PAYMENT_APPL_20260730.csv
    """


@settlement.command("parse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
def parse_command(file: str, as_json: bool) -> None:
    """Decode a settlement CSV; flag NSF-risk rows and unknown record types or statuses.

    Headers match case-insensitively by exact text; dates are DD-Mon-YY. A malformed row stops with an
    error naming the file, the line and the column.

    \b
    Example:
      paynb settlement parse BCR_PAYMENT_APPL_20260730.csv
      paynb settlement parse BCR_PAYMENT_APPL_20260730.csv --json | jq 'select(.is_nsf_risk)'
    """
    from paynb.canonical import to_jsonable
    from paynb.formats.settlement_csv import parse_settlement_file

    parsed = parse_settlement_file(file)
    if as_json:
        print_json_lines(r.to_dict() for r in parsed.rows)
        return
    rows = []
    for r in parsed.rows:
        flags = [
            "NSF-RISK" if r.is_nsf_risk else "",
            "" if r.known else "UNKNOWN-TYPE",
            "" if r.status_known else "UNKNOWN-STATUS",
            "" if r.target_type_known else "UNKNOWN-TARGET",
        ]
        rows.append(
            {
                "line": str(r.line_number),
                "record": r.record_type,
                "source number": r.source_transaction_number,
                "date": str(to_jsonable(r.application_date)),
                "amount": str(r.application_amount),
                "account": r.customer_account,
                "target": f"{r.target_transaction_type} {r.target_transaction_number}",
                "outstanding": ""
                if r.target_transaction_outstanding_amount is None
                else str(r.target_transaction_outstanding_amount),
                "status": r.target_transaction_status,
                "flags": " ".join(f for f in flags if f),
            }
        )
    click.echo(format_table(rows_frame(rows)))
    nsf = parsed.nsf_risk_rows()
    unknown = parsed.unknown_record_types()
    odd_status = parsed.unknown_statuses()
    click.echo(
        f"\n{len(parsed.rows)} rows (header style: {parsed.header_style}); {len(nsf)} NSF-risk;"
        f" {len(unknown)} unknown record type; {len(odd_status)} unknown status"
    )
    if nsf:
        click.echo(
            "WARNING: replaying NSF-risk rows (Not PAID, PADR, PAYR) can freeze the account and create NSF invoices."
        )


@settlement.command("plan-replay")
@click.argument("file")
@click.option(
    "--write-filtered",
    is_flag=True,
    help="Write the filtered CSV (safe, not-yet-applied rows only) to the bucket under its new ar/ name.",
)
@json_option
def plan_replay_command(file: str, write_filtered: bool, as_json: bool) -> None:
    """Plan re-processing a settlement CSV: guard row, rows that would pay invoices, NSF-risk rows.

    Read-only: it never publishes and never deletes. FILE is a local path or a store key (ar/<file> in the
    current bucket, <legacy bucket>/<file>, or a bare file name). The plan prints a filtered CSV with only
    the safe rows not yet applied, the queue message to publish for it, the guard change, and the plan's
    sha256. --write-filtered also writes that CSV (a new name; nothing is overwritten).

    \b
    Example:
      paynb settlement plan-replay ar/BCR_PAYMENT_APPL_20260730.csv
      paynb settlement plan-replay ar/BCR_PAYMENT_APPL_20260730.csv --write-filtered
      paynb settlement plan-replay BCR_PAYMENT_APPL_20230605.csv --json | jq .plan.body.counts
    """
    from paynb.ops.settlements import describe_plan, plan_replay
    from paynb.output import print_json

    plan = plan_replay(file, write_filtered=write_filtered)
    written = bool(write_filtered and plan.body["filtered_csv"])
    if as_json:
        print_json({"sha256": plan.sha256, "written": written, "plan": plan.to_dict()})
        return
    click.echo(describe_plan(plan, written=written))


commands: list[click.Command] = [settlement]
