"""CLI: ``paynb pad triage`` — why each stuck PAD invoice is still APPROVED, and what to do."""

from __future__ import annotations

import click

from paynb.cli.exits import Gap, cfs_cause, exit_for_gaps
from paynb.cli.options import (
    account_options,
    auth_account_filter,
    day_count,
    export_report,
    json_option,
    report_options,
)
from paynb.output import format_table, print_json


@click.command("triage")
@click.option(
    "--days",
    default=20,
    show_default=True,
    type=int,
    callback=day_count,
    help="Minimum age in calendar days (UTC).",
)
@account_options
@json_option
@report_options
def triage(days: int, auth_account: str | None, account_id: int | None, as_json: bool) -> None:
    """Classify every PAD invoice APPROVED for more than --days (docs/runbook.md#pad-decision-tree).

    Asks CFS once per distinct CFS invoice, searches the settlement CSVs (ar/ and the legacy payment-sftp
    bucket) for invoices CAS shows as paid, and ends each row in one action. Read-only.

    \b
    Example:
      paynb pad triage --days 20
      paynb pad triage --xlsx triage.xlsx
      paynb pad triage --auth-account 1234 --json | jq '.rows[] | select(.action == "replay_settlement_csv")'
    """
    import sys

    from paynb.ops.pad.triage import drill_down, settlement_refs, triage_stuck_pad

    account = auth_account_filter(auth_account, account_id)
    report = triage_stuck_pad(days, account, progress=sys.stderr.isatty())
    export_report({"invoices": drill_down(report), "by_action": report.summary_by_action()})
    if as_json:
        print_json(report.to_dict())
        exit_for_gaps(triage_gaps(report), total=len(report))
        return
    # the columns that decide what to do, the action text last (it wraps); --wide/--xlsx show the rest
    table = drill_down(report)[
        [
            "invoice_id",
            "account",
            "amount",
            "age_days",
            "cfs_invoice_number",
            "cfs_amount_due",
            "action",
            "action_text",
        ]
    ]
    click.echo(f"PAD invoices APPROVED for more than {days} days (as of {report.now_utc:%Y-%m-%d %H:%M} UTC)")
    click.echo(format_table(table))
    click.echo("")
    click.echo(format_table(report.summary_by_action(), title="By action"))
    total = sum((r.amount for r in report.rows), start=0)
    click.echo(f"\n{len(report)} invoices, total {total}; {report.cfs_calls} CFS invoice(s) asked")
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    refs = settlement_refs(report)
    if refs:
        click.echo("Next: plan the replay of each settlement CSV (one command a line, to copy):")
        for ref in refs:
            click.echo(f"  paynb settlement plan-replay {ref}")
    exit_for_gaps(triage_gaps(report), total=len(report))


def triage_gaps(report) -> list[Gap]:  # type: ignore[no-untyped-def]
    """Rows whose CFS answer is missing (by cause) and settlement files that could not be searched."""
    from collections import Counter

    from paynb.ops.pad.triage import Action

    causes: Counter[str] = Counter()
    for row in report.rows:
        if row.action == Action.UNKNOWN_RETRY:
            cfs_failed = "error_class" in row.evidence  # CFS gave no answer, rather than an odd one
            causes[cfs_cause(row.evidence.get("http_status")) if cfs_failed else "unreadable"] += 1
    gaps = [Gap("CFS", cause, n) for cause, n in causes.items()]
    store = [w.removeprefix("store: ") for w in report.warnings if w.startswith("store: ")]
    if store:
        gaps.append(Gap("the settlement CSVs", "unreadable", len(store), store[0], unit="file(s)"))
    return gaps


commands: list[click.Command] = [triage]
