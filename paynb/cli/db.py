"""CLI: ``paynb db check|reindex|activity|signal|lint-migrations|migrate-manually`` (pay-db health)."""

from __future__ import annotations

from pathlib import Path

import click

from paynb.cli import exits
from paynb.cli.options import export_report, fix_exit_codes, json_option, report_options
from paynb.output import format_table, print_json

# exit code of a health command that found a problem (docs/exit-codes.md)
FINDINGS_EXIT = exits.FINDINGS


@click.group()
def db() -> None:
    """pay-db health: corrupted indexes, duplicate keys, long queries, migration guards.

    \b
    Examples:
      paynb db check --tables invoices,invoice_references
      paynb db reindex plan --out reindex.json
      paynb db activity --min-seconds 120
      paynb db lint-migrations pay-api/migrations/versions
    """


def _tables(value: str | None) -> list[str]:
    return [t.strip() for t in (value or "").split(",") if t.strip()]


@db.command()
@click.option("--tables", default=None, help="Comma-separated tables (default: every pay-db table).")
@click.option("--index", "indexes", multiple=True, help="Only this index (repeatable).")
@click.option(
    "--heapallindexed", is_flag=True, help="amcheck: also check every heap row has its index entry."
)
@click.option(
    "--method",
    type=click.Choice(["auto", "amcheck", "probe"]),
    default="auto",
    show_default=True,
    help="amcheck when installed (auto), or the forced index-scan probe.",
)
@click.option("--statement-timeout-ms", default=60_000, show_default=True, type=click.IntRange(1, 86_400_000))
@json_option
@report_options
def check(
    tables: str | None,
    indexes: tuple[str, ...],
    heapallindexed: bool,
    method: str,
    statement_timeout_ms: int,
    as_json: bool,
) -> None:
    """Check B-tree indexes one at a time (read-only, with timeouts). Exits 1 when one is broken.

    \b
    Example:
      paynb db check --tables invoices --heapallindexed
    """
    from tqdm.auto import tqdm

    from paynb.ops.dbhealth import check_indexes

    report = check_indexes(
        tables=_tables(tables) or None,
        indexes=list(indexes) or None,
        heapallindexed=heapallindexed,
        method=method,  # type: ignore[arg-type]
        statement_timeout_ms=statement_timeout_ms,
        progress=None if as_json else lambda items: tqdm(items, desc="indexes", unit="index", leave=False),
    )
    export_report({"indexes": report.to_frame()})
    if as_json:
        print_json(report.to_dict())
    else:
        shown = report.to_frame()
        if not shown.empty:
            shown = shown[shown["status"] != "ok"]
        counts = report.to_dict()["counts"]
        click.echo(
            f"{len(report.checks)} indexes checked by {report.method}: {counts['ok']} ok, {counts['corrupt']} corrupt, "
            f"{counts['invalid']} invalid, {counts['unchecked']} unchecked"
        )
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        if not shown.empty:
            click.echo(format_table(shown))
        if report.broken:
            click.echo("next: paynb db reindex plan --out reindex.json")
    if report.broken:
        raise click.exceptions.Exit(FINDINGS_EXIT)


def _emit_plan(plan, out: Path | None, as_json: bool) -> None:
    from paynb.files import write_private

    if out is not None:
        try:
            write_private(out, plan.to_json() + "\n")
        except OSError as err:
            raise click.BadParameter(f"cannot write {out}: {err.strerror}", param_hint="--out") from None
    if as_json:
        print_json({"plan": plan.to_dict(), "sha256": plan.sha256})
        return
    click.echo(plan.summary)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}")
    for statement in plan.body.get("statements", plan.body.get("steps", [])):
        click.echo(f"  {statement}")
    click.echo(f"plan sha256: {plan.sha256}")
    where = str(out) if out else "PLAN.json"
    click.echo(f"to apply: paynb db … apply --plan {where} --confirm {plan.sha256} --ticket T --reason R")


def _apply(kind: str, plan_file: Path, confirm: str, ticket: str, reason: str, as_json: bool) -> None:
    from paynb.fixes import apply_fix, get_fix
    from paynb.plan import Plan

    plan = Plan.read(plan_file)
    with fix_exit_codes():  # 7 refused, 8 failed after a commit, as every fix's apply
        result = apply_fix(get_fix(kind), plan, confirm, ticket=ticket, reason=reason)
    summary = {
        "kind": result.kind,
        "plan_sha256": result.plan_sha256,
        "outcome": result.outcome.status,
        "rows_affected": result.outcome.rows_affected,
        "after": dict(result.outcome.after),
        "verification": dict(result.verification),
        "apply_id": result.apply_id,
    }
    if as_json:
        print_json(summary)
    else:
        for key, value in summary.items():
            click.echo(f"{key}: {value}")


_plan_out = click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan here."
)
_apply_opts = [
    click.option("--plan", "plan_file", required=True, type=click.Path(dir_okay=False, path_type=Path)),
    click.option("--confirm", required=True, help="The plan's sha256, as the plan step printed it."),
    click.option("--ticket", required=True, help="The ticket this fix answers (recorded in the ledger)."),
    click.option("--reason", required=True, help="Why (recorded in the ledger)."),
    json_option,
]


def _with(options):
    def decorate(fn):
        for opt in reversed(options):
            fn = opt(fn)
        return fn

    return decorate


@db.group()
def reindex() -> None:
    """Rebuild only the broken indexes (REINDEX INDEX CONCURRENTLY), duplicates removed first.

    \b
    Example:
      paynb db reindex plan --out reindex.json
      paynb db reindex apply --plan reindex.json --confirm <sha256> --ticket OPS-1 --reason "zero page"
    """


@reindex.command("plan")
@click.option(
    "--index", "indexes", multiple=True, help="Rebuild this index whatever the check says (repeatable)."
)
@click.option("--tables", default=None, help="Only indexes of these comma-separated tables.")
@click.option("--method", type=click.Choice(["auto", "amcheck", "probe"]), default="auto", show_default=True)
@click.option("--heapallindexed", is_flag=True, help="amcheck: also find missing index entries.")
@_plan_out
@json_option
def reindex_plan(indexes, tables, method, heapallindexed, out, as_json) -> None:
    """Check, then plan the rebuild: targets, duplicates with their references, leftovers to drop.

    \b
    Example:
      paynb db reindex plan --index routing_slips_number_key --out reindex.json
    """
    import paynb.ops.dbhealth.reindex  # noqa: F401  registers the fix
    from paynb.context import Env
    from paynb.fixes import get_fix

    plan = get_fix("db.reindex").plan(
        Env.from_environment(),
        indexes=indexes,
        tables=_tables(tables),
        method=method,
        heapallindexed=heapallindexed,
    )
    _emit_plan(plan, out, as_json)


@reindex.command("apply")
@_with(_apply_opts)
def reindex_apply(plan_file, confirm, ticket, reason, as_json) -> None:
    """Apply a reviewed reindex plan (needs PAYNB_DATABASE_ADMIN_URL, a table owner).

    \b
    Example:
      paynb db reindex apply --plan reindex.json --confirm <sha256> --ticket OPS-1 --reason "zero page"
    """
    import paynb.ops.dbhealth.reindex  # noqa: F401

    _apply("db.reindex", plan_file, confirm, ticket, reason, as_json)


@db.command()
@click.option(
    "--min-seconds", default=60.0, show_default=True, type=float, help="Report sessions older than this."
)
@json_option
def activity(min_seconds: float, as_json: bool) -> None:
    """Long-running queries, blocking chains and idle transactions, with the statement to end each.

    \b
    Example:
      paynb db activity --min-seconds 300
      paynb db signal plan 12345 --action cancel --out cancel.json
    """
    from paynb.ops.dbhealth.activity import find_activity

    report = find_activity(min_seconds=min_seconds)
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(f"{report.sessions} other sessions; {len(report.findings)} worth a look")
        if report.findings:
            click.echo(format_table(report.to_frame()))
            click.echo("to run one: paynb db signal plan PID --action cancel|terminate --out signal.json")
    for note in report.notes:
        click.echo(f"incomplete: {note}", err=True)
    if report.notes:  # what this role cannot see is not "nothing to report"
        raise click.exceptions.Exit(exits.INCOMPLETE)


@db.group()
def signal() -> None:
    """Cancel a query or terminate a session, pinned to the session you planned.

    \b
    Example:
      paynb db signal plan 12345 --action terminate --out signal.json
      paynb db signal apply --plan signal.json --confirm <sha256> --ticket OPS-3 --reason "idle tx holds locks"
    """


@signal.command("plan")
@click.argument("pid", type=click.IntRange(1, 2**31 - 1))
@click.option("--action", type=click.Choice(["cancel", "terminate"]), default="cancel", show_default=True)
@_plan_out
@json_option
def signal_plan(pid: int, action: str, out, as_json: bool) -> None:
    """Plan a cancel or terminate of one session.

    \b
    Example:
      paynb db signal plan 12345 --action cancel --out signal.json
    """
    import paynb.ops.dbhealth.activity  # noqa: F401
    from paynb.context import Env
    from paynb.fixes import get_fix

    _emit_plan(
        get_fix("db.signal_backend").plan(Env.from_environment(), pid=pid, action=action), out, as_json
    )


@signal.command("apply")
@_with(_apply_opts)
def signal_apply(plan_file, confirm, ticket, reason, as_json) -> None:
    """Apply a reviewed signal plan; refused if the session is no longer the one planned.

    \b
    Example:
      paynb db signal apply --plan signal.json --confirm <sha256> --ticket OPS-3 --reason "runaway query"
    """
    import paynb.ops.dbhealth.activity  # noqa: F401

    _apply("db.signal_backend", plan_file, confirm, ticket, reason, as_json)


@db.command("lint-migrations")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--large-table", "large", multiple=True, help="Also treat this table as large (repeatable).")
@click.option(
    "--threshold-rows",
    default=None,
    type=click.IntRange(1),
    help="With a configured pay-db, tables estimated at this many rows or more are large too.",
)
@click.option("--no-squawk", is_flag=True, help="Only paynb's own rules.")
@json_option
def lint_migrations_cmd(paths, large, threshold_rows, no_squawk, as_json) -> None:
    """Check alembic migrations (file and line); exits 1 on any finding, for CI.

    \b
    Example:
      paynb db lint-migrations pay-api/migrations/versions --threshold-rows 1000000
    """
    from paynb.ops.dbhealth.lint_migrations import LARGE_TABLES, large_tables_from_db, lint_migrations

    tables = set(LARGE_TABLES) | {t.lower() for t in large}
    if threshold_rows:
        tables |= large_tables_from_db(threshold_rows)
    report = lint_migrations(list(paths), large_tables=tables, use_squawk=not no_squawk)
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(f"{len(report.files)} migration file(s), {len(report.findings)} finding(s)")
        if report.findings:
            click.echo(format_table(report.to_frame()))
        for note in report.notes:
            click.echo(f"note: {note}")
    if report.findings:
        raise click.exceptions.Exit(FINDINGS_EXIT)


@db.group("migrate-manually")
def migrate_manually() -> None:
    """The FAQ's manual migration: close the database, terminate sessions, DDL + alembic_version, re-open.

    \b
    Example:
      paynb db migrate-manually plan --sql add_column.sql --revision 1a2b3c4d5e6f --out mig.json
      paynb db migrate-manually apply --plan mig.json --confirm <sha256> --ticket OPS-4 --reason "DDL on invoices"
    """


@migrate_manually.command("plan")
@click.option("--sql", "sql_file", required=True, type=click.Path(dir_okay=False), help="The DDL to run.")
@click.option("--revision", required=True, help="The alembic revision to record.")
@click.option("--production-ack", is_flag=True, help="Allow it outside the sandbox (a maintenance window).")
@_plan_out
@json_option
def migrate_plan(sql_file, revision, production_ack, out, as_json) -> None:
    """Plan the manual migration (sandbox only unless --production-ack).

    \b
    Example:
      paynb db migrate-manually plan --sql add_column.sql --revision 1a2b3c4d5e6f --out mig.json
    """
    import paynb.ops.dbhealth.manual_migration  # noqa: F401
    from paynb.context import Env
    from paynb.fixes import get_fix

    plan = get_fix("db.manual_migration").plan(
        Env.from_environment(), sql_file=sql_file, revision=revision, production_ack=production_ack
    )
    _emit_plan(plan, out, as_json)


@migrate_manually.command("apply")
@_with(_apply_opts)
def migrate_apply(plan_file, confirm, ticket, reason, as_json) -> None:
    """Apply a reviewed manual-migration plan.

    \b
    Example:
      paynb db migrate-manually apply --plan mig.json --confirm <sha256> --ticket OPS-4 --reason "DDL"
    """
    import paynb.ops.dbhealth.manual_migration  # noqa: F401

    _apply("db.manual_migration", plan_file, confirm, ticket, reason, as_json)


commands = [db]
