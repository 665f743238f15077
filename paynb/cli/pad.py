"""CLI: ``paynb pad …`` — stuck PAD invoices (triage) and PAD partial credits.

The group is assembled from two modules so that each flow keeps its own file:
``pad_triage`` (``paynb pad triage``) and ``pad_credit`` (``paynb pad credit plan|apply``).
"""

from __future__ import annotations

import click

from paynb.cli import pad_credit, pad_triage


@click.group()
def pad() -> None:
    """Pre-authorized debit (PAD): why invoices are stuck, and partial credits.

    \b
    Example:
      paynb pad triage --days 20
      paynb pad credit plan --invoice 123 --amount 10.00 --reason "duplicate filing" --ticket OPS-1
    """


for _command in (*pad_triage.commands, *pad_credit.commands):
    pad.add_command(_command)

commands = [pad]
