"""CLI: paynb pad commands (pad_triage)."""

from __future__ import annotations

import click

commands: list[click.Command] = []
