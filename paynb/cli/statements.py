"""CLI: ``paynb statements gaps`` and ``paynb statements generate`` (thin over paynb.ops.statements)."""

from __future__ import annotations

import click

from paynb.cli.options import (
    account_options,
    auth_account_filter,
    export_report,
    fix_exit_codes,
    json_option,
    report_options,
)
from paynb.errors import InputError
from paynb.output import format_table, print_json


@click.group()
def statements() -> None:
    """Statements: missing periods for every frequency, and set-based generation.

    \b
    Example:
      paynb statements gaps --from 2025-01-01 --frequency WEEKLY
      paynb statements plan 2025-03-08 --out plan.json
      paynb statements apply --plan plan.json --confirm <sha256 printed by plan>
      paynb statements generate --range 2025-03-01 2025-03-31
    """


def _refuse_future(day: str | None, day_range: tuple[str, str] | None, allow_future: bool) -> None:
    """A statement day after today covers invoices that do not exist yet: almost always a typo."""
    from datetime import date

    from paynb.timez import pacific_today

    if allow_future:
        return
    today = pacific_today()
    for field, value in (("DATE", day), ("--range", day_range[1] if day_range else None)):
        if value is None:
            continue
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            continue  # the generator names a malformed date itself
        if parsed > today:
            raise InputError(
                f"{value} is after today ({today}, Pacific): its statements would miss the invoices still to come",
                field=field,
                hint="give a past statement day, or add --allow-future if you really mean it",
            )


@statements.command()
@click.option(
    "--from", "from_date", default=None, metavar="YYYY-MM-DD", help="First statement day [first setting]."
)
@click.option(
    "--to", "to_date", default=None, metavar="YYYY-MM-DD", help="Last statement day [yesterday, Pacific]."
)
@click.option("--frequency", default=None, help="DAILY, WEEKLY or MONTHLY [all].")
@account_options
@json_option
@report_options
def gaps(
    from_date: str | None,
    to_date: str | None,
    frequency: str | None,
    auth_account: str | None,
    account_id: int | None,
    as_json: bool,
) -> None:
    """Statement periods that should exist (from statement_settings) but do not, per account.

    Also lists duplicated statements for one period, statements whose is_empty disagrees with their
    invoices, and the fewest `invoke_jobs.py GENERATE_STATEMENTS` runs that would recreate the gaps.

    \b
    Example:
      paynb statements gaps --from 2025-01-01 --to 2025-03-31
      paynb statements gaps --frequency MONTHLY --auth-account 6819 --xlsx gaps.xlsx --json
    """
    from paynb.ops.statements import find_statement_gaps

    account = auth_account_filter(auth_account, account_id)
    report = find_statement_gaps(from_date, to_date, frequency, account)
    export_report(
        {
            "missing": report.missing,
            "summary": report.summary(),
            "duplicates": report.duplicates,
            "inconsistent": report.inconsistent,
        }
    )
    if as_json:
        print_json(report.to_dict())
        return
    scope = f"statement days {report.from_date}..{report.to_date}"
    scope += f", {report.frequency}" if report.frequency else ""
    scope += f", account {report.account}" if report.account else ""
    click.echo(f"Statement gaps: {scope}")
    click.echo(format_table(report.summary()))
    click.echo("")
    click.echo(format_table(report.missing, title=f"Missing periods ({len(report.missing)})"))
    if not report.duplicates.empty:
        click.echo("")
        click.echo(format_table(report.duplicates, title=f"Duplicated periods ({len(report.duplicates)})"))
    if not report.inconsistent.empty:
        click.echo("")
        click.echo(
            format_table(report.inconsistent, title=f"Inconsistent statements ({len(report.inconsistent)})")
        )
    if report.commands:
        click.echo("")
        click.echo(f"Job runs that recreate the gaps ({len(report.commands)}):")
        for command in report.commands:
            click.echo(f"  {command}")
        click.echo(f"or, in one run from here: {report.generate_command()}")
    elif report.ok:
        click.echo("\nNo gaps, duplicates or inconsistent statements.")


@statements.command()
@click.argument("day", required=False, metavar="[DATE]")
@click.option(
    "--range", "day_range", nargs=2, default=None, metavar="FROM TO", help="Every statement day FROM..TO."
)
@account_options
@click.option(
    "--all-periods",
    is_flag=True,
    help="With --range: regenerate every period as the job would, not only the missing ones.",
)
@click.option(
    "--allow-future", is_flag=True, help="Accept statement days after today (Pacific); refused by default."
)
@click.option("--apply", "do_apply", is_flag=True, help="Write (needs --confirm). Default: dry run.")
@click.option("--confirm", default=None, metavar="SHA256", help="The sha256 printed by the dry run.")
@click.option("--out", type=click.Path(dir_okay=False), help="Dry run: write the plan JSON to this file.")
@json_option
def generate(
    day: str | None,
    day_range: tuple[str, str] | None,
    auth_account: str | None,
    account_id: int | None,
    all_periods: bool,
    allow_future: bool,
    do_apply: bool,
    confirm: str | None,
    out: str | None,
    as_json: bool,
) -> None:
    """Generate statements like `invoke_jobs.py GENERATE_STATEMENTS DATE [AUTH_ID]`, set-based.

    DATE is the statement day: DAILY always, WEEKLY on a Saturday, MONTHLY on a month's last day,
    gap statements otherwise. Existing statements of the period are reused (same ids), their
    invoices replaced, notifications set to SKIP. --range fills the missing periods of every day
    in one transaction. Dry run by default: prints per-frequency counts and the plan sha256.

    \b
    Every apply is the statements.generate fix, recorded in the ledger (`paynb runs list`). `paynb
    statements plan … --out FILE` / `paynb statements apply --plan FILE --confirm SHA` is the same with
    the reviewed plan kept in a file.

    \b
    Example:
      paynb statements generate 2025-03-08
      paynb statements generate 2025-03-08 --apply --confirm <sha256 from the dry run>
      paynb statements generate --range 2025-03-01 2025-03-31 --auth-account 6819
    """
    from paynb.ops.statements import generate as generate_day
    from paynb.ops.statements import generate_range

    if (day is None) == (day_range is None):
        raise InputError("give either DATE or --range FROM TO", field="DATE")
    _refuse_future(day, day_range, allow_future)
    account = auth_account_filter(auth_account, account_id)
    if all_periods and day_range is None:
        raise InputError("--all-periods only applies to --range", field="all_periods")
    if confirm and not do_apply:
        raise InputError("--confirm is only used with --apply", field="confirm")
    if out and do_apply:
        raise InputError(
            "--out writes the dry run's plan; apply a plan file with `paynb statements apply`", field="out"
        )
    if day_range is not None:
        result = generate_range(
            day_range[0],
            day_range[1],
            account,
            missing_only=not all_periods,
            apply=do_apply,
            confirm=confirm,
        )
    else:
        result = generate_day(day, account, apply=do_apply, confirm=confirm)
    plan = result.plan if do_apply else result
    periods = None if do_apply else _periods(plan)
    if as_json:
        extra = {} if periods is None else {"periods": periods.to_dict(orient="records")}
        print_json({**result.to_dict(), **extra})
        return
    days = str(plan.from_date) if plan.from_date == plan.to_date else f"{plan.from_date}..{plan.to_date}"
    what = "missing periods of " if plan.missing_only else ""
    click.echo(f"Statements for {what}{days}" + (f", account {plan.account}" if plan.account else ""))
    click.echo(format_table(plan.to_frame()))
    for warning in plan.to_plan().warnings:
        click.echo(f"warning: {warning}")
    if do_apply:
        written = ", ".join(f"{k}={v}" for k, v in result.written.items())
        click.echo(f"applied (run {result.run_id}): {written}")
        _echo_ids(result.statement_ids)
        return
    _echo_periods(periods)
    if out:
        plan.to_plan().write(out)
    click.echo(f"\nplan sha256: {plan.sha256}")
    if plan.total_statements == 0:
        click.echo("nothing to write")
        return
    args = f"--range {plan.from_date} {plan.to_date}" if day_range is not None else f"{plan.from_date}"
    args += f" --auth-account {plan.account}" if plan.account else ""
    args += " --all-periods" if all_periods else ""
    click.echo(
        f"dry run: nothing written. To apply: paynb statements generate {args} --apply --confirm {plan.sha256}"
    )


@statements.command("plan")
@click.argument("day", required=False, metavar="[DATE]")
@click.option(
    "--range", "day_range", nargs=2, default=None, metavar="FROM TO", help="Every statement day FROM..TO."
)
@account_options
@click.option("--all-periods", is_flag=True, help="With --range: every period, not only the missing ones.")
@click.option(
    "--allow-future", is_flag=True, help="Accept statement days after today (Pacific); refused by default."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Write the plan JSON here.")
@json_option
def plan_command(
    day: str | None,
    day_range: tuple[str, str] | None,
    auth_account: str | None,
    account_id: int | None,
    all_periods: bool,
    allow_future: bool,
    out: str,
    as_json: bool,
) -> None:
    """Plan statement generation (a dry run) and keep the plan in a file for `paynb statements apply`.

    \b
    Example:
      paynb statements plan 2025-03-08 --out plan.json
      paynb statements plan --range 2025-03-01 2025-03-31 --auth-account 6819 --out plan.json
    """
    from paynb.ops.statements import generate as generate_day
    from paynb.ops.statements import generate_range

    if (day is None) == (day_range is None):
        raise InputError("give either DATE or --range FROM TO", field="DATE")
    _refuse_future(day, day_range, allow_future)
    account = auth_account_filter(auth_account, account_id)
    if day_range is not None:
        result = generate_range(day_range[0], day_range[1], account, missing_only=not all_periods)
    else:
        if all_periods:
            raise InputError("--all-periods only applies to --range", field="all_periods")
        result = generate_day(day, account)
    plan = result.to_plan()
    plan.write(out)
    periods = _periods(result)
    if as_json:
        print_json({**result.to_dict(), "out": out, "periods": periods.to_dict(orient="records")})
        return
    click.echo(plan.summary)
    click.echo(format_table(result.to_frame()))
    _echo_periods(periods)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}")
    click.echo(f"\nplan sha256: {plan.sha256}")
    click.echo(f"Next: paynb statements apply --plan {out} --confirm {plan.sha256} --ticket <T>")


@statements.command("apply")
@click.option("--plan", "plan_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--confirm", required=True, metavar="SHA256", help="The sha256 printed by `paynb statements plan`."
)
@click.option("--ticket", default="", help="The ticket this run answers (kept in the ledger).")
@click.option("--reason", default="", help="Why (kept in the ledger).")
@json_option
def apply_command(plan_path: str, confirm: str, ticket: str, reason: str, as_json: bool) -> None:
    """Write the statements of a reviewed plan in one transaction; refused if anything changed since.

    Exit codes: 0 applied, 2 bad input, 7 refused (nothing written), 8 failed after a commit (the message
    says what was committed), 1 anything else.

    \b
    Example:
      paynb statements apply --plan plan.json --confirm 3f2a… --ticket OPS-3
    """
    from paynb.ops.statements.apply import apply_generation
    from paynb.plan import Plan

    with fix_exit_codes():
        result = apply_generation(Plan.read(plan_path), confirm, ticket=ticket, reason=reason)
    if as_json:
        print_json(result.to_dict())
        return
    written = ", ".join(f"{k}={v}" for k, v in result.written.items())
    click.echo(f"applied (apply {result.run_id}): {written}")
    _echo_ids(result.statement_ids)


SHOWN_IDS = 40


def _periods(plan):  # type: ignore[no-untyped-def]
    """The accounts and periods of a dry run, one row per statement it would write."""
    from paynb.ops.statements.listing import list_periods

    return list_periods(
        plan.from_date,
        plan.to_date,
        plan.account,
        override=plan.override,
        missing_only=plan.missing_only,
    )


def _echo_periods(periods) -> None:  # type: ignore[no-untyped-def]
    if periods.empty:
        return
    accounts = periods["auth_account_id"].nunique()
    title = (
        f"\nAccounts and periods ({len(periods)} statement(s), {accounts} account(s); statement_id = reused)"
    )
    click.echo(format_table(periods, title=title))


def _echo_ids(ids: dict[str, list[int]]) -> None:
    for label, key in (("new statement ids", "new"), ("reused statement ids", "reused")):
        values = ids.get(key) or []
        if values:
            shown = " ".join(str(i) for i in values[:SHOWN_IDS])
            more = f" … (+{len(values) - SHOWN_IDS}; --json lists all)" if len(values) > SHOWN_IDS else ""
            click.echo(f"{label} ({len(values)}): {shown}{more}")


commands = [statements]
