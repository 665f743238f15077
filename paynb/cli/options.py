"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def non_negative(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise click.BadParameter(f"must be 0 or more, got {value}", ctx=ctx, param=param)
    return value


@contextmanager
def fix_exit_codes() -> Iterator[None]:
    """The exit codes of every fix's apply (``paynb.fixes.cli``): 7 refused (nothing written), 8 failed
    after part of it was committed (the message says what)."""
    from paynb.errors import AfterCommitError, PlanError
    from paynb.fixes.cli import EXIT_AFTER_COMMIT, EXIT_REFUSED

    try:
        yield
    except AfterCommitError as err:
        click.echo(f"error: {err}", err=True)
        raise click.exceptions.Exit(EXIT_AFTER_COMMIT) from None
    except PlanError as err:
        click.echo(f"refused: {err}", err=True)
        raise click.exceptions.Exit(EXIT_REFUSED) from None
