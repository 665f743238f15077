"""CLI: ``paynb sandbox up|down|status|env|scenarios``."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from paynb.cli.options import json_option
from paynb.output import print_json, print_table, rows_frame

DIR_OPTION = click.option(
    "--dir",
    "directory",
    default=".sandbox",
    show_default=True,
    type=click.Path(),
    help="Folder of the sandbox.",
)


@click.group()
def sandbox() -> None:
    """The embedded sandbox: PostgreSQL with synthetic pay-db data, a CFS server and an S3 server.

    \b
    Example:
      paynb sandbox up --dir .sandbox --scale small --seed 42
      source .sandbox/sandbox.env            # or: eval "$(paynb sandbox env .sandbox)"
      paynb sandbox status --dir .sandbox
      paynb sandbox down --dir .sandbox
    """


@sandbox.command()
@DIR_OPTION
@click.option("--scale", default="small", show_default=True, help="small | medium | large")
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of the synthetic data.")
@click.option("--cfs-latency-ms", default=0, show_default=True, type=int, help="Latency the CFS server adds.")
@click.option(
    "--cfs-fault-rate", default=0.0, show_default=True, type=float, help="Share of CFS calls answered 500."
)
@click.option(
    "--cfs-burst-429", default=0, show_default=True, type=int, help="Answer the first N CFS calls with 429."
)
@click.option(
    "--cfs-token-ttl-s", default=3600.0, show_default=True, type=float, help="Lifetime of CFS tokens."
)
@click.option(
    "--cfs-drop-rate", default=0.0, show_default=True, type=float, help="Share of CFS calls cut mid-way."
)
@click.option("--progress/--no-progress", default=True, help="Show seeding progress.")
def up(
    directory: str,
    scale: str,
    seed: int,
    cfs_latency_ms: int,
    cfs_fault_rate: float,
    cfs_burst_429: int,
    cfs_token_ttl_s: float,
    cfs_drop_rate: float,
    progress: bool,
) -> None:
    """Start the sandbox in the background and write DIR/sandbox.env. Safe to run twice.

    \b
    Example:
      paynb sandbox up --dir .sandbox --cfs-latency-ms 100
      paynb sandbox up --dir .sandbox --cfs-fault-rate 0.1 --cfs-token-ttl-s 5   # restarts CFS with faults
    """
    from paynb.sandbox.manager import CfsKnobs, Sandbox

    box = Sandbox(directory)
    env = box.up(
        scale=scale,
        seed=seed,
        progress=progress,
        echo=lambda m: click.echo(m, err=True),
        cfs=CfsKnobs(
            latency_ms=cfs_latency_ms,
            fault_rate=cfs_fault_rate,
            burst_429=cfs_burst_429,
            token_ttl_s=cfs_token_ttl_s,
            drop_rate=cfs_drop_rate,
        ),
    )
    click.echo(f"sandbox ready in {box.root}")
    click.echo(f"  settings: {box.env_path}")
    click.echo(f'            use them: source {box.env_path}   (or: eval "$(paynb sandbox env {directory})")')
    # the reader's password stays in sandbox.env (0600); the screen gets the URL without it
    shown = make_url(env["PAYNB_DATABASE_URL"]).render_as_string(hide_password=True)
    click.echo(f"  database: {shown}")
    click.echo(f"  cfs:      {env['PAYNB_CFS_BASE_URL']}")
    click.echo(f"  gcs:      {env['STORAGE_EMULATOR_HOST']} (pay bucket {env['PAYNB_BUCKET_URL']}, archive)")
    click.echo(f"  s3:       http://{env['PAYNB_S3_ENDPOINT']} (legacy MinIO store: pre-2025-08 files)")


@sandbox.command()
@DIR_OPTION
@click.option("--purge", is_flag=True, help="Also delete the folder and its data.")
def down(directory: str, purge: bool) -> None:
    """Stop everything `sandbox up` started.

    \b
    Example:
      paynb sandbox down --dir .sandbox --purge
    """
    from paynb.sandbox.manager import Sandbox

    stopped = Sandbox(directory).down(purge=purge)
    click.echo(
        f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}"
        + (" (purged)" if purge else "")
    )


@sandbox.command()
@DIR_OPTION
@json_option
def status(directory: str, as_json: bool) -> None:
    """Show which sandbox components run.

    \b
    Example:
      paynb sandbox status --dir .sandbox --json
    """
    from paynb.sandbox.manager import Sandbox

    rows = Sandbox(directory).status()
    if as_json:
        print_json(rows)
    else:
        print_table(rows_frame(rows))
    if any(r["state"] != "running" for r in rows):
        raise click.exceptions.Exit(1)


@sandbox.command("env")
@click.argument("directory", default=".sandbox", required=False, type=click.Path())
def env_command(directory: str) -> None:
    """Print the sandbox's settings as `export` lines, for `eval` in a shell.

    \b
    Example:
      eval "$(paynb sandbox env .sandbox)" && paynb doctor
    """
    from paynb.sandbox.manager import Sandbox, export_lines

    for line in export_lines(Sandbox(directory).read_env()):
        click.echo(line)


@sandbox.command()
@json_option
def scenarios(as_json: bool) -> None:
    """List the runbook scenarios the generator injected, with the ids each touched.

    The ids are pay-db primary keys of the table named on each row: for payment_accounts that is
    payment_accounts.id, which report filters take as --account-id (--auth-account takes the auth account id).
    Reads the database of PAYNB_DATABASE_URL (source DIR/sandbox.env first).

    \b
    Example:
      source .sandbox/sandbox.env && paynb sandbox scenarios
    """
    from paynb import db
    from paynb.sandbox.scenarios import list_scenarios

    with db.read_connection() as conn:
        df = list_scenarios(conn)
    if as_json:
        print_json(df.to_dict(orient="records"))
        return
    # a large sandbox lists thousands of ids per scenario: show the count and the first few
    view = df.drop(columns=["details"], errors="ignore").copy()
    view["count"] = view["ids"].map(len)
    view["ids"] = view["ids"].map(lambda ids: ", ".join(map(str, ids[:5])) + (" …" if len(ids) > 5 else ""))
    view["description"] = view["description"].map(lambda d: d if len(d) <= 70 else d[:69] + "…")
    view = view.rename(columns={"ids": "ids (primary keys of table)"})
    print_table(view[["name", "table", "count", "ids (primary keys of table)", "description"]])
    click.echo(
        "\nThe ids are each table's own id; payment_accounts ids go to --account-id, not --auth-account."
        "\nAll ids and details: paynb sandbox scenarios --json"
    )


commands = [sandbox]
