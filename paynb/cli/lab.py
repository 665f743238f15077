"""CLI: ``paynb lab``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click


@click.command("lab")
@click.option(
    "--dir",
    "directory",
    default=None,
    type=click.Path(file_okay=False),
    help="A sandbox folder whose settings Lab gets (default: .sandbox when it is up and nothing is "
    "configured; otherwise the configured settings).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: a free one).")
@click.option(
    "--root",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, exists=True),
    help="The folder Lab shows (your project, with notebooks/).",
)
@click.option("--print-only", is_flag=True, help="Print the URL and the command, do not start Lab.")
def lab(directory: str | None, port: int | None, root: str, print_only: bool) -> None:
    """Start JupyterLab on the project, with the sandbox's (or the configured) settings and paynb's
    Python as the notebooks' kernel. Works as root. Prints the URL with its token; Ctrl-C stops Lab.

    \b
    Example:
      paynb lab --dir .sandbox
      paynb lab --port 8899
    """
    from paynb.jobs.lab import lab_launch
    from paynb.settings import get_settings

    settings_env, source = _settings_for_lab(directory)
    launch = lab_launch(
        root=root, settings_env=settings_env, state_dir=get_settings(settings_env).data_dir, port=port
    )
    click.echo(f"settings: {source}")
    click.echo(f"kernel:   python3 -> {sys.executable}")
    click.echo("JupyterLab (open this URL; the token is in it):")
    click.echo(f"  {launch.url}", nl=True)
    sys.stdout.flush()
    if print_only:
        click.echo(" ".join(launch.argv))
        return
    proc = subprocess.Popen(launch.argv, env=launch.env, cwd=launch.root)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=10)
    raise click.exceptions.Exit(code if code >= 0 else 0)


def _settings_for_lab(directory: str | None) -> tuple[dict[str, str], str]:
    """The sandbox's settings when asked for (or when .sandbox is there and nothing is configured)."""
    from paynb.sandbox.manager import Sandbox

    if directory is None:
        configured = os.environ.get("PAYNB_DATABASE_URL") or os.environ.get("PAYNB_ENV_FILE")
        if configured or not (Path(".sandbox") / "sandbox.env").is_file():
            return {}, "this shell's environment (and .env)"
        directory = ".sandbox"
    box = Sandbox(directory)
    return box.read_env(), f"the sandbox in {box.root}"


commands = [lab]
