"""One CLI shape for every fix: ``<area> … plan [options] --out FILE`` and ``<area> … apply --plan FILE
--confirm SHA [--ticket T --reason R --operator NAME]``, built from the fix and its parameter options.

Example (an ops area's CLI module)::

    from paynb.fixes.cli import fix_commands
    plan_cmd, apply_cmd = fix_commands(
        "pad.partial_credit",
        [click.Option(["--invoice-id"], type=int, required=True, help="The invoice to credit."),
         click.Option(["--amount"], required=True, help="Dollars and cents, e.g. 1.00.")],
        example="paynb pad credit plan --invoice-id 10 --amount 1.00 --out credit.json",
    )

``plan`` calls ``fix.plan(env, **options)`` (option names become keyword arguments), prints the plan
table (or ``--json``: one document) and the sha256 to confirm, and with ``--out`` writes the plan file
(0600). ``apply`` reads the file and calls :func:`paynb.fixes.apply_fix`.

Exit codes of ``apply``: 0 applied, 2 bad input, 7 refused (wrong confirm, edited plan file, the data
changed, another kind of plan: nothing was written), 8 failed after part of it was committed (the
message says what), 1 anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from paynb.errors import AfterCommitError, PlanError
from paynb.fixes.protocol import Fix, apply_fix, get_fix
from paynb.fixes.view import plan_document, plan_frame
from paynb.output import format_table, print_json

# the numbers of paynb.cli.exits.REFUSED and AFTER_COMMIT (docs/exit-codes.md): this layer sits below the
# CLI and cannot import it; tests/test_exit_codes.py checks that they agree
EXIT_REFUSED = 7
EXIT_AFTER_COMMIT = 8


def _fix(fix: Fix | str) -> Fix:
    return get_fix(fix) if isinstance(fix, str) else fix


def _env(operator: str | None = None) -> Any:
    from paynb.context import Env

    env = Env.from_environment()
    if operator:
        env.operator = operator
    return env


def plan_command(
    fix: Fix | str, options: Sequence[click.Option] = (), *, name: str = "plan", example: str = ""
) -> click.Command:
    """``plan``: the fix's parameter options plus ``--out FILE`` and ``--json``."""

    def callback(out: Path | None, as_json: bool, **params: Any) -> None:
        chosen = _fix(fix)
        plan = chosen.plan(_env(), **{k: v for k, v in params.items() if v is not None})
        if out is not None:
            plan.write(out)
        if as_json:
            print_json(plan_document(plan, out=str(out) if out else None))
            return
        click.echo(f"Plan: {plan.summary or chosen.title or plan.kind}")
        for warning in plan.warnings:
            click.echo(f"  warning: {warning}")
        click.echo(format_table(plan_frame(plan, chosen)))
        click.echo(f"sha256: {plan.sha256}")
        if out is not None:
            click.echo(f"written to {out}; to apply it after review:")
            click.echo(f"  … apply --plan {out} --confirm {plan.sha256} --ticket TICKET --reason REASON")
        else:
            click.echo("nothing was written; add --out FILE to save the plan for apply")

    title = _fix(fix).title if not isinstance(fix, str) else fix
    help_text = f"Plan {title} (read-only): print what apply would do and the sha256 to confirm."
    if example:
        help_text += f"\n\n\b\nExample:\n  {example}"
    params: list[click.Parameter] = [
        *options,
        click.Option(
            ["--out"], type=click.Path(dir_okay=False, path_type=Path), help="Write the plan file here."
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="Print JSON instead of a table."),
    ]
    return click.Command(name, callback=callback, params=params, help=help_text)


def apply_command(fix: Fix | str, *, name: str = "apply", example: str = "") -> click.Command:
    """``apply --plan FILE --confirm SHA [--ticket --reason --operator --json]``."""

    def callback(
        plan_file: Path, confirm: str, ticket: str, reason: str, operator: str | None, as_json: bool
    ) -> None:
        from paynb.plan import Plan

        chosen = _fix(fix)
        plan = Plan.read(plan_file)
        try:
            result = apply_fix(
                chosen, plan, confirm, env=_env(operator), ticket=ticket, reason=reason, operator=operator
            )
        except AfterCommitError as err:
            click.echo(f"error: {err}", err=True)
            raise click.exceptions.Exit(EXIT_AFTER_COMMIT) from None
        except PlanError as err:
            click.echo(f"refused: {err}", err=True)
            raise click.exceptions.Exit(EXIT_REFUSED) from None
        if as_json:
            print_json(result.to_dict())
            return
        click.echo(f"{result.outcome.status}: {result.outcome.rows_affected} row(s)")
        click.echo(
            f"apply id  {result.apply_id} (ledger entry {result.ledger_seq}, anchor {result.anchor_state})"
        )
        click.echo(f"details   paynb runs show {result.apply_id}")

    title = _fix(fix).title if not isinstance(fix, str) else fix
    help_text = (
        f"Apply a reviewed {title} plan. Re-plans first and refuses on any difference.\n\n"
        "Exit codes: 0 applied, 2 bad input, 7 refused (nothing written), 8 failed after a commit "
        "(the message says what was committed), 1 anything else."
    )
    if example:
        help_text += f"\n\n\b\nExample:\n  {example}"
    params: list[click.Parameter] = [
        click.Option(
            ["--plan", "plan_file"],
            required=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="The plan file written by plan --out.",
        ),
        click.Option(
            ["--confirm"], required=True, metavar="SHA", help="The plan's sha256, as plan printed it."
        ),
        click.Option(["--ticket"], default="", help="The ticket this fix answers (kept in the ledger)."),
        click.Option(["--reason"], default="", help="Why (kept in the ledger)."),
        click.Option(
            ["--operator"], metavar="NAME", help="Who is acting (default: PAYNB_OPERATOR, else the OS user)."
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="Print JSON instead of text."),
    ]
    return click.Command(name, callback=callback, params=params, help=help_text)


def fix_commands(
    fix: Fix | str,
    options: Sequence[click.Option] = (),
    *,
    plan_name: str = "plan",
    apply_name: str = "apply",
    example: str = "",
    apply_example: str = "",
) -> tuple[click.Command, click.Command]:
    """The ``plan`` and ``apply`` commands of one fix, ready to add to an area's click group."""
    return (
        plan_command(fix, options, name=plan_name, example=example),
        apply_command(fix, name=apply_name, example=apply_example),
    )
