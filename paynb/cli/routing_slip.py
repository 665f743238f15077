"""CLI: ``paynb routing-slip show|void`` — look at a routing slip; void one that already has transactions."""

from __future__ import annotations

from pathlib import Path

import click

from paynb.cli.options import fix_exit_codes, json_option
from paynb.output import format_table, print_json


@click.group("routing-slip")
def routing_slip() -> None:
    """Routing slips (FAS): show one, and void one that already has transactions.

    \b
    Example:
      paynb routing-slip show 980000015
      paynb routing-slip void plan 980000015 --reason "cheque returned" --ticket OPS-77 --out void.json
      paynb routing-slip void apply --plan void.json --confirm <sha256 printed by plan>
    """


@routing_slip.command()
@click.argument("number")
@click.option("--no-cfs", is_flag=True, help="Do not read the receipts from CFS (pay-db only).")
@json_option
def show(number: str, no_cfs: bool, as_json: bool) -> None:
    """The slip, its parent and children, invoices, refunds, CFS receipts (FAS), the void's
    preconditions and the runbook situation it is in.

    \b
    Example:
      paynb routing-slip show 980000015 --json
    """
    from paynb.context import Env
    from paynb.ops.routing_slips.show import show_slip
    from paynb.ops.routing_slips.view import show_frames

    found = show_slip(number, env=Env.from_environment(), read_cfs=not no_cfs)
    if as_json:
        print_json(found)
        return
    for name, frame in show_frames(found).items():
        click.echo(format_table(frame, title=name))
        click.echo("")


@routing_slip.group()
def void() -> None:
    """Void a slip that has transactions: unassociate its invoices, void, re-associate (a planned fix).

    \b
    Example:
      paynb routing-slip void plan 980000015 --reason "cheque returned" --ticket OPS-77 --out void.json
      paynb routing-slip void apply --plan void.json --confirm <sha256> --ticket OPS-77
    """


@void.command("plan")
@click.argument("number")
@click.option("--reason", required=True, help="Why (kept in the ledger and in the slip's comment).")
@click.option("--ticket", required=True, help="Ticket reference, e.g. OPS-1234 (part of the void's key).")
@click.option(
    "--reverse-receipts",
    is_flag=True,
    help="paynb reverses the receipts itself with the FAS credentials, as the job would "
    "(default: set VOID and let sbc-pay's routing slip job do it, then re-run apply).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan file here.")
@json_option
def plan_cmd(
    number: str, reason: str, ticket: str, reverse_receipts: bool, out: Path | None, as_json: bool
) -> None:
    """Plan a void (read-only): every precondition, the steps, and the sha256 to confirm.

    Exit codes: 0 planned, 2 bad input, 7 a precondition fails (each failing one is named).

    \b
    Example:
      paynb routing-slip void plan 980000015 --reason "cheque returned" --ticket OPS-77 --out void.json
    """
    from paynb.context import Env
    from paynb.fixes.view import plan_document
    from paynb.ops.routing_slips.apply import get_void_fix

    fix = get_void_fix()
    with fix_exit_codes():
        plan = fix.plan(
            Env.from_environment(),
            number=number,
            reason=reason,
            ticket=ticket,
            reverse_receipts=reverse_receipts,
        )
    if out is not None:
        plan.write(out)
    if as_json:
        print_json(plan_document(plan, out=str(out) if out else None))
        return
    click.echo(f"Plan: {plan.summary}")
    click.echo(format_table(fix.table(plan)))
    click.echo(f"sha256: {plan.sha256}")
    if out is not None:
        click.echo(f"written to {out}; to apply it after review (operators in PAYNB_RS_VOID_OPERATORS):")
        click.echo(f"  paynb routing-slip void apply --plan {out} --confirm {plan.sha256}")
    else:
        click.echo("nothing was written; add --out FILE to save the plan for apply")


def _apply_command() -> click.Command:
    from paynb.fixes.cli import apply_command
    from paynb.ops.routing_slips.apply import get_void_fix

    return apply_command(
        get_void_fix(),
        example="paynb routing-slip void apply --plan void.json --confirm <sha256> --ticket OPS-77",
    )


void.add_command(_apply_command())

commands = [routing_slip]
