"""Options shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from paynb.timez import MAX_DAYS

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")

#: upper bounds that keep values inside what Python dates and PostgreSQL integers hold
MAX_PG_INT = 2**31 - 1  # PostgreSQL `integer` (ids)
DAYS = click.IntRange(0, MAX_DAYS)
PG_ID = click.IntRange(1, MAX_PG_INT)


def non_negative(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise click.BadParameter(f"must be 0 or more, got {value}", ctx=ctx, param=param)
    return value


def day_count(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """A number of days: 0 or more, and at most a century (a larger one overflows date arithmetic)."""
    value = non_negative(ctx, param, value)
    if value is not None and value > MAX_DAYS:
        raise click.BadParameter(f"must be at most {MAX_DAYS} (a century), got {value}", ctx=ctx, param=param)
    return value


def writable_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an output path whose folder is missing or not writable, before any work is done."""
    if value is None:
        return value
    path = Path(value).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise click.BadParameter(f"{value} is a folder; give a file name", ctx=ctx, param=param)
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {folder} does not exist", ctx=ctx, param=param)
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"cannot write to {value} (permission denied)", ctx=ctx, param=param)
    return value


@contextmanager
def fix_exit_codes() -> Iterator[None]:
    """The exit codes of every fix's apply (as ``paynb.fixes.cli``): 7 refused (nothing written), 8 failed
    after part of it was committed (the message says what); docs/exit-codes.md."""
    from paynb.cli import exits
    from paynb.errors import AfterCommitError, PlanError

    try:
        yield
    except AfterCommitError as err:
        click.echo(f"error: {err}", err=True)
        raise click.exceptions.Exit(exits.AFTER_COMMIT) from None
    except PlanError as err:
        click.echo(f"refused: {err}", err=True)
        raise click.exceptions.Exit(exits.REFUSED) from None
