"""Options shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from paynb.timez import MAX_DAYS

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of a table."
)

_EXPORT_KEY = "paynb.export"


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> object:
    if param.name in ("csv", "xlsx"):
        value = writable_file(ctx, param, value)  # type: ignore[arg-type]
    ctx.meta.setdefault(_EXPORT_KEY, {})[param.name] = value
    if param.name == "wide":
        from paynb.output import set_wide

        set_wide(bool(value))
    return value


def report_options(fn):  # type: ignore[no-untyped-def]
    """``--csv FILE``, ``--xlsx FILE`` and ``--wide`` for a report command; the command hands its tables
    to :func:`export_report` (the values never reach its signature)."""
    for option in reversed(
        [
            click.option(
                "--csv",
                "csv",
                type=click.Path(dir_okay=False),
                expose_value=False,
                callback=_remember,
                help="Also write the report's main table to this CSV file (money as exact decimals).",
            ),
            click.option(
                "--xlsx",
                "xlsx",
                type=click.Path(dir_okay=False),
                expose_value=False,
                callback=_remember,
                help="Also write every table of the report to this Excel file, one sheet each.",
            ),
            click.option(
                "--wide",
                "wide",
                is_flag=True,
                expose_value=False,
                callback=_remember,
                help="Print every column at full width (default: tables fit 120 columns).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def export_report(tables: dict[str, Any]) -> None:
    """Write ``tables`` (name -> DataFrame, main table first) to the --csv/--xlsx files asked for, if any."""
    chosen = click.get_current_context().meta.get(_EXPORT_KEY, {})
    if not chosen.get("csv") and not chosen.get("xlsx"):
        return
    from paynb.exports import export_tables

    for path in export_tables(tables, csv=chosen.get("csv"), xlsx=chosen.get("xlsx")):
        click.echo(f"wrote {path}", err=True)


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


def _old_account_flag(ctx: click.Context, param: click.Parameter, value: object) -> object:
    if value is not None:
        raise click.UsageError(
            "--account is ambiguous and no longer taken: use --auth-account AUTH_ID (the auth account id,"
            " payment_accounts.auth_account_id) or --account-id ID (pay-db's payment_accounts.id, the id"
            " `paynb sandbox scenarios` shows)",
            ctx=ctx,
        )
    return value


def account_options(fn):  # type: ignore[no-untyped-def]
    """``--auth-account AUTH_ID`` and ``--account-id ID``, named for the id each takes; the old ``--account``
    fails naming both. The command calls :func:`auth_account_filter` with the two values."""
    for option in reversed(
        [
            click.option(
                "--auth-account",
                "auth_account",
                default=None,
                metavar="AUTH_ID",
                help="Only this auth account (payment_accounts.auth_account_id).",
            ),
            click.option(
                "--account-id",
                "account_id",
                default=None,
                type=int,
                metavar="ID",
                help="Only this pay-db payment account (payment_accounts.id, as `paynb sandbox scenarios` shows).",
            ),
            click.option(
                "--account", "old_account", hidden=True, expose_value=False, callback=_old_account_flag
            ),
        ]
    ):
        fn = option(fn)
    return fn


def auth_account_filter(auth_account: str | None, account_id: int | None) -> str | None:
    """The auth account id to filter on; ``--account-id`` is looked up in pay-db. An id that matches no
    account fails (saying which flag the number probably belongs to) instead of printing an empty report."""
    if auth_account is None and account_id is None:
        return None
    from paynb import db
    from paynb.errors import InputError

    if auth_account is not None and account_id is not None:
        raise InputError("give --auth-account or --account-id, not both", field="--account-id")
    with db.read_connection() as conn:
        if account_id is not None:
            row = db.fetch_one(
                conn, "SELECT auth_account_id FROM payment_accounts WHERE id = :i", {"i": account_id}
            )
            if row is None or not row["auth_account_id"]:
                raise InputError(
                    f"no payment account with id {account_id}"
                    + (" has an auth account id" if row is not None else ""),
                    field="--account-id",
                    hint="`paynb sandbox scenarios` and pay-db's payment_accounts.id are these ids",
                )
            return str(row["auth_account_id"])
        auth = auth_account.strip()
        if db.fetch_one(conn, "SELECT 1 AS x FROM payment_accounts WHERE auth_account_id = :a", {"a": auth}):
            return auth
        other = db.fetch_one(
            conn,
            "SELECT auth_account_id FROM payment_accounts WHERE id = :i",
            {"i": int(auth) if auth.isdigit() else -1},
        )
    hint = (
        f"payment account id {auth} has auth account {other['auth_account_id']}: use --account-id {auth}"
        if other and other["auth_account_id"]
        else "check the id; --account-id takes pay-db's payment_accounts.id instead"
    )
    raise InputError(f"no payment account has auth account id {auth}", field="--auth-account", hint=hint)


def read_file_or_key(
    text: str, *, legacy_bucket: str | None = None, folders: tuple[str, ...] = ()
) -> tuple[bytes, str]:
    """(bytes, name to show) of a local file, or else of a bucket object: an ``s3://`` URL, a key in the
    configured bucket (``cgi_feedback/FEEDBACK…``, as reports print them), a bare name in one of
    ``folders``, or in the legacy bucket. An object that is nowhere fails naming every place tried."""
    from pathlib import Path

    from paynb.context import Env
    from paynb.errors import InputError, StoreError

    text = text.strip()
    local = Path(text)
    if local.is_file():
        return local.read_bytes(), text
    if local.is_dir():
        raise InputError("is a folder, not a file", file=text)
    from paynb.store.buckets import legacy_root, pay_bucket_url

    env = Env.from_environment()
    settings = env.settings
    places: list[tuple[str, str]] = []  # (store url, key)
    bucket_url = pay_bucket_url(settings)
    if "://" in text:
        scheme, _, rest = text.partition("://")
        bucket, _, key = rest.partition("/")
        places.append((f"{scheme}://{bucket}", key))
    elif bucket_url:
        keys = [text] if "/" in text else [f"{f.rstrip('/')}/{text}" for f in folders] or [text]
        places += [(bucket_url.rstrip("/"), k) for k in keys]
    root = legacy_root(settings)
    if legacy_bucket and root and "/" not in text:
        places.append((root + legacy_bucket, text))
    tried = [f"local file {text}"]
    for url, key in places:
        tried.append(f"{url}/{key}")
        try:
            store = env.store(url)
            if store.stat(key) is not None:
                return store.get(key), f"{url}/{key}"
        except StoreError as err:
            tried[-1] += f" ({str(err).splitlines()[0]})"
    if not bucket_url and "://" not in text:
        tried.append("no pay bucket is configured (PAYNB_BUCKET_URL or PAYNB_BUCKET)")
    raise InputError("not found (tried: " + "; ".join(tried) + ")", file=text)
