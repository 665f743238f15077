"""``paynb doctor``: is every configured dependency reachable, and is the database session read-only?

Each check returns a row (name, ok, detail) and never prints a secret: the database is named by
host:port/db only, CFS by its base URL, the store by bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from paynb.context import Env, resolve_env
from paynb.errors import PaynbError
from paynb.settings import Settings

KNOWN_ALEMBIC_HEAD = "968a2e428d4c"


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
                "SELECT current_setting('default_transaction_read_only') AS ro, current_setting('server_version') AS v",
            )
            version = db.alembic_version(conn)
    except PaynbError as err:
        return [Check("database", "fail", str(err).splitlines()[0])]
    checks = [
        Check("database", "ok", f"{where} (PostgreSQL {row['v']})"),
        Check(
            "read-only session",
            "ok" if row["ro"] == "on" else "fail",
            "default_transaction_read_only=on" if row["ro"] == "on" else "the session is writable",
        ),
    ]
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
    return checks


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


def run_checks(settings: Settings | None = None, *, env: Env | None = None) -> list[Check]:
    """Every check, with the settings of ``env`` (default: the environment's; ``settings`` overrides)."""
    settings = resolve_env(env, settings=settings).settings
    return [*check_database(settings), *check_cfs(settings), *check_store(settings), *check_archive(settings)]
