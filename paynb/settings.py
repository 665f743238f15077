"""Settings from the environment and an optional ``.env`` file.

Canonical names are ``PAYNB_*``. The names pay notebooks and services use today are accepted as
aliases (``DATABASE_*``, ``PAY_*``, ``PG_*``, ``DB_*``, ``CFS_*``, ``MINIO_*``), so an operator's
existing ``.env`` works unchanged. The canonical name wins when both are set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from paynb.errors import ConfigError
from paynb.secrets import Secret

# canonical name -> aliases, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "PAYNB_DATABASE_URL": ("PAY_DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
    "PAYNB_DATABASE_WRITE_URL": ("PAY_DATABASE_WRITE_URL",),
    "PAYNB_DB_USER": ("DATABASE_USERNAME", "PAY_USER", "PG_USER", "DB_USER"),
    "PAYNB_DB_PASSWORD": ("DATABASE_PASSWORD", "PAY_PASSWORD", "PG_PASSWORD", "DB_PASS"),
    "PAYNB_DB_HOST": ("DATABASE_HOST", "PAY_HOST", "PG_HOST", "DB_HOST"),
    "PAYNB_DB_PORT": ("DATABASE_PORT", "PAY_PORT", "PG_PORT", "DB_PORT"),
    "PAYNB_DB_NAME": ("DATABASE_NAME", "PAY_DB_NAME", "PG_DB_NAME", "DB_NAME"),
    "PAYNB_CFS_BASE_URL": ("CFS_BASE_URL",),
    "PAYNB_CFS_CLIENT_ID": ("CFS_CLIENT_ID",),
    "PAYNB_CFS_CLIENT_SECRET": ("CFS_CLIENT_SECRET",),
    "PAYNB_CFS_FAS_CLIENT_ID": ("CFS_FAS_CLIENT_ID",),
    "PAYNB_CFS_FAS_CLIENT_SECRET": ("CFS_FAS_CLIENT_SECRET",),
    "PAYNB_PAY_CONNECTOR_AUTH": ("PAY_CONNECTOR_AUTH",),
    "PAYNB_S3_ENDPOINT": ("MINIO_ENDPOINT",),
    "PAYNB_S3_ACCESS_KEY": ("MINIO_ACCESS_KEY",),
    "PAYNB_S3_SECRET_KEY": ("MINIO_ACCESS_SECRET", "MINIO_SECRET_KEY"),
    "PAYNB_S3_SECURE": ("MINIO_SECURE",),
    "PAYNB_BUCKET": ("FTP_POLLER_BUCKET_NAME",),
    "PAYNB_GCS_PROJECT": ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT"),
    "PAYNB_LEGACY_SETTLEMENT_BUCKET": ("MINIO_BUCKET_NAME",),
    "PAYNB_LEGACY_EJV_BUCKET": ("MINIO_CGI_BUCKET_NAME", "MINIO_EJV_BUCKET_NAME"),
    # the data warehouse as sbc-pay's payment-jobs name its parts (docs/reconciliation.md)
    "PAYNB_DW_NAME": ("DW_NAME",),
    "PAYNB_DW_UNIX_SOCKET": ("DW_UNIX_SOCKET",),
    "PAYNB_DW_IAM_USER": ("DW_IAM_USER",),
}

#: set by ``paynb run`` in a report kernel: the writer URL is ignored even when a .env file names it
READ_ONLY_KERNEL = "PAYNB_READ_ONLY_KERNEL"
#: every name that can carry the writer URL (removed from report kernels' environments)
WRITER_NAMES = ("PAYNB_DATABASE_WRITE_URL", *ALIASES["PAYNB_DATABASE_WRITE_URL"])
#: set by ``paynb run`` in every kernel: the admin URL (``paynb db`` maintenance only) is ignored there
NO_ADMIN_KERNEL = "PAYNB_NO_ADMIN_KERNEL"
#: the names that carry the admin URL (removed from every kernel's environment)
ADMIN_NAMES = ("PAYNB_DATABASE_ADMIN_URL",)

SECRET_NAMES = frozenset(
    {
        "PAYNB_DATABASE_URL",
        "PAYNB_DATABASE_WRITE_URL",
        "PAYNB_DB_PASSWORD",
        "PAYNB_CFS_CLIENT_SECRET",
        "PAYNB_CFS_FAS_CLIENT_SECRET",
        "PAYNB_PAY_CONNECTOR_AUTH",
        "PAYNB_S3_SECRET_KEY",
        "PAYNB_HMAC_KEY",
        "PAYNB_LEDGER_URL",
        "PAYNB_LEDGER_KEY",
        "PAYNB_DATABASE_ADMIN_URL",
        "PAYNB_DW_URL",
    }
)


def _read_dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _lookup(env: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """Return (value, the name it came from)."""
    for candidate in (name, *ALIASES.get(name, ())):
        value = env.get(candidate)
        if value not in (None, ""):
            return value, candidate
    return None, None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw, source = _lookup(env, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{source} must be a whole number, got a value that is not") from None


def _bool(raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything paynb reads from its environment. Secrets are :class:`Secret` and print as ``***``."""

    database_url: Secret = field(default_factory=lambda: Secret(""))
    #: the writer role, for applies only (docs/roles.md); empty in report kernels
    database_write_url: Secret = field(default_factory=lambda: Secret(""))
    #: a table owner's URL, used only by `paynb db` maintenance fixes (REINDEX, cancel, manual migration)
    database_admin_url: Secret = field(default_factory=lambda: Secret(""))
    statement_timeout_ms: int = 60_000
    lock_timeout_ms: int = 5_000
    idle_in_transaction_timeout_ms: int = 60_000
    cfs_base_url: str = ""
    cfs_client_id: str = ""
    cfs_client_secret: Secret = field(default_factory=lambda: Secret(""))
    cfs_fas_client_id: str = ""
    cfs_fas_client_secret: Secret = field(default_factory=lambda: Secret(""))
    pay_connector_auth: Secret = field(default_factory=lambda: Secret(""))
    cfs_timeout_s: float = 10.0
    cfs_concurrency: int = 8
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: Secret = field(default_factory=lambda: Secret(""))
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket: str = ""
    # the pay bucket and the pre-2025-08 MinIO store as URLs (gs://..., s3://...); see paynb.store.buckets
    bucket_url: str = ""
    legacy_bucket_url: str = ""
    gcs_project: str = ""
    gcs_emulator_host: str = ""
    google_credentials_file: str = ""  # a path; the key inside is never read by paynb itself
    legacy_settlement_bucket: str = "payment-sftp"
    legacy_ejv_bucket: str = "cgi-ejv"
    archive_url: str = ""
    ledger_url: Secret = field(default_factory=lambda: Secret(""))
    hmac_key: Secret = field(default_factory=lambda: Secret(""))
    #: keys the ledger's hash chain (HMAC-SHA256); unlike hmac_key it never falls back to a local file
    ledger_key: Secret = field(default_factory=lambda: Secret(""))
    data_dir: Path = field(default_factory=lambda: Path(".paynb"))
    #: who may apply a routing slip void (comma-separated operator names; empty: nobody)
    rs_void_operators: str = ""
    environment: str = "local"
    #: the data warehouse (CAS and BCOL tables), a SQLAlchemy URL; docs/reconciliation.md
    dw_url: Secret = field(default_factory=lambda: Secret(""))
    #: warehouse column names paynb cannot know for sure (docs/reconciliation.md, "Settings")
    dw_cas_balance_column: str = "amount_due_remaining"
    dw_cas_date_column: str = "txn_date"
    dw_cas_class_column: str = "txn_class"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, dotenv: str | os.PathLike | None = ".env"
    ) -> Settings:
        """Read settings. ``env`` defaults to ``os.environ``; a ``.env`` file fills only what is unset."""
        merged: dict[str, str] = {}
        if dotenv == ".env":
            dotenv = (os.environ if env is None else env).get("PAYNB_ENV_FILE", ".env")
        if dotenv is not None and Path(dotenv).is_file():
            merged.update(_read_dotenv(Path(dotenv)))
        merged.update(os.environ if env is None else env)
        sources: dict[str, str] = {}

        def get(name: str, default: str = "") -> str:
            value, source = _lookup(merged, name)
            if source:
                sources[name] = source
            return default if value is None else value

        url = get("PAYNB_DATABASE_URL")
        if url:
            try:
                make_url(url)
            except Exception:
                raise ConfigError(
                    f"{sources['PAYNB_DATABASE_URL']} is not a valid database URL "
                    "(expected postgresql://user:password@host:port/dbname)"
                ) from None
        elif get("PAYNB_DB_HOST") or get("PAYNB_DB_NAME"):
            port_raw = get("PAYNB_DB_PORT", "5432")
            if not port_raw.isdigit():
                raise ConfigError(f"{sources.get('PAYNB_DB_PORT', 'PAYNB_DB_PORT')} must be a port number")
            url = URL.create(
                "postgresql+psycopg2",
                username=get("PAYNB_DB_USER") or None,
                password=get("PAYNB_DB_PASSWORD") or None,
                host=get("PAYNB_DB_HOST") or None,
                port=int(port_raw),
                database=get("PAYNB_DB_NAME") or None,
            ).render_as_string(hide_password=False)
        write_url = "" if _bool(merged.get(READ_ONLY_KERNEL), False) else get("PAYNB_DATABASE_WRITE_URL")
        admin_url = "" if _bool(merged.get(NO_ADMIN_KERNEL), False) else get("PAYNB_DATABASE_ADMIN_URL")
        if write_url:
            try:
                make_url(write_url)
            except Exception:
                raise ConfigError(
                    f"{sources['PAYNB_DATABASE_WRITE_URL']} is not a valid database URL "
                    "(expected postgresql://writer:password@host:port/dbname)"
                ) from None
        data_dir = Path(get("PAYNB_DATA_DIR", ".paynb")).expanduser()
        dw_url = _dw_url(
            get("PAYNB_DW_URL"),
            get("PAYNB_DW_NAME"),
            get("PAYNB_DW_UNIX_SOCKET"),
            get("PAYNB_DW_IAM_USER"),
            sources,
        )
        return cls(
            database_url=Secret(url),
            database_write_url=Secret(write_url),
            database_admin_url=Secret(admin_url),
            statement_timeout_ms=_int(merged, "PAYNB_STATEMENT_TIMEOUT_MS", 60_000),
            lock_timeout_ms=_int(merged, "PAYNB_LOCK_TIMEOUT_MS", 5_000),
            idle_in_transaction_timeout_ms=_int(merged, "PAYNB_IDLE_TX_TIMEOUT_MS", 60_000),
            cfs_base_url=get("PAYNB_CFS_BASE_URL").rstrip("/"),
            cfs_client_id=get("PAYNB_CFS_CLIENT_ID"),
            cfs_client_secret=Secret(get("PAYNB_CFS_CLIENT_SECRET")),
            cfs_fas_client_id=get("PAYNB_CFS_FAS_CLIENT_ID"),
            cfs_fas_client_secret=Secret(get("PAYNB_CFS_FAS_CLIENT_SECRET")),
            pay_connector_auth=Secret(get("PAYNB_PAY_CONNECTOR_AUTH")),
            cfs_timeout_s=float(get("PAYNB_CFS_TIMEOUT_S", "10")),
            cfs_concurrency=_int(merged, "PAYNB_CFS_CONCURRENCY", 8),
            s3_endpoint=get("PAYNB_S3_ENDPOINT"),
            s3_access_key=get("PAYNB_S3_ACCESS_KEY"),
            s3_secret_key=Secret(get("PAYNB_S3_SECRET_KEY")),
            s3_secure=_bool(get("PAYNB_S3_SECURE") or None, False),
            s3_region=get("PAYNB_S3_REGION", "us-east-1"),
            bucket=get("PAYNB_BUCKET"),
            bucket_url=get("PAYNB_BUCKET_URL").strip(),
            legacy_bucket_url=get("PAYNB_LEGACY_BUCKET_URL").strip(),
            gcs_project=get("PAYNB_GCS_PROJECT"),
            gcs_emulator_host=get("STORAGE_EMULATOR_HOST").strip(),
            google_credentials_file=get("GOOGLE_APPLICATION_CREDENTIALS"),
            legacy_settlement_bucket=get("PAYNB_LEGACY_SETTLEMENT_BUCKET", "payment-sftp"),
            legacy_ejv_bucket=get("PAYNB_LEGACY_EJV_BUCKET", "cgi-ejv"),
            archive_url=get("PAYNB_ARCHIVE_URL"),
            ledger_url=Secret(get("PAYNB_LEDGER_URL")),
            hmac_key=Secret(get("PAYNB_HMAC_KEY")),
            ledger_key=Secret(get("PAYNB_LEDGER_KEY")),
            data_dir=data_dir,
            rs_void_operators=get("PAYNB_RS_VOID_OPERATORS"),
            environment=get("PAYNB_ENVIRONMENT", "local"),
            dw_url=Secret(dw_url),
            dw_cas_balance_column=_identifier(
                get("PAYNB_DW_CAS_BALANCE_COLUMN", "amount_due_remaining"), "PAYNB_DW_CAS_BALANCE_COLUMN"
            ),
            dw_cas_date_column=_identifier(
                get("PAYNB_DW_CAS_DATE_COLUMN", "txn_date"), "PAYNB_DW_CAS_DATE_COLUMN"
            ),
            dw_cas_class_column=_identifier(
                get("PAYNB_DW_CAS_CLASS_COLUMN", "txn_class"), "PAYNB_DW_CAS_CLASS_COLUMN"
            ),
            sources=sources,
        )

    def require_database(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "no database is configured",
                hint="set PAYNB_DATABASE_URL (or DATABASE_HOST/DATABASE_NAME/...), "
                "or start the sandbox: `paynb sandbox up --dir .sandbox` and `source .sandbox/sandbox.env`",
            )
        return self.database_url.reveal()

    def require_write_database(self) -> str:
        """The writer role's URL. Never falls back to the reader: a fix needs the writer on purpose."""
        if not self.database_write_url:
            raise ConfigError(
                "no writer database is configured: PAYNB_DATABASE_WRITE_URL is not set",
                hint="set PAYNB_DATABASE_WRITE_URL to the writer role's URL (see docs/roles.md); "
                "report notebooks under `paynb run` never get it",
            )
        return self.database_write_url.reveal()

    def secret_values(self) -> list[str]:
        """Every configured secret value (and the password inside the database URL), for leak scans."""
        values: list[str] = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Secret) and v:
                values.append(v.reveal())
        for url in (
            self.database_url,
            self.database_write_url,
            self.database_admin_url,
            self.ledger_url,
            self.dw_url,
        ):
            if url:
                try:
                    pw = make_url(url.reveal()).password
                except Exception:
                    pw = None
                if pw:
                    values.append(str(pw))
        # very short values would match everywhere; they are not worth scanning for
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def describe(self) -> dict[str, str]:
        """A printable view: secrets as *** (or empty), database URL without its password."""
        out: dict[str, str] = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            v = getattr(self, f.name)
            if (
                f.name in ("database_url", "database_write_url", "database_admin_url", "ledger_url", "dw_url")
                and v
            ):
                try:
                    out[f.name] = make_url(v.reveal()).render_as_string(hide_password=True)
                except Exception:
                    out[f.name] = "***"
            else:
                out[f.name] = str(v)
        return out


def _dw_url(url: str, name: str, socket: str, iam_user: str, sources: dict[str, str]) -> str:
    """PAYNB_DW_URL, or a URL built from sbc-pay's DW_NAME / DW_UNIX_SOCKET / DW_IAM_USER: an IAM user
    (no password; the Cloud SQL Auth Proxy signs in) over the proxy's unix socket in /cloudsql."""
    if url:
        try:
            make_url(url)
        except Exception:
            raise ConfigError(
                f"{sources.get('PAYNB_DW_URL', 'PAYNB_DW_URL')} is not a valid SQLAlchemy URL "
                "(expected postgresql://user@host:port/dbname or postgresql://user@/dbname?host=/cloudsql/...)"
            ) from None
        return url
    if not name:
        return ""
    host = socket if not socket or socket.startswith("/") else f"/cloudsql/{socket}"
    query = {"host": host} if host else {}
    return URL.create(
        "postgresql+psycopg2", username=iam_user or None, database=name, query=query
    ).render_as_string(hide_password=False)


def _identifier(value: str, name: str) -> str:
    """A column name put into SQL: plain lowercase identifiers only."""
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise ConfigError(f"{name} must be a plain column name (lowercase letters, digits, _)")
    return value


def get_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for this process (environment plus ``.env`` in the current folder)."""
    return Settings.load(env)
