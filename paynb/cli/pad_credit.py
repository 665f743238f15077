"""CLI: ``paynb pad credit plan|apply`` — a PAD partial credit as a guarded data fix."""

from __future__ import annotations

from typing import Any

import click

from paynb.cli import exits
from paynb.cli.options import PG_ID, fix_exit_codes, json_option, writable_file
from paynb.enums import RefundsPartialType
from paynb.output import format_table, print_json

_TYPES = frozenset(t.value for t in RefundsPartialType)


class _LineOption(click.Option):
    """``--line ITEM_ID AMOUNT [TYPE]``: two values, and a third when it is a refund type."""

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            opt = parser._long_opt.get(name) or parser._short_opt.get(name)  # click keeps them by name
            if opt is None:
                continue
            original = opt.process

            def process(value: Any, state: Any, _original: Any = original, _name: str = name) -> None:
                if not state.rargs or state.rargs[0].startswith("--"):
                    raise click.BadOptionUsage(_name, f"{_name} needs ITEM_ID AMOUNT [TYPE]")
                values = [value, state.rargs.pop(0)]
                if state.rargs and state.rargs[0].upper() in _TYPES:
                    values.append(state.rargs.pop(0).upper())
                _original(tuple(values), state)

            opt.process = process


@click.group()
def credit() -> None:
    """Credit a PAD invoice in CFS (a credit memo) and record it in pay-db — plan, review, apply once.

    \b
    Example:
      paynb pad credit plan --invoice 123 --amount 10.00 --reason "duplicate filing" --ticket OPS-1 --out plan.json
      paynb pad credit apply --plan plan.json --confirm <sha256 printed by plan>
    """


@credit.command("plan")
@click.option(
    "--invoice", "--invoice-id", "invoice_id", type=PG_ID, required=True, help="pay-db invoice id (PAD)."
)
@click.option(
    "--line",
    "lines",
    cls=_LineOption,
    multiple=True,
    type=click.UNPROCESSED,
    metavar="ITEM_ID AMOUNT [TYPE]",
    help="Credit AMOUNT on payment line item ITEM_ID; TYPE is BASE_FEES (default), "
    "FUTURE_EFFECTIVE_FEES, PRIORITY_FEES or SERVICE_FEES. Repeat for more lines.",
)
@click.option("--amount", default=None, help="Credit this amount, spread over the lines (instead of --line).")
@click.option("--reason", required=True, help="Why (recorded in credits.details and the ledger).")
@click.option(
    "--ticket", required=True, help="Ticket reference, e.g. OPS-1234 (part of the idempotency key)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    callback=writable_file,
    default=None,
    help="Write the plan here (0600).",
)
@json_option
def plan_cmd(
    invoice_id: int,
    lines: tuple[tuple[str, ...], ...],
    amount: str | None,
    reason: str,
    ticket: str,
    out: str | None,
    as_json: bool,
) -> None:
    """Plan a credit (read-only) and print it with its sha256. Nothing is changed.

    \b
    Example:
      paynb pad credit plan --invoice 123 --line 456 5.00 --line 457 1.50 SERVICE_FEES \\
          --reason "filed twice" --ticket OPS-1 --out plan.json
      paynb pad credit plan --invoice 123 --amount 10.00 --reason "filed twice" --ticket OPS-1 --json
    """
    from paynb.ops.pad.credit import plan_partial_credit
    from paynb.ops.pad.view import changes_frame, invoice_memos_frame, lines_frame, memo_frame, plan_text

    plan = plan_partial_credit(
        invoice_id, lines=list(lines) if lines else None, amount=amount, reason=reason, ticket=ticket
    )
    if out:
        plan.write(out)
    if as_json:
        print_json({"sha256": plan.sha256, "file": out, "plan": plan.to_dict()})
        return
    click.echo(plan_text(plan))
    click.echo("")
    click.echo(format_table(lines_frame(plan), title="Credited per line item"))
    click.echo("")
    click.echo(
        format_table(
            memo_frame(plan), title=f"CFS credit memo: POST {plan.body['cfs']['credit_memo']['path']}"
        )
    )
    click.echo("")
    memos = invoice_memos_frame(plan)
    if len(memos):
        click.echo(format_table(memos, title="CFS credit memos already on this invoice"))
        click.echo("")
    click.echo(format_table(changes_frame(plan), title="Changes (before -> after)"))
    click.echo("")
    if out:
        click.echo(
            f"Plan written to {out}. Review it, then:\n  paynb pad credit apply --plan {out} --confirm {plan.sha256}"
        )
    else:
        click.echo("Add --out plan.json to save the plan for `paynb pad credit apply`.")


# docs/exit-codes.md; refused (7) and failed after a commit (8) come from fix_exit_codes, as for every fix
EXIT_NOT_VERIFIED = exits.FAILED  # the re-read found a difference
EXIT_UNVERIFIED = exits.AFTER_COMMIT  # done, but pay-db or CFS could not be reached to check it: run `verify`


def _show_result(result: Any, as_json: bool) -> None:
    from paynb.ops.pad.view import result_frame

    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(result.message)
        click.echo(f"key {result.idempotency_key}, apply {result.run_id}, steps: {'; '.join(result.steps)}")
        if not result.unverified_reason:
            click.echo(
                format_table(result_frame(result), title="Before -> after (re-read from pay-db and CFS)")
            )
            click.echo("verified" if result.verified else "NOT VERIFIED:\n  " + "\n  ".join(result.problems))
    if result.unverified_reason:
        raise click.exceptions.Exit(EXIT_UNVERIFIED)
    if not result.verified:
        raise click.exceptions.Exit(EXIT_NOT_VERIFIED)


@credit.command("apply")
@click.option(
    "--plan", "plan_file", required=True, type=click.Path(dir_okay=False), help="Plan file from `plan --out`."
)
@click.option("--confirm", required=True, help="The plan's sha256, as printed by `plan`.")
@click.option(
    "--ticket", default=None, help="The ticket (must be the plan's; it is part of the credit's key)."
)
@click.option(
    "--reason", default=None, help="Why it is applied now, for the ledger (default: the plan's reason)."
)
@click.option("--operator", default=None, help="Who applies it (default: PAYNB_OPERATOR, else the OS user).")
@json_option
def apply_cmd(
    plan_file: str, confirm: str, ticket: str | None, reason: str | None, operator: str | None, as_json: bool
) -> None:
    """Apply a reviewed plan: post the credit memo once, write pay-db in one transaction, verify.

    Re-planning must give the same plan, or nothing happens; another credit on the invoice that stopped
    half-way, or CFS credit memos that with this one exceed the invoice total, refuse it too. Safe to re-run:
    a finished credit is a no-op, and a run that stopped half-way resumes where it stopped. Every apply is
    recorded in the ledger. Exit codes (docs/exit-codes.md): 0 applied (or already applied), 2 bad input,
    7 refused (nothing written), 8 failed after the memo was posted (the message says what and what to
    run), or done but pay-db or CFS could not be reached to verify it (run `verify`), 1 verification found
    a difference.

    \b
    Example:
      paynb pad credit apply --plan plan.json --confirm 3f2a…e9 --ticket OPS-1 --reason "approved by finance"
    """
    from paynb.ops.pad.credit import apply_partial_credit
    from paynb.plan import Plan

    plan = Plan.read(plan_file)
    with fix_exit_codes():
        result = apply_partial_credit(plan, confirm, ticket=ticket, reason=reason, operator=operator)
    if result.unverified_reason:
        result.next_step = f"paynb pad credit verify --plan {plan_file}"
        result.message = result.message.replace(
            "paynb pad credit verify --plan <the plan file>", result.next_step
        )
    _show_result(result, as_json)


@credit.command("verify")
@click.option(
    "--plan", "plan_file", required=True, type=click.Path(dir_okay=False), help="The applied plan file."
)
@json_option
def verify_cmd(plan_file: str, as_json: bool) -> None:
    """Check an applied credit again (read-only): its memo in CFS and its rows in pay-db agree with the plan.

    For after an apply said the credit is done but could not verify it (pay-db or CFS unreachable).

    \b
    Example:
      paynb pad credit verify --plan plan.json
    """
    from paynb.ops.pad.credit import verify_plan
    from paynb.plan import Plan

    _show_result(verify_plan(Plan.read(plan_file)), as_json)


@credit.command("resume")
@click.option(
    "--key", required=True, help="The credit's idempotency key (pcr-…), as a refused plan names it."
)
@click.option("--confirm", required=True, help="The sha256 of that credit's plan, as the refusal prints it.")
@json_option
def resume_cmd(key: str, confirm: str, as_json: bool) -> None:
    """Finish a credit that stopped half-way, from the plan its ledger intent keeps (an apply like any other).

    \b
    Example:
      paynb pad credit resume --key pcr-0123456789abcdef01234567 --confirm 3f2a…e9
    """
    from paynb.ops.pad.credit import resume_credit

    with fix_exit_codes():
        result = resume_credit(key, confirm)
    _show_result(result, as_json)


@credit.command("resolve")
@click.option("--key", required=True, help="The unfinished credit's idempotency key (pcr-…).")
@click.option("--reason", required=True, help="Why it must not happen (recorded in the ledger).")
@json_option
def resolve_cmd(key: str, reason: str, as_json: bool) -> None:
    """Drop an unfinished credit that never reached CFS (marks its intent abandoned), so other credits on the
    invoice can be planned. Refused when its memo is in CFS or its rows in pay-db: resume it instead.

    \b
    Example:
      paynb pad credit resolve --key pcr-0123456789abcdef01234567 --reason "wrong invoice, OPS-12"
    """
    from paynb.ops.pad.credit import resolve_credit

    done = resolve_credit(key, reason)
    if as_json:
        print_json(done)
    else:
        click.echo(f"credit {key} on invoice {done['invoice_id']} is now abandoned: {done['reason']}")


commands: list[click.Command] = [credit]
