"""The ``paynb`` command. Thin: each sub-module parses options and calls the function API."""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from paynb import __version__
from paynb.errors import InputError, PaynbError

# jupyter's platformdirs warns on every start when XDG_RUNTIME_DIR is unset (containers, cron); not actionable
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

# one module per area; each exposes ``commands``: a list of click commands/groups to attach
AREAS = ("core", "sandbox", "jobs", "pad", "settlement", "ejv", "statements", "db", "invoice")


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
        return 130
    except PaynbError as err:
        click.echo(f"error: {err}", err=True)
        return 2 if isinstance(err, InputError) else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
