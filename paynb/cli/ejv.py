"""CLI: ``paynb ejv …`` — EJV (CGI journal voucher) files and their reconciliation."""

from __future__ import annotations

from typing import Any

import click

from paynb.cli.exits import Gap, exit_for_gaps
from paynb.cli.options import (
    MAX_DAYS,
    export_report,
    fix_exit_codes,
    json_option,
    read_file_or_key,
    report_options,
    writable_file,
)
from paynb.output import format_table, print_json, rows_frame


@click.group()
def ejv() -> None:
    """EJV: CGI INBOX files sent to CAS and the FEEDBACK files CAS returns.

    \b
    Example:
      paynb ejv parse-feedback FEEDBACK.F3505.20260731190100 --json
    """


EJV_FOLDERS = ("cgi_feedback", "cgi_processed", "cgi_processing")


def _read_ejv(file: str) -> tuple[bytes, str]:
    from paynb.settings import get_settings

    return read_file_or_key(file, legacy_bucket=get_settings().legacy_ejv_bucket, folders=EJV_FOLDERS)


@ejv.command("parse-feedback")
@click.argument("file")
@click.option(
    "--allow-truncated", is_flag=True, help="Accept a last batch without its BT trailer (a cut-short file)."
)
@json_option
@report_options
def parse_feedback_command(file: str, allow_truncated: bool, as_json: bool) -> None:
    """Decode a FEEDBACK file: batch, journal, flow-through ids, C/D, date, amount, return code per line.

    FILE is a local file, a bucket URL, a key in the pay bucket (cgi_feedback/FEEDBACK…) or a bare name found
    in cgi_feedback/, cgi_processed/, cgi_processing/ or the legacy cgi-ejv bucket. Positions are those
    sbc-pay's pay-queue reads (docs/files.md#feedback). A malformed line stops with an error naming the file,
    the line and the field.

    \b
    Example:
      paynb ejv parse-feedback FEEDBACK.F3505.20260731190100
      paynb ejv parse-feedback cgi_feedback/FEEDBACK.F3505.20260731190100 --csv feedback.csv
      paynb ejv parse-feedback FEEDBACK.F3505.20260731190100 --json | jq '.records[] | select(.is_success == false)'
    """
    from paynb.formats.feedback import parse_feedback

    data, name = _read_ejv(file)
    parsed = parse_feedback(data, file=name, require_trailer=not allow_truncated)
    records = [r.to_dict() for r in parsed.records]
    export_report({"records": rows_frame(records)})
    if as_json:
        print_json(
            {
                "file": name,
                "complete": parsed.complete,
                "batch_numbers": list(parsed.batch_numbers),
                "errors": len(parsed.errors()),
                "records": records,
            }
        )
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
@click.argument("file")
@json_option
@report_options
def parse_inbox_command(file: str, as_json: bool) -> None:
    """Decode an INBOX file (GS-separated): batch, journals, detail lines with date, GL, amount, flow-through.

    FILE is a local file, an s3:// URL, a key in the bucket (cgi_processed/INBOX…) or a bare name found in
    cgi_feedback/, cgi_processed/, cgi_processing/ or the legacy cgi-ejv bucket.

    \b
    Example:
      paynb ejv parse-inbox INBOX.F3505.20260730190100
      paynb ejv parse-inbox cgi_processed/INBOX.F3505.20260730190100 --json
    """
    from paynb.formats.inbox import parse_inbox

    data, name = _read_ejv(file)
    parsed = parse_inbox(data, file=name)
    records = [r.to_dict() for r in parsed.records]
    export_report({"records": rows_frame(records)})
    if as_json:
        print_json(
            {
                "file": name,
                "feeder": parsed.feeder,
                "batch_numbers": list(parsed.batch_numbers),
                "problems": list(parsed.verify_totals()),
                "records": records,
            }
        )
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


def _old_days_flag(ctx: click.Context, param: click.Parameter, value: object) -> object:
    if value is not None:
        raise click.UsageError(
            "ejv health counts business days (Monday to Friday, Pacific, no BC holidays): use --business-days N",
            ctx=ctx,
        )
    return value


@ejv.command("health")
@click.option(
    "--business-days",
    "days",
    default=3,
    show_default=True,
    type=click.IntRange(0, MAX_DAYS),
    help="Business days (Pacific) FEEDBACK or a job may take before it counts as stuck.",
)
@click.option("--days", "old_days", hidden=True, expose_value=False, callback=_old_days_flag)
@click.option("--include-resolved", is_flag=True, help="Also list ERRORED rows a later line has since fixed.")
@click.option("--all", "show_all", is_flag=True, help="One block per finding instead of grouping alike ones.")
@json_option
@report_options
def health_command(days: int, include_resolved: bool, show_all: bool, as_json: bool) -> None:
    """EJV health: files without FEEDBACK, ERRORED files/journals/lines, stop_ejv GLs, stale APPROVED EJV
    invoices and stuck partner disbursements, each with the action it needs. Read-only.

    Findings that need the same action are printed once with their count and ids (--all: one block each;
    --json, --csv and --xlsx always hold every finding).

    \b
    Example:
      paynb ejv health
      paynb ejv health --business-days 5 --xlsx ejv-health.xlsx
      paynb ejv health --json | jq '.findings[] | select(.kind == "ejv_file_no_feedback")'
    """
    from paynb.ops.ejv.health import ejv_health

    report = ejv_health(days, include_resolved=include_resolved)
    export_report({"findings": report.to_frame(), "summary": report.summary_frame()})
    if as_json:
        print_json(report.to_dict())
        return
    title = f"EJV health as of {report.as_of} (--business-days {days})"
    click.echo(format_table(report.summary_frame(), title=title))
    if report.ok:
        click.echo("\nNothing is stuck.")
        return
    if show_all:
        for f in report.findings:
            age = f" [{f.age_business_days} business day(s)]" if f.age_business_days is not None else ""
            click.echo(f"\n{f.kind} {f.table}.id={f.id}{age}\n  {f.summary}\n  -> {f.action}")
        return
    for group in report.groups():
        click.echo("")
        click.echo(group.text())


@ejv.command("search")
@click.argument("invoice_ids", nargs=-1, required=True)
@click.option("--reindex", is_flag=True, help="Forget the local index and read every file again.")
@click.option(
    "--workers", default=8, show_default=True, type=click.IntRange(min=1), help="Parallel downloads."
)
@json_option
@report_options
def search_command(invoice_ids: tuple[str, ...], reindex: bool, workers: int, as_json: bool) -> None:
    """Find every FEEDBACK (and INBOX) record naming these invoices in cgi_feedback/, cgi_processing/,
    cgi_processed/ and the legacy cgi-ejv bucket: file, line, batch, journal, C/D, amount, return code.

    Ids may be invoice ids or CFS numbers (REG01234567), space or comma separated. Files already read are
    answered from a local index (PAYNB_DATA_DIR/ejv-index.sqlite); only new or changed files are read.

    \b
    Example:
      paynb ejv search 10011001 10021002
      paynb ejv search REG10011001 --json | jq '.mentions[] | select(.is_success == false)'
    """
    from paynb.ops.ejv.search import search_feedback

    result = search_feedback(invoice_ids, workers=workers, reindex=reindex, progress=not as_json)
    export_report({"records": result.to_frame(), "by_invoice": result.by_invoice()})
    if as_json:
        print_json(result.to_dict())
        exit_for_gaps(search_gaps(result))
        return
    click.echo(format_table(result.by_invoice(), title="By invoice"))
    columns = [
        "invoice_id",
        "kind",
        "location",
        "name",
        "line",
        "batch_number",
        "journal_name",
        "record_type",
        "debit_credit",
        "amount",
        "effective_date",
        "return_code",
        "return_message",
    ]
    frame = result.to_frame()
    click.echo("")
    click.echo(format_table(frame[columns] if not frame.empty else frame, title="Records"))
    s = result.summary()
    click.echo(
        f"\n{s['files_listed']} file(s) listed, {s['files_scanned']} read, {s['files_from_index']} from the index"
        f" ({result.elapsed_s:.1f} s)"
    )
    for problem in result.problems:
        click.echo(f"UNPARSEABLE {problem.file}: {problem.error}")
    for warning in result.warnings:
        click.echo(f"WARNING: {warning}")
    exit_for_gaps(search_gaps(result))


def search_gaps(result: Any) -> list[Gap]:
    """Files that could not be downloaded or parsed: their records are missing from the answer."""
    unread = [w for w in result.warnings if w.startswith("could not read ")]
    gaps = [Gap("the EJV files", "unreadable", len(unread), unread[0], unit="file(s)")] if unread else []
    if result.problems:
        first = result.problems[0]
        gaps.append(
            Gap(
                "the EJV files",
                "unreadable",
                len(result.problems),
                f"{first.file}: {first.error}",
                unit="file(s)",
            )
        )
    return gaps


@ejv.group("redate")
def redate_group() -> None:
    """Re-send INBOX files whose FEEDBACK never came, re-dated into the open period (plan, then apply).

    \b
    Example:
      paynb ejv redate plan cgi_processed/INBOX.F3505.20261102200107 --out plan.json
      paynb ejv redate apply --plan plan.json --confirm <sha256 printed by plan>
    """


@redate_group.command("plan")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--date",
    "new_date",
    default=None,
    help="New effective date YYYY-MM-DD (default: today or next business day).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    callback=writable_file,
    help="Write the plan JSON to this file (0600).",
)
@click.option(
    "--resend-anyway",
    is_flag=True,
    help="Send although a copy of the batch is already in cgi_processing/ or cgi_processed/ (needs --reason).",
)
@click.option("--reason", default="", help="Why (ticket and what CAS said); kept in the plan and the ledger.")
@json_option
def redate_plan_command(
    files: tuple[str, ...],
    new_date: str | None,
    out: str | None,
    resend_anyway: bool,
    reason: str,
    as_json: bool,
) -> None:
    """Plan re-dated copies of INBOX files (keys, bare names or gs:// / s3:// URLs). Read-only.

    Checks that no FEEDBACK exists for their batches, that no other copy of a batch is already in
    cgi_processing/ or cgi_processed/ (refused unless --resend-anyway --reason), and that the new names are
    free, and shows the field-level diff (only JD effective dates change). The default date is today (UTC)
    or the next business day (weekends and BC statutory holidays).

    \b
    Example:
      paynb ejv redate plan INBOX.F3505.20261102200107 --date 2026-11-27 --out plan.json
      paynb ejv redate plan INBOX.F3505.20261102200107 --resend-anyway --reason "OPS-12: CAS lost it"
    """
    from paynb.ops.ejv.redate import plan_redate

    plan = plan_redate(
        files, new_date=new_date, resend_anyway=resend_anyway, reason=reason, progress=not as_json
    )
    if out:
        plan.write(out)
    if as_json:
        print_json({**plan.to_dict(), "sha256": plan.sha256})
        return
    click.echo(plan.summary)
    for f in plan.body["files"]:
        changes = f["diff"]
        click.echo(
            f"\n{f['source']['url']}\n  -> {f['target']['url']} (+ {f['trigger']['name']})"
            f"\n  batch {', '.join(map(str, f['batch_numbers']))}; {len(f['invoice_ids'])} invoice(s);"
            f" effective {', '.join(f['old_effective_dates'])} -> {f['new_effective_date']};"
            f" {len(changes)} field change(s), all effective_date"
        )
        for note in f["name_notes"]:
            click.echo(f"  note: {note}")
        rows = [{"line": c["line"], "field": c["field"], "old": c["old"], "new": c["new"]} for c in changes]
        click.echo(format_table(_text_frame(rows), max_rows=20))
    for warning in plan.warnings:
        click.echo(f"WARNING: {warning}")
    click.echo(f"\nplan sha256: {plan.sha256}")
    where = out or "plan.json"
    click.echo(f"Next: paynb ejv redate apply --plan {where} --confirm {plan.sha256}")


@redate_group.command("apply")
@click.option("--plan", "plan_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--confirm", required=True, help="The sha256 printed by `paynb ejv redate plan`.")
@click.option("--ticket", default="", help="The ticket this apply answers (kept in the ledger).")
@click.option("--reason", default="", help="Why (kept in the ledger; default: the plan's reason).")
@json_option
def redate_apply_command(plan_path: str, confirm: str, ticket: str, reason: str, as_json: bool) -> None:
    """Upload the re-dated copies of a reviewed plan to cgi_processing/, once (a re-run says they are there).

    The apply is recorded in the ledger (`paynb runs list`); a killed apply run again finishes the upload
    without sending anything twice. Exit codes: 0 applied, 2 bad input, 7 refused (nothing written), 8 failed after a commit (the message
    says what was committed), 1 anything else.

    \b
    Example:
      paynb ejv redate apply --plan plan.json --confirm 3f2a… --ticket OPS-12
    """
    from paynb.ops.ejv.redate import apply_redate
    from paynb.plan import Plan

    with fix_exit_codes():
        result = apply_redate(
            Plan.read(plan_path), confirm, ticket=ticket, reason=reason, progress=not as_json
        )
    if as_json:
        print_json(result.to_dict())
        return
    click.echo(result.message() + (f" (apply {result.apply_id})" if result.apply_id else ""))
    for key in result.uploaded:
        click.echo(f"  uploaded {key}")
    for key in result.already_present:
        click.echo(f"  already there (same sha256) {key}")


def _fix_group(name: str, kind: str, option: click.Option, what: str, example_id: str) -> click.Group:
    """``paynb ejv NAME plan|apply``: one of the fixes ``ejv health`` recommends, on the one fix protocol."""
    import paynb.ops.ejv.partner_reset
    import paynb.ops.ejv.stop_ejv  # noqa: F401  (both register their fix)
    from paynb.fixes.cli import fix_commands

    flag = option.opts[0]
    plan_cmd, apply_cmd = fix_commands(
        kind,
        [option],
        example=f"paynb ejv {name} plan {flag} {example_id} --out {name}.json",
        apply_example=f'paynb ejv {name} apply --plan {name}.json --confirm <sha256> --ticket OPS-9 --reason "…"',
    )
    group = click.Group(
        name,
        help=f"{what} (plan, then apply with its confirm). See docs/ejv-fixes.md.\n\n\b\nExample:\n"
        f"  paynb ejv {name} plan {flag} {example_id} --out {name}.json\n"
        f"  paynb ejv {name} apply --plan {name}.json --confirm <sha256 printed by plan> --ticket OPS-9"
        ' --reason "…"',
    )
    group.add_command(plan_cmd)
    group.add_command(apply_cmd)
    return group


ejv.add_command(
    _fix_group(
        "stop-ejv",
        "ejv.clear_stop_ejv",
        click.Option(
            ["--distribution-code-id"],
            type=int,
            required=True,
            help="distribution_codes.distribution_code_id.",
        ),
        "Clear stop_ejv on a distribution code (GL) once Finance has corrected it",
        "12",
    )
)
ejv.add_command(
    _fix_group(
        "partner-reset",
        "ejv.reset_partner_disbursement",
        click.Option(
            ["--partner-disbursement-id"], type=int, required=True, help="partner_disbursements.id."
        ),
        "Set an ERRORED or never-sent UPLOADED partner disbursement back to WAITING_FOR_JOB",
        "7",
    )
)


def _text_frame(rows: list[dict[str, Any]]) -> Any:
    """Cells as display strings, so pandas never turns optional ints into floats."""
    from paynb.canonical import to_jsonable

    return rows_frame([{k: "" if v is None else str(to_jsonable(v)) for k, v in row.items()} for row in rows])


commands: list[click.Command] = [ejv]
