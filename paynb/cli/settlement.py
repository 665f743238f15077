"""CLI: ``paynb settlement …`` — CAS settlement (payment application) CSV files."""

from __future__ import annotations

import click

from paynb.cli.options import export_report, fix_exit_codes, json_option, report_options
from paynb.output import format_table, print_json, rows_frame


@click.group()
def settlement() -> None:
    """CAS settlement CSVs (BCR_PAYMENT_APPL_YYYYMMDD.csv) that move PAD/OB invoices to PAID.

    \b
    Example:
      paynb settlement parse BCR_PAYMENT_APPL_20260730.csv
    """


#: what the header of a parsed settlement CSV looked like, in words
HEADER_TEXT = {
    "test": "columns spelled as in sbc-pay's test files",
    "parser": "columns spelled as sbc-pay's parser names them",
    "other": "column spelling differs from sbc-pay's, matched case-insensitively",
}


@settlement.command("parse")
@click.argument("file")
@json_option
@report_options
def parse_command(file: str, as_json: bool) -> None:
    """Decode a settlement CSV; flag NSF-risk rows and unknown record types or statuses.

    FILE is a local path or a store key: ar/<file> in the current bucket (as `paynb pad triage` prints it),
    <legacy bucket>/<file>, or a bare file name. Headers match case-insensitively by exact text; dates are
    DD-Mon-YY. A malformed row stops with an error naming the file, the line and the column.

    \b
    Example:
      paynb settlement parse BCR_PAYMENT_APPL_20260730.csv
      paynb settlement parse ar/BCR_PAYMENT_APPL_20260730.csv --xlsx settlement.xlsx
      paynb settlement parse ar/BCR_PAYMENT_APPL_20260730.csv --json | jq '.rows[] | select(.is_nsf_risk)'
    """
    from paynb.canonical import to_jsonable
    from paynb.ops.settlements import load_settlement_file

    parsed = load_settlement_file(file)
    records = [r.to_dict() for r in parsed.rows]
    export_report({"rows": rows_frame(records)})
    if as_json:
        print_json(
            {
                "file": parsed.file,
                "header_style": parsed.header_style,
                "nsf_risk_rows": len(parsed.nsf_risk_rows()),
                "rows": records,
            }
        )
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
        f"\n{len(parsed.rows)} rows (header: {HEADER_TEXT.get(parsed.header_style, parsed.header_style)});"
        f" {len(nsf)} NSF-risk;"
        f" {len(unknown)} unknown record type; {len(odd_status)} unknown status"
    )
    if nsf:
        click.echo(
            "WARNING: replaying NSF-risk rows (Not PAID, PADR, PAYR) can freeze the account and create NSF invoices."
        )


def _print_plan(plan, out: str | None, as_json: bool, *, written: bool = False) -> None:
    from paynb.ops.settlements import describe_plan
    from paynb.output import print_json

    if out:
        plan.write(out)
    if as_json:
        print_json({"sha256": plan.sha256, "written": written, "plan": plan.to_dict()})
        return
    click.echo(describe_plan(plan, written=written))
    if plan.body["filtered_csv"] is not None and not written:
        where = out or "plan.json"
        click.echo(f"Next: paynb settlement replay apply --plan {where} --confirm {plan.sha256} --ticket <T>")


def _apply(plan, confirm: str, ticket: str, reason: str, as_json: bool) -> None:
    from paynb.ops.settlements import apply_replay
    from paynb.output import print_json

    with fix_exit_codes():
        result = apply_replay(plan, confirm, ticket=ticket, reason=reason)
    detail = result.outcome.detail
    if as_json:
        print_json(
            {
                "apply_id": result.apply_id,
                "plan_sha256": result.plan_sha256,
                "status": result.outcome.status,
                "rows_affected": result.outcome.rows_affected,
                "written": detail["written"],
                "key": detail["key"],
                "queue_message": detail["queue_message"],
                "gcloud_command": detail["gcloud_command"],
            }
        )
        return
    import json

    state = "written" if detail["written"] else "already there (same sha256)"
    click.echo(f"apply {result.apply_id}: {result.outcome.status}")
    click.echo(f"filtered CSV {detail['key']}: {state}")
    click.echo(f"cas_settlements rows changed: {result.outcome.rows_affected}")
    click.echo("Now publish this queue message (paynb does not publish):")
    click.echo(f"  {json.dumps(detail['queue_message'], sort_keys=True)}")
    click.echo(f"with:\n  {detail['gcloud_command']}")


@settlement.group("replay")
def replay_group() -> None:
    """Replay the safe, not-yet-applied rows of a settlement CSV (plan, then apply with its confirm).

    \b
    Example:
      paynb settlement replay plan ar/BCR_PAYMENT_APPL_20260730.csv --out plan.json
      paynb settlement replay apply --plan plan.json --confirm <sha256 printed by plan> --ticket OPS-7
    """


@replay_group.command("plan")
@click.argument("file")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the plan JSON to this file.")
@json_option
def replay_plan_command(file: str, out: str | None, as_json: bool) -> None:
    """Plan re-processing a settlement CSV: guard row, rows that would pay invoices, NSF-risk rows. Read-only.

    FILE is a local path or a store key (ar/<file> in the current bucket, <legacy bucket>/<file>, or a bare
    file name). The plan shows a filtered CSV with only the safe rows not yet applied, its new ar/ name, the
    guard change for the original file, the queue message to publish, and the plan's sha256.

    \b
    Example:
      paynb settlement replay plan ar/BCR_PAYMENT_APPL_20260730.csv --out plan.json
      paynb settlement replay plan BCR_PAYMENT_APPL_20230605.csv --json | jq .plan.body.counts
    """
    from paynb.ops.settlements import plan_replay

    _print_plan(plan_replay(file), out, as_json)


@replay_group.command("apply")
@click.option("--plan", "plan_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--confirm", required=True, help="The sha256 printed by `paynb settlement replay plan`.")
@click.option("--ticket", default="", help="The ticket this replay answers (kept in the ledger).")
@click.option("--reason", default="", help="Why (kept in the ledger).")
@json_option
def replay_apply_command(plan_path: str, confirm: str, ticket: str, reason: str, as_json: bool) -> None:
    """Write the filtered CSV of a reviewed plan under its new ar/ name (never overwriting), make the guard
    change for the original file, and print the queue message and gcloud command to publish.

    Re-plans first and refuses if pay-db or the file changed. Recorded in the ledger (`paynb runs list`).
    Exit codes: 0 applied, 2 bad input, 7 refused (nothing written), 8 failed after a commit (the message
    says what was committed), 1 anything else.

    \b
    Example:
      paynb settlement replay apply --plan plan.json --confirm 3f2a… --ticket OPS-7
    """
    from paynb.plan import Plan

    _apply(Plan.read(plan_path), confirm, ticket, reason, as_json)


@settlement.command("plan-replay")
@click.argument("file")
@click.option(
    "--write-filtered",
    is_flag=True,
    help="Apply: write the filtered CSV and make the guard change. Needs --confirm <sha256 of this plan>.",
)
@click.option("--confirm", default=None, help="With --write-filtered: the plan sha256 printed before.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the plan JSON to this file.")
@json_option
def plan_replay_command(
    file: str, write_filtered: bool, confirm: str | None, out: str | None, as_json: bool
) -> None:
    """Older spelling of `paynb settlement replay plan` (and, with --write-filtered --confirm, of apply).

    --write-filtered without --confirm writes nothing and fails: the filtered CSV is written only by a
    confirmed apply.

    \b
    Example:
      paynb settlement plan-replay ar/BCR_PAYMENT_APPL_20260730.csv
      paynb settlement plan-replay ar/BCR_PAYMENT_APPL_20260730.csv --write-filtered --confirm 3f2a…
    """
    from paynb.errors import ConfirmMismatch
    from paynb.ops.settlements import plan_replay

    plan = plan_replay(file)
    if not write_filtered:
        _print_plan(plan, out, as_json)
        return
    if not confirm:
        raise ConfirmMismatch(
            f"--write-filtered needs --confirm {plan.sha256} (after reviewing this plan); nothing was written"
        )
    _apply(plan, confirm, "", "", as_json)


commands: list[click.Command] = [settlement]
