"""CLI: ``paynb run``, ``paynb runs list|show``, ``paynb audit verify``, ``paynb archive flush``.

Thin: each command parses options and calls :mod:`paynb.jobs`.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any

import click
import pandas as pd

from paynb.cli import exits
from paynb.cli.options import json_option
from paynb.errors import SecretLeak
from paynb.jobs.params import REDACTED
from paynb.output import dumps, format_table, print_json, print_table

# exit codes of `paynb run` (2 is bad input, as for every paynb command)
# (a data fix refusing inside the notebook is failure_kind "refused": the runner decides, docs/exit-codes.md)
EXIT_FAILED = {
    "cell_error": exits.CELL_ERROR,
    "timeout": exits.TIMEOUT,
    "dead_kernel": exits.DEAD_KERNEL,
    "kernel_error": exits.FAILED,
    "refused": exits.REFUSED,
}
EXIT_SECRET_LEAK = exits.SECRET_LEAK


@click.command("run")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A parameter value, converted strictly to the type the notebook declares. Repeatable.",
)
@click.option(
    "-f",
    "--params-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML mapping of parameters (values stay text until converted; -p wins on a clash).",
)
@click.option(
    "--archive",
    "archive_url",
    metavar="URL",
    help="file://DIR, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX (default: PAYNB_ARCHIVE_URL, else <data dir>/archive).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.IntRange(min=1),
    metavar="S",
    help="Stop a cell that runs longer than S seconds (the run fails with `timeout`).",
)
@click.option(
    "--kernel",
    "kernel_name",
    metavar="NAME",
    help="A named kernelspec (default: a kernel running paynb's own Python).",
)
@click.option(
    "--idempotency-key", metavar="KEY", help="Refuse to start if a successful run already recorded KEY."
)
@click.option("--help-notebook", is_flag=True, help="Print the notebook's parameters and exit.")
@json_option
def run_command(
    notebook: Path,
    parameters: tuple[tuple[str, str], ...],
    params_file: Path | None,
    archive_url: str | None,
    timeout_s: int | None,
    kernel_name: str | None,
    idempotency_key: str | None,
    help_notebook: bool,
    as_json: bool,
) -> None:
    """Run NOTEBOOK as an auditable job: typed parameters, run record, redaction, archive, ledger.

    Exit codes: 0 succeeded, 2 bad input (nothing ran), 3 cell error, 4 timeout, 5 dead kernel,
    6 secret found in the output (nothing archived), 7 refused: a data fix refused to apply (wrong or
    missing confirm, the data changed, an edited plan; nothing applied; the run is recorded `refused`),
    1 anything else (docs/exit-codes.md).

    \b
    Example:
      paynb run notebooks/reports/stale_invoices.ipynb -p days 20 -p method PAD
      paynb run notebooks/reports/stale_invoices.ipynb --help-notebook
      paynb run fix.ipynb -f params.yaml --archive s3://pay-archive/paynb --timeout 600
    """
    from paynb.bundled import resolve_notebook
    from paynb.jobs.params import read_notebook_schema
    from paynb.settings import get_settings

    notebook = resolve_notebook(notebook)  # a notebook shipped with paynb, when there is no such file here
    settings = get_settings()
    if help_notebook:
        schema = read_notebook_schema(notebook, secret_values=settings.secret_values())
        if as_json:
            print_json(schema.to_dict())
            return
        rows = [p.to_dict() for p in schema.params.values()]
        frame = pd.DataFrame(rows, columns=["name", "type", "default", "help", "redact"])
        print_table(frame, title=f"Parameters of {notebook}")
        return

    from paynb.jobs.runner import run_notebook

    # an unreachable store is reported once, clearly, by the spool message; not by urllib3's retry log
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    given = dict(parameters)
    try:
        result = run_notebook(
            notebook,
            given,
            params_file=params_file,
            archive_url=archive_url,
            timeout_s=timeout_s,
            settings=settings,
            kernel_name=kernel_name,
            idempotency_key=idempotency_key,
            progress=not as_json,
        )
    except SecretLeak as err:
        click.echo(f"error: {err}", err=True)
        raise click.exceptions.Exit(EXIT_SECRET_LEAK) from None
    if as_json:
        print_json(result.to_dict())
    else:
        print_recorded_result(result.record, notebook=str(notebook), given=given)
        click.echo(f"run id   {result.run_id}")
        click.echo(f"status   {result.message}")
        if result.archive_state == "spooled":
            click.echo(f"archive  SPOOLED locally for {result.archive_url}")
            click.echo(f"         ({result.spool_reason}); deliver it with `paynb archive flush`")
        else:
            click.echo(f"archive  {result.archive_url}")
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED.get(result.failure_kind or "", exits.FAILED))


def summary_frame(summary: Any) -> pd.DataFrame | None:
    """The table a notebook recorded with ``paynb.jobs.record(summary=...)``, or None."""
    if isinstance(summary, dict) and summary.get("columns"):
        return pd.DataFrame(summary["rows"], columns=summary["columns"])
    if isinstance(summary, dict) and summary:
        return pd.DataFrame([{"field": k, "value": dumps(v, indent=None)} for k, v in summary.items()])
    if isinstance(summary, list) and summary and all(isinstance(r, dict) for r in summary):
        return pd.DataFrame(summary)
    return None


def print_recorded_result(record: dict[str, Any], *, notebook: str, given: dict[str, str]) -> None:
    """What the notebook recorded: its summary table, rows affected, and for a data fix's dry run the
    plan sha256 with the exact command that applies it."""
    frame = summary_frame(record.get("summary"))
    if frame is not None:
        summary = record["summary"]
        more = " (first rows)" if isinstance(summary, dict) and summary.get("truncated") else ""
        click.echo(format_table(frame, title=f"Result recorded by the notebook{more}"))
        click.echo("")
    if record.get("rows_affected") is not None:
        click.echo(
            f"rows     {record['rows_affected']} affected" + (" (dry run)" if record.get("dry_run") else "")
        )
    sha = record.get("plan_sha256")
    if not sha:
        return
    click.echo(f"plan     sha256 {sha}")
    if record.get("dry_run") and record.get("status") == "succeeded":
        shown = record.get("parameters") or {}
        # a redacted parameter stays hidden here too: the operator types it again
        keep = [
            f"-p {k} " + ("'<your value>'" if shown.get(k) == REDACTED else shlex.quote(str(v)))
            for k, v in given.items()
            if k not in ("dry_run", "confirm")
        ]
        click.echo("apply    after review, run:")
        click.echo(
            f"  paynb run {shlex.quote(notebook)} {' '.join([*keep, '-p dry_run False', f'-p confirm {sha}'])}"
        )


@click.group("runs")
def runs_group() -> None:
    """The ledger: every `paynb run` and every apply of a data fix, newest first.

    \b
    Example:
      paynb runs list --limit 10
      paynb runs list --applies --since 7d
      paynb runs show 0193a1b2
      paynb runs open 0193a1b2
      paynb runs site --out ./run-index
    """


# the table stays within 120 columns; --json has every value in full
_WIDTHS = {"id": 18, "started": 16, "what": 28, "status": 9, "rows": 4, "by": 10, "detail": 21}


@runs_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many rows.")
@click.option("--kind", metavar="KIND", help="run, apply, or a fix kind (e.g. pad.partial_credit).")
@click.option(
    "--status",
    metavar="STATUS",
    help="succeeded, failed, killed, running, unknown; for applies also applied, already_applied, "
    "resumed, nothing_to_do.",
)
@click.option(
    "--since", metavar="WHEN", help="Only since a date (2026-03-01), a UTC time, or an age (12h, 7d)."
)
@click.option(
    "--notebook", metavar="TEXT", help="Only runs whose notebook path contains TEXT (and their applies)."
)
@click.option(
    "--until", metavar="WHEN", help="Only before a date, a UTC time, or an age (same forms as --since)."
)
@click.option("--by", "by", metavar="NAME", help="Only runs and applies by this operator (part of the name).")
@click.option("--applies", "applies_only", is_flag=True, help="Only applies of data fixes.")
@click.option("--runs", "runs_only", is_flag=True, help="Only notebook runs.")
@json_option
def runs_list(
    limit: int,
    kind: str | None,
    status: str | None,
    since: str | None,
    notebook: str | None,
    until: str | None,
    by: str | None,
    applies_only: bool,
    runs_only: bool,
    as_json: bool,
) -> None:
    """List recent runs and applies. A run that started and never ended shows as killed (its process is
    gone), running, or unknown (it ran on another host).

    \b
    Example:
      paynb runs list --limit 50 --json
      paynb runs list --applies --status failed
      paynb runs list --kind run --status killed --since 2026-03-01
      paynb runs list --notebook pad_credit --since 24h
      paynb runs list --runs --by alice --since 2026-03-01 --until 2026-03-08
    """
    from paynb.ledger import open_ledger
    from paynb.ledger.history import activities, notebooks_by_run, parse_since, select

    when = parse_since(since) if since else None
    before = _parse_until(until) if until else None
    if _no_ledger_yet(as_json):
        return
    found = activities(open_ledger())
    rows = select(
        found,
        kind=kind,
        status=status,
        since=when,
        notebook=notebook,
        applies_only=applies_only,
        limit=limit,
        notebooks=notebooks_by_run(found),
        until=before,
        by=by,
        runs_only=runs_only,
    )
    if as_json:
        print_json([a.to_dict() for a in rows])
        return
    print_table(pd.DataFrame([_activity_row(a) for a in rows], columns=list(_WIDTHS)))


def _parse_until(text: str) -> Any:
    from paynb.errors import InputError
    from paynb.ledger.history import parse_since

    try:
        return parse_since(text)
    except InputError:
        raise InputError(
            "give a date (2026-03-01), a time (2026-03-01T08:00) or an age (12h, 7d)", field="until"
        ) from None


@runs_group.command("open")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files (default: <data dir>/opened).",
)
@click.option("--browser/--no-browser", default=True, help="Open the HTML in a browser when there is one.")
@json_option
def runs_open(run_id: str, out_dir: Path | None, browser: bool, as_json: bool) -> None:
    """Fetch a run's archived HTML and notebook (checked against their sha256 in the run record) to local
    files and print their paths; opens the HTML in a browser when one is available.

    \b
    Example:
      paynb runs open 0193a1b2
      paynb runs open 0193a1b2 --out ./review --no-browser
    """
    from paynb.jobs.browse import browser_available, open_in_browser, open_run
    from paynb.ledger import open_ledger
    from paynb.settings import get_settings

    settings = get_settings()
    opened = open_run(run_id, ledger=open_ledger(settings), settings=settings, out_dir=out_dir)
    shown = browser and browser_available() and open_in_browser(opened.html_path)
    if as_json:
        print_json(
            {
                "run_id": opened.run_id,
                "notebook": opened.notebook,
                "html": str(opened.html_path),
                "ipynb": str(opened.notebook_path),
                "browser": bool(shown),
            }
        )
        return
    click.echo(f"run      {opened.run_id} ({opened.notebook})")
    click.echo(f"html     {opened.html_path}")
    click.echo(f"notebook {opened.notebook_path}")
    if not shown:
        click.echo(f"open it: {opened.html_path.as_uri()}")


@runs_group.command("site")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the pages (and copies of the archived HTML) to this folder.",
)
@click.option(
    "--archive",
    "to_archive",
    is_flag=True,
    help="Also write the pages into the archive (PAYNB_ARCHIVE_URL) under site/, linking to the runs there.",
)
@click.option("--no-verify", is_flag=True, help="Skip `audit verify` (the verify column says not checked).")
@json_option
def runs_site(out_dir: Path | None, to_archive: bool, no_verify: bool, as_json: bool) -> None:
    """Build a static HTML index of the runs for auditors: by day and by notebook, with status, operator,
    redacted parameters, verify state and links to the archived HTML. No JavaScript.

    \b
    Example:
      paynb runs site --out ./run-index && xdg-open ./run-index/index.html
      paynb runs site --out ./run-index --archive
    """
    from paynb.errors import InputError
    from paynb.jobs.archive import default_archive_url
    from paynb.jobs.site import build_site
    from paynb.ledger import open_ledger
    from paynb.settings import get_settings

    if out_dir is None and not to_archive:
        raise InputError("say where the pages go", field="--out", hint="paynb runs site --out ./run-index")
    settings = get_settings()
    results = build_site(
        ledger=open_ledger(settings),
        settings=settings,
        out_dir=out_dir,
        archive_url=default_archive_url(settings) if to_archive else None,
        verify_runs=not no_verify,
    )
    if as_json:
        print_json([r.__dict__ for r in results])
        return
    for r in results:
        click.echo(f"{len(r.pages)} page(s) for {r.runs} run(s), {r.copied} archived HTML file(s) copied")
        click.echo(f"  open {r.where}")
        for problem in r.problems:
            click.echo(f"  warning: {problem}", err=True)


def _cut(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _activity_row(a: Any) -> dict[str, str]:
    what = f"{a.type} {a.what}"
    row = {
        "id": a.id,
        "started": a.started_at[:16].replace("T", " "),
        "what": what,
        "status": a.status,
        "rows": a.rows_affected,
        "by": a.by,
        "detail": a.detail,
    }
    shown = {k: _cut(v, _WIDTHS[k]) for k, v in row.items()}
    shown["id"] = a.id[: _WIDTHS["id"]]  # a prefix `runs show` accepts (the full id is in --json)
    return shown


def _no_ledger_yet(as_json: bool) -> bool:
    """Say that no run has been recorded here (and create nothing) when the local ledger is absent."""
    from paynb.ledger import missing_local_ledger
    from paynb.settings import get_settings

    path = missing_local_ledger(get_settings())
    if path is None:
        return False
    if as_json:
        print_json([])
    else:
        click.echo(f"no runs recorded yet: {path} does not exist (`paynb run` creates it)")
    return True


@runs_group.command("show")
@click.argument("run_id")
@json_option
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run (its record and archived objects) or one apply (its plan, before/after and what it
    touched). RUN_ID is a run or apply id, or its first 8+ characters.

    \b
    Example:
      paynb runs show 0193a1b2-7c3d
      paynb runs show 0193a1b2 --json
    """
    from paynb.ledger import open_ledger
    from paynb.ledger.history import find_activity

    ledger = open_ledger()
    activity = find_activity(ledger, run_id)
    if activity.type == "apply":
        _show_apply(activity, as_json)
        return
    last = activity.entries[-1]
    if last.event == "started":
        doc = {"status": activity.status, "seq": last.seq, "started": last.record}
        if as_json:
            print_json(doc)
            return
        facts = {
            "run_id": activity.id,
            "notebook": activity.what,
            "status": f"{activity.status} (never finished)",
            "actor": activity.by,
            "host": last.record.get("host"),
            "pid": last.record.get("pid"),
            "started_at": activity.started_at,
            "parameters": ", ".join(f"{k}={v}" for k, v in last.record.get("parameters", {}).items()),
        }
        _print_facts(facts)
        return
    entry = last
    objects = [
        {
            "name": o.name,
            "url": f"{o.store_url.rstrip('/')}/{o.key}",
            "version_id": o.version_id or "",
            "sha256": o.sha256,
        }
        for o in ledger.objects(entry.ref).values()
    ]
    applies = [a.entries[-1] for a in _applies_in(ledger, entry.ref)]
    if as_json:
        print_json(
            {
                "seq": entry.seq,
                "record_hash": entry.record_hash,
                "record": entry.record,
                "objects": objects,
                "applies": [
                    {"apply_id": e.ref, "fix": e.subject, "status": e.status, "seq": e.seq} for e in applies
                ],
            }
        )
        return
    rec = entry.record
    facts = {
        "run_id": rec["run_id"],
        "notebook": f"{rec['notebook']['path']} (sha256 {rec['notebook']['sha256'][:12]}…)",
        "status": rec["status"] + (f" ({rec['failure_kind']})" if rec.get("failure_kind") else ""),
        "detail": (rec.get("failure_detail") or {}).get("message", ""),
        "actor": f"{rec['actor']} on {rec['host']}",
        "started_at": rec["started_at"],
        "duration": f"{rec['duration_ms'] / 1000:.1f} s",
        "code": f"paynb {rec['paynb_version']}, git {rec['git']['commit'] or '-'}"
        + (" (dirty)" if rec["git"]["dirty"] else ""),
        "parameters": ", ".join(f"{k}={v}" for k, v in rec["parameters"].items()) or "(defaults)",
        "dry_run": rec.get("dry_run"),
        "rows_affected": rec.get("rows_affected"),
        "plan_sha256": rec.get("plan_sha256"),
        "idempotency_key": rec.get("idempotency_key"),
        "record_hash": entry.record_hash,
        "previous_record_hash": rec.get("previous_record_hash"),
        "archive": (rec.get("archive") or {}).get("url", "none"),
    }
    _print_facts(facts)
    if applies:
        click.echo("")
        print_table(
            pd.DataFrame(
                [
                    {
                        "apply_id": e.ref,
                        "fix": e.subject,
                        "status": e.status,
                        "rows": e.record.get("rows_affected", ""),
                    }
                    for e in applies
                ]
            ),
            title="Applies in this run",
        )
    if objects:
        click.echo("")
        print_table(pd.DataFrame(objects), title="Archived objects")


def _applies_in(ledger: Any, run_id: str) -> list[Any]:
    from paynb.ledger.history import activities

    return [a for a in activities(ledger) if a.type == "apply" and a.run_id == run_id]


def _print_facts(facts: dict[str, Any]) -> None:
    print_table(pd.DataFrame([{"field": k, "value": "" if v is None else str(v)} for k, v in facts.items()]))


def _show_apply(activity: Any, as_json: bool) -> None:
    started = activity.entries[0].record
    last = activity.entries[-1]
    ended = last.record if last.event != "started" else {}
    plan = started.get("plan", {})
    if as_json:
        print_json(
            {
                "type": "apply",
                "apply_id": activity.id,
                "fix": activity.what,
                "status": activity.status,
                "run_id": activity.run_id,
                "entries": [
                    {"seq": e.seq, "event": e.event, "record_hash": e.record_hash, "record": e.record}
                    for e in activity.entries
                ],
                "plan": plan,
                "before": ended.get("before"),
                "after": ended.get("after"),
                "touched": ended.get("touched"),
            }
        )
        return
    operator = started.get("operator", {})
    facts = {
        "apply_id": activity.id,
        "fix": activity.what,
        "status": activity.status,
        "detail": activity.detail,
        "plan_sha256": started.get("plan_sha256"),
        "operator": f"{operator.get('name')} (OS user {operator.get('os_user')} on {operator.get('host')})",
        "ticket": started.get("ticket"),
        "reason": started.get("reason"),
        "run_id": activity.run_id or "(not inside paynb run)",
        "started_at": started.get("started_at"),
        "ended_at": ended.get("ended_at", ""),
        "rows_affected": ended.get("rows_affected", ""),
        "ledger seq": ", ".join(str(e.seq) for e in activity.entries),
    }
    _print_facts(facts)
    click.echo("")
    click.echo(f"Plan: {plan.get('summary') or '(no summary)'}")
    for warning in plan.get("warnings", []):
        click.echo(f"  warning: {warning}")
    body = {k: v for k, v in (plan.get("body") or {}).items() if k != "params"}
    print_table(
        pd.DataFrame([{"field": k, "value": _cut(dumps(v, indent=None), 100)} for k, v in body.items()])
    )
    before, after = ended.get("before") or {}, ended.get("after") or {}
    if before or after:
        click.echo("")
        keys = list(dict.fromkeys([*before, *after]))
        print_table(
            pd.DataFrame(
                [
                    {
                        "field": k,
                        "before": _cut(dumps(before.get(k), indent=None), 48),
                        "after": _cut(dumps(after.get(k), indent=None), 48),
                    }
                    for k in keys
                ]
            ),
            title="Before / after",
        )
    touched = ended.get("touched") or {}
    items = [(part, item) for part in ("rows", "objects", "cfs") for item in touched.get(part, [])]
    if items:
        click.echo("")
        print_table(
            pd.DataFrame(
                [{"what": part, "item": _cut(dumps(item, indent=None), 100)} for part, item in items]
            ),
            title="Touched",
        )


@click.group("audit")
def audit_group() -> None:
    """Check archived runs against the ledger.

    \b
    Example:
      paynb audit verify --all
    """


@audit_group.command("verify")
@click.argument("run_id", required=False)
@click.option(
    "--all",
    "check_all",
    is_flag=True,
    help="Verify the whole chain: every run, apply and intent (and the archive).",
)
@json_option
def audit_verify(run_id: str | None, check_all: bool, as_json: bool) -> None:
    """Check the ledger's hash chain (keyed or not: the `ledger` row says which), its intents and its
    newest anchor in the archive, then re-read every archived object of the runs.

    Each item is ok, missing, chain_broken or tampered; the exit code is 1 if any is not ok. RUN_ID may
    also be an apply id.

    \b
    Example:
      paynb audit verify 0193a1b2
      paynb audit verify --all --json
    """
    from paynb.jobs.audit import verify

    if _no_ledger_yet(as_json):
        if run_id:
            raise click.exceptions.Exit(exits.FAILED)
        return
    results = verify(run_id, all=check_all)
    rows = [r.to_dict() for r in results]
    if as_json:
        print_json(rows)
    else:
        shown = [{**r, "detail": _cut(r["detail"], 300)} for r in rows]
        print_table(pd.DataFrame(shown, columns=["kind", "id", "state", "detail"]))
        bad = sum(1 for r in results if not r.ok)
        click.echo(f"{len(results)} item(s) checked, {bad} with problems")
    if any(not r.ok for r in results):
        raise click.exceptions.Exit(exits.FAILED)


@click.group("archive")
def archive_group() -> None:
    """The run archive and its local spool.

    \b
    Example:
      paynb archive flush
    """


@archive_group.command("flush")
@json_option
def archive_flush(as_json: bool) -> None:
    """Deliver runs that were spooled locally because the store was unreachable.

    \b
    Example:
      paynb archive flush --json
    """
    from paynb.jobs.archive import flush_spool
    from paynb.ledger import open_ledger
    from paynb.settings import get_settings

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # failures show in the table
    settings = get_settings()
    results = flush_spool(settings, open_ledger(settings))
    rows = [
        {
            "run_id": r.run_id,
            "store": r.store_url,
            "delivered": ", ".join(r.delivered),
            "remaining": ", ".join(r.remaining),
            "error": r.error or "",
        }
        for r in results
    ]
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("the spool is empty")
    else:
        print_table(pd.DataFrame(rows))
    if any(r.remaining for r in results):
        raise click.exceptions.Exit(exits.FAILED)


commands: list[click.Command] = [run_command, runs_group, audit_group, archive_group]
