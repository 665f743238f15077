"""The ``paynb`` command. Thin: each sub-module parses options and calls the function API."""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from paynb import __version__
from paynb.cli import exits
from paynb.errors import AfterCommitError, CfsError, DatabaseError, InputError, PaynbError, PlanError

# jupyter's platformdirs warns on every start when XDG_RUNTIME_DIR is unset (containers, cron); not actionable
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

# one module per area; each exposes ``commands``: a list of click commands/groups to attach
AREAS = (
    "core",
    "sandbox",
    "jobs",
    "pad",
    "settlement",
    "ejv",
    "statements",
    "db",
    "invoice",
    "reconcile",
    "routing_slip",
    "lab",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="paynb")
def cli() -> None:
    """paynb: ops-support toolkit for sbc-pay.

    \b
    Examples:
      paynb sandbox up --dir .sandbox && source .sandbox/sandbox.env
      paynb doctor
      paynb stale --days 20
      paynb run notebooks/reports/stale_invoices.ipynb -p days 20
    """


for _area in AREAS:
    _module = importlib.import_module(f"paynb.cli.{_area}")
    for _command in _module.commands:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (all of them: :mod:`paynb.cli.exits`, docs/exit-codes.md).

    0 succeeded · 1 failed · 2 bad input, nothing done · 3/4/5 ``paynb run``: cell error, timeout, dead
    kernel · 6 secret in a run's output · 7 a data fix refused (confirm or plan check) · 8 a data fix
    failed after a commit · 9 a report could not read some rows · 10 credentials refused by a dependency ·
    11 a dependency unreachable · 130 aborted.
    """
    from paynb.output import set_wide

    set_wide(False)  # --wide holds for one invocation only (tests call main() many times in one process)
    try:
        # without standalone mode click returns the code of a raised Exit instead of exiting
        rv = cli.main(args=argv, prog_name="paynb", standalone_mode=False)
        if isinstance(rv, int):
            return rv
    except click.exceptions.Exit as ex:
        return ex.exit_code
    except click.ClickException as ex:
        ex.show()
        return ex.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return exits.ABORTED
    except PaynbError as err:
        click.echo(f"error: {err}", err=True)
        return error_code(err)
    except OSError as err:  # a file paynb was told to read or write: say which, no traceback
        where = f" {err.filename}" if err.filename else ""
        click.echo(f"error: cannot use{where}: {err.strerror or type(err).__name__}", err=True)
        return exits.FAILED
    return exits.OK


def error_code(err: PaynbError) -> int:
    """The exit code of a PaynbError that reached the top."""
    if isinstance(err, InputError):
        return exits.BAD_INPUT
    if isinstance(err, PlanError):
        return exits.REFUSED
    if isinstance(err, AfterCommitError):
        return exits.AFTER_COMMIT
    text = str(err)
    if isinstance(err, CfsError):
        if err.status in (400, 401, 403):
            return exits.CREDENTIALS_REFUSED
        if "no answer from CFS" in text or (err.status or 0) >= 500 or err.status == 429:
            return exits.UNREACHABLE
    if isinstance(err, DatabaseError) and "cannot reach pay-db" in text:
        return exits.CREDENTIALS_REFUSED if "password authentication failed" in text else exits.UNREACHABLE
    return exits.FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
