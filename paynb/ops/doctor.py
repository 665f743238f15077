"""``paynb doctor``: is every configured dependency reachable, and can the reader role really not write?

The reader role (``PAYNB_DATABASE_URL``) must have no INSERT/UPDATE/DELETE on any pay table: a
``default_transaction_read_only`` session is not enough, since ``SET TRANSACTION READ WRITE`` undoes it.
The writer role (``PAYNB_DATABASE_WRITE_URL``), when configured, must not be a superuser (docs/roles.md).

Each check returns a row (name, ok, detail) and never prints a secret: the database is named by
host:port/db only, CFS by its base URL, the store by bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from paynb.context import Env, resolve_env
from paynb.errors import PaynbError
from paynb.settings import Settings

KNOWN_ALEMBIC_HEAD = "968a2e428d4c"
# the pay tables a reader must not change (the ones fixes write, and the money-bearing core)
PAY_TABLES = (
    "invoices",
    "payment_accounts",
    "payments",
    "receipts",
    "credits",
    "refunds",
    "refunds_partial",
    "invoice_references",
    "payment_line_items",
    "statements",
    "statement_invoices",
    "cas_settlements",
    "cfs_accounts",
    "ejv_files",
    "eft_refunds",
)
WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE")
# for each existing pay table, the write privileges the current role holds
PRIVILEGES_SQL = """
SELECT t.table_name, p.privilege
FROM information_schema.tables t
CROSS JOIN unnest(CAST(:privileges AS text[])) AS p(privilege)
WHERE t.table_schema = 'public' AND t.table_name = ANY(:tables)
  AND has_table_privilege(current_user, format('public.%I', t.table_name), p.privilege)
ORDER BY 1, 2
"""
ROLE_SQL = "SELECT current_user AS role, rolsuper AS super FROM pg_roles WHERE rolname = current_user"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | fail | warn | skipped
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def check_database(settings: Settings) -> list[Check]:
    from paynb import db

    if not settings.database_url:
        return [
            Check("database", "fail", "no database configured (PAYNB_DATABASE_URL or DATABASE_* aliases)")
        ]
    try:
        engine = db.create_engine(settings, run_id="doctor")
        where = db.describe_url(engine.url)
        with db.read_connection(engine) as conn:
            row = db.fetch_one(
                conn,
                "SELECT current_setting('server_version') AS v",
            )
            version = db.alembic_version(conn)
            role, writable = role_privileges(conn)
            sees_sessions = db.sees_all_sessions(conn)
            amcheck = db.amcheck_state(conn)
    except PaynbError as err:
        return [Check("database", "fail", str(err).splitlines()[0])]
    checks = [Check("database", "ok", f"{where} (PostgreSQL {row['v']})"), reader_check(role, writable)]
    checks.append(
        Check("reader sees sessions", "ok", f"role {role['role']} sees every session (db activity)")
        if sees_sessions
        else Check(
            "reader sees sessions",
            "warn",
            f"role {role['role']} cannot see other roles' queries: `paynb db activity` will be incomplete; "
            f"{db.stats_grant(str(role['role']))} (docs/db-health.md#roles)",
        )
    )
    checks.append(_amcheck_check(amcheck, str(role["role"])))
    if version is None:
        checks.append(Check("alembic_version", "fail", "alembic_version is empty"))
    else:
        status = "ok" if version == KNOWN_ALEMBIC_HEAD else "warn"
        note = (
            ""
            if status == "ok"
            else f" (paynb was checked against {KNOWN_ALEMBIC_HEAD}; columns are introspected)"
        )
        checks.append(Check("alembic_version", status, version + note))
    return [*checks, check_writer(settings)]


def _amcheck_check(state: str, role: str) -> Check:
    """How `paynb db check` will verify index pages as this role (docs/db-health.md#roles)."""
    from paynb import db

    name = "index checks"
    if state == "usable":
        return Check(name, "ok", f"amcheck (bt_index_check) runs as {role}")
    if state == "denied":
        return Check(
            name,
            "warn",
            f"amcheck is installed but {role} may not run it, so `db check` uses the slower probe; "
            + db.amcheck_grant(role),
        )
    return Check(name, "ok", "amcheck is not installed: `db check` uses the probe (reads every leaf page)")


def role_privileges(conn) -> tuple[dict[str, object], list[str]]:  # type: ignore[no-untyped-def]
    """(current role and whether it is a superuser, ``table:PRIVILEGE`` it may write)."""
    from paynb import db

    role = db.fetch_one(conn, ROLE_SQL) or {"role": "?", "super": False}
    rows = db.fetch_all(
        conn, PRIVILEGES_SQL, {"privileges": list(WRITE_PRIVILEGES), "tables": list(PAY_TABLES)}
    )
    return role, [f"{r['table_name']}:{r['privilege']}" for r in rows]


def reader_check(role: dict[str, object], writable: list[str]) -> Check:
    """Fail loudly when the reader can write: read-only must be enforced by PostgreSQL, not by a flag."""
    name = "reader cannot write"
    if role.get("super"):
        return Check(
            name,
            "fail",
            f"role {role['role']} is a SUPERUSER and can change any pay table; "
            "point PAYNB_DATABASE_URL at a SELECT-only role (docs/roles.md)",
        )
    if writable:
        shown = ", ".join(writable[:6]) + (f" and {len(writable) - 6} more" if len(writable) > 6 else "")
        return Check(
            name,
            "fail",
            f"role {role['role']} can write pay tables ({shown}); revoke its write privileges "
            "or use a SELECT-only role (docs/roles.md)",
        )
    return Check(name, "ok", f"role {role['role']} has no INSERT/UPDATE/DELETE on the pay tables")


def check_writer(settings: Settings) -> Check:
    """Is a writer URL configured, and is its role not a superuser?"""
    from paynb import db

    name = "writer role"
    if not settings.database_write_url:
        return Check(name, "warn", "PAYNB_DATABASE_WRITE_URL not set: reports work, applies will refuse")
    try:
        engine = db.create_write_engine(settings, run_id="doctor")
        with db.read_connection(engine) as conn:
            role, writable = role_privileges(conn)
    except PaynbError as err:
        return Check(name, "fail", f"PAYNB_DATABASE_WRITE_URL: {str(err).splitlines()[0]}")
    if role.get("super"):
        return Check(
            name,
            "fail",
            f"role {role['role']} is a SUPERUSER; applies need only the fixes' DML (docs/roles.md)",
        )
    return Check(name, "ok", f"role {role['role']} (not a superuser; {len(writable)} table privileges)")


def check_cfs(settings: Settings) -> list[Check]:
    if not settings.cfs_base_url:
        return [Check("cfs", "skipped", "PAYNB_CFS_BASE_URL not set")]
    try:
        from paynb.cfs import CfsClient

        client = CfsClient(settings)
        client.check_credentials()
    except ImportError:
        return [Check("cfs", "skipped", "CFS client not available")]
    except PaynbError as err:
        return [Check("cfs", "fail", f"{settings.cfs_base_url}: {str(err).splitlines()[0]}")]
    return [Check("cfs", "ok", f"{settings.cfs_base_url} (token issued)")]


def check_store(settings: Settings) -> list[Check]:
    from paynb.store.buckets import pay_bucket_url

    url = pay_bucket_url(settings)
    if url is None or (url.startswith("s3://") and not settings.s3_endpoint):
        return [Check("store", "skipped", "PAYNB_BUCKET_URL (or PAYNB_BUCKET / PAYNB_S3_ENDPOINT) not set")]
    try:
        from paynb.store import pay_bucket

        store = pay_bucket(settings)
        next(iter(store.list("", recursive=False)), None)
    except ImportError:
        return [Check("store", "skipped", "store back end not available")]
    except PaynbError as err:
        return [Check("store", "fail", f"{url}: {str(err).splitlines()[0]}")]
    where = settings.s3_endpoint if url.startswith("s3://") else settings.gcs_emulator_host or "GCS"
    return [Check("store", "ok", f"{url} at {where}")]


def check_archive(settings: Settings) -> list[Check]:
    """Is the gs:// archive write-once (a locked retention policy, or a hold on every new object)?"""
    if not settings.archive_url.startswith("gs://"):
        return []
    try:
        from paynb.store import open_store

        policy = open_store(settings.archive_url, settings).policy  # type: ignore[attr-defined]
    except PaynbError as err:
        return [Check("archive", "fail", f"{settings.archive_url}: {str(err).splitlines()[0]}")]
    status = "ok" if policy.write_once else "warn"
    what = "write-once" if policy.write_once else "NOT write-once"
    return [Check("archive", status, f"{settings.archive_url} is {what}: {policy.describe()}")]


def check_warehouse(settings: Settings) -> list[Check]:
    """The data warehouse: reachable, read-only, and holding the tables `paynb reconcile` reads
    (docs/reconciliation.md)."""
    if not settings.dw_url:
        return [
            Check("warehouse", "skipped", "PAYNB_DW_URL not set (reconcile cfs falls back to the CFS API)")
        ]
    import sqlalchemy as sa

    from paynb import dw

    needed = {
        "cas.ar_transactions": [
            "txn_number",
            "txn_type",
            "txn_amount",
            settings.dw_cas_class_column,
            settings.dw_cas_balance_column,
            settings.dw_cas_date_column,
        ],
        "colin.bconline_billing_record": ["key", "total_amt", "qty"],
    }
    try:
        engine = dw.create_engine(settings, run_id="doctor")
        with dw.read(engine) as conn:
            ro = conn.execute(sa.text("SELECT current_setting('default_transaction_read_only')")).scalar()
            dw.check_columns(conn, needed, engine)
        where = dw.where(engine)
        engine.dispose()
    except PaynbError as err:
        return [Check("warehouse", "fail", str(err).splitlines()[0])]
    status = "ok" if ro == "on" else "fail"
    return [Check("warehouse", status, f"{where}: cas and colin tables present, read-only session {ro}")]


def run_checks(settings: Settings | None = None, *, env: Env | None = None) -> list[Check]:
    """Every check, with the settings of ``env`` (default: the environment's; ``settings`` overrides)."""
    settings = resolve_env(env, settings=settings).settings
    return [
        *check_database(settings),
        *check_cfs(settings),
        *check_store(settings),
        *check_archive(settings),
        *check_warehouse(settings),
    ]
