"""``paynb sandbox up|down|status``: the embedded pay-db, CFS server, GCS emulator and S3 server, in the
background. Like production since 2025-08, the pay bucket and the run archive are on GCS (the emulator keeps
its objects on disk under ``DIR/gcs``, so they survive ``down``/``up``); the S3 server plays the legacy MinIO
store with the older files (moto keeps objects in memory; paynb writes them through to ``DIR/s3`` and loads
them back at the next ``up``, so they survive too).

Everything lives under one folder (``--dir``). ``DIR/sandbox.env`` holds the settings a shell or a
notebook kernel needs (``source DIR/sandbox.env``: its lines are exported); ``DIR/sandbox.json`` records ports and pids so
that ``up`` is safe to call twice and ``down`` stops exactly what ``up`` started.
"""

from __future__ import annotations

import json
import os
import re
import secrets as pysecrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.errors import InputError, SandboxError
from paynb.files import write_private
from paynb.sandbox.postgres import READER, WRITER, EmbeddedPostgres, ExternalPostgres, ensure_roles, role_url
from paynb.sandbox.warehouse import reader_url as dw_reader_url
from paynb.sandbox.warehouse import set_reader_password as set_dw_reader_password

STATE_VERSION = 1
DATABASE = "paydb"
DW_DATABASE = "dw"  # the data warehouse (CAS and BCOL tables), paynb.sandbox.warehouse
DATA_BUCKET = "ftp-poller-sandbox"  # mirrors prod's single GCS bucket with folders (ar/, cgi_feedback/ ...)
LEGACY_BUCKETS = ("payment-sftp", "cgi-ejv")  # pre-2025-08 MinIO layout, for historical files
ARCHIVE_BUCKET = "paynb-archive"
SCALES = ("small", "medium", "large")
# what the sandbox servers print once they listen (see paynb.sandbox.s3 and paynb.sandbox.cfs)
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
PostgresServer = EmbeddedPostgres | ExternalPostgres


@dataclass
class CfsKnobs:
    """Faults the sandbox CFS server injects (tests change them at run time via /_sandbox/knobs)."""

    latency_ms: int = 0
    fault_rate: float = 0.0
    burst_429: int = 0
    token_ttl_s: float = 3600.0
    drop_rate: float = 0.0

    def validate(self) -> None:
        if self.latency_ms < 0:
            raise InputError("must be 0 or more", field="--cfs-latency-ms")
        if self.burst_429 < 0:
            raise InputError("must be 0 or more", field="--cfs-burst-429")
        if self.token_ttl_s <= 0:
            raise InputError("must be more than 0", field="--cfs-token-ttl-s")
        for name, rate in (("--cfs-fault-rate", self.fault_rate), ("--cfs-drop-rate", self.drop_rate)):
            if not 0.0 <= rate <= 1.0:
                raise InputError("must be between 0 and 1", field=name)

    def arguments(self) -> list[str]:
        return [
            "--latency-ms",
            str(self.latency_ms),
            "--fault-rate",
            str(self.fault_rate),
            "--burst-429",
            str(self.burst_429),
            "--token-ttl-s",
            str(self.token_ttl_s),
            "--drop-rate",
            str(self.drop_rate),
        ]


@dataclass
class SandboxState:
    schema_version: int = STATE_VERSION
    scale: str = "small"
    seed: int = 42
    pg_port: int | None = None
    s3_port: int | None = None
    s3_pid: int | None = None
    gcs_port: int | None = None
    gcs_pid: int | None = None
    cfs_port: int | None = None
    cfs_pid: int | None = None
    cfs_knobs: dict[str, Any] = field(default_factory=dict)
    seeded_seconds: float | None = None

    @classmethod
    def read(cls, path: Path) -> SandboxState | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            raise SandboxError(
                f"{path} is not valid JSON", hint="remove the folder and run `paynb sandbox up` again"
            ) from None
        if data.get("schema_version") != STATE_VERSION:
            raise SandboxError(
                f"{path} was written by another paynb version", hint="run `paynb sandbox down --purge`"
            )
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)


class Sandbox:
    """The sandbox rooted at ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise InputError("is a file; the sandbox needs a folder", field="--dir", file=str(self.root))

    # -- paths
    @property
    def state_path(self) -> Path:
        return self.root / "sandbox.json"

    @property
    def env_path(self) -> Path:
        return self.root / "sandbox.env"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def gcs_dir(self) -> Path:
        return self.root / "gcs"

    @property
    def s3_dir(self) -> Path:
        """The legacy S3 store's buckets and objects (moto keeps them in memory; paynb mirrors them)."""
        return self.root / "s3"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def state(self) -> SandboxState | None:
        return SandboxState.read(self.state_path)

    def postgres(self) -> PostgresServer:
        external = os.environ.get("PAYNB_SANDBOX_DATABASE_URL")
        return ExternalPostgres(external) if external else EmbeddedPostgres(self.root / "pg")

    # -- up
    def up(
        self,
        *,
        scale: str = "small",
        seed: int = 42,
        cfs: CfsKnobs | None = None,
        progress: bool = False,
        echo=print,
    ) -> dict[str, str]:
        if scale not in SCALES:
            raise InputError(f"unknown scale {scale!r} (one of {', '.join(SCALES)})", field="--scale")
        cfs = cfs or CfsKnobs()
        cfs.validate()
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        state = self.state() or SandboxState(scale=scale, seed=seed)
        if (state.scale, state.seed) != (scale, seed) and self._database_seeded(state):
            echo(
                f"note: {self.root} already holds scale={state.scale} seed={state.seed}; reusing it "
                "(run `paynb sandbox down --purge` first for a different data set)"
            )

        pg = self.postgres().start()
        state.pg_port = pg.port
        state.write(self.state_path)
        if not self._database_seeded(state):
            echo(f"seeding pay-db ({scale}, seed {seed}) …")
            state.scale, state.seed = scale, seed
            state.seeded_seconds = self._seed(pg, scale, seed, progress)
            self._seed_warehouse(pg)
            echo(f"seeded in {state.seeded_seconds:.1f} s")
        state.write(self.state_path)

        secrets = self._secrets()
        # the reader and writer logins paynb uses (docs/roles.md); reset on every `up` so they match the files
        ensure_roles(
            pg.url("postgres"), {READER: secrets["reader_password"], WRITER: secrets["writer_password"]}
        )
        set_dw_reader_password(pg.dsn("postgres"), secrets["dw_reader_password"])
        self._grant(pg)
        state.s3_port, state.s3_pid = self._ensure_process(
            "s3",
            state.s3_port,
            state.s3_pid,
            lambda port: [
                sys.executable,
                "-m",
                "paynb.sandbox.s3",
                "--port",
                str(port),
                "--data-dir",
                str(self.s3_dir),
            ],
        )
        state.gcs_port, state.gcs_pid = self._ensure_process(
            "gcs",
            state.gcs_port,
            state.gcs_pid,
            lambda port: [
                sys.executable,
                "-m",
                "paynb.sandbox.gcs",
                "--port",
                str(port),
                "--root",
                str(self.gcs_dir),
            ],
        )
        state.write(self.state_path)
        self._seed_store(pg, state, secrets)

        knobs = asdict(cfs)
        if state.cfs_pid and state.cfs_knobs != knobs and _alive(state.cfs_pid):
            _stop_pid(state.cfs_pid)  # knobs changed: restart the CFS server with the new ones
            state.cfs_pid = None
        state.cfs_knobs = knobs

        def cfs_cmd(port: int) -> list[str]:
            return [
                sys.executable,
                "-m",
                "paynb.sandbox.cfs",
                "--db-url",
                pg.dsn(DATABASE),
                "--port",
                str(port),
                "--client-id",
                secrets["cfs_client_id"],
                "--client-secret-file",
                str(self.secrets_dir / "cfs_client_secret"),
                "--fas-client-id",
                secrets["cfs_fas_client_id"],
                "--fas-client-secret-file",
                str(self.secrets_dir / "cfs_fas_client_secret"),
                "--pay-connector-file",
                str(self.secrets_dir / "pay_connector"),
                *cfs.arguments(),
            ]

        state.cfs_port, state.cfs_pid = self._ensure_process("cfs", state.cfs_port, state.cfs_pid, cfs_cmd)
        state.write(self.state_path)
        env = self._env(pg, state, secrets)
        self._write_env(env)
        return env

    def _database_seeded(self, state: SandboxState) -> bool:
        if not state.pg_port:
            return False
        pg = self.postgres()
        if not pg.is_running():
            return (
                isinstance(pg, EmbeddedPostgres)
                and (pg.data_dir / "PG_VERSION").exists()
                and (state.seeded_seconds is not None)
            )
        if isinstance(pg, EmbeddedPostgres):
            pg.port = state.pg_port
        eng = sa.create_engine(pg.url("postgres"), poolclass=NullPool)
        try:
            with eng.connect() as c:
                exists = c.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}
                ).first()
        finally:
            eng.dispose()
        return bool(exists) and state.seeded_seconds is not None

    def _seed(self, pg: PostgresServer, scale: str, seed: int, progress: bool) -> float:
        from paynb.sandbox.seed import apply_schema_to, seed_sandbox

        started = time.monotonic()
        admin = sa.create_engine(pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            c.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
        admin.dispose()
        apply_schema_to(pg.dsn(DATABASE))
        seed_sandbox(pg.dsn(DATABASE), scale=scale, seed=seed, progress=progress)
        return time.monotonic() - started

    def _grant(self, pg: PostgresServer) -> None:
        from paynb.sandbox.postgres import grant_roles

        eng = sa.create_engine(pg.url(DATABASE), poolclass=NullPool)
        try:
            with eng.begin() as conn:
                grant_roles(conn)
        finally:
            eng.dispose()

    def _seed_warehouse(self, pg: PostgresServer) -> None:
        """The warehouse database, derived from the seeded pay-db before the CFS server loads it (the
        warehouse's injected CAS mismatches are made in pay-db's paynb_sandbox.cfs_invoices)."""
        from paynb.sandbox.warehouse import create_database, seed_warehouse

        create_database(pg.dsn("postgres"), DW_DATABASE)
        seed_warehouse(pg.dsn(DATABASE), pg.dsn(DW_DATABASE))

    def _secrets(self) -> dict[str, str]:
        """Synthetic credentials, made once per sandbox and kept in files readable only by the owner."""
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        out: dict[str, str] = {}
        for name in (
            "cfs_client_secret",
            "cfs_fas_client_secret",
            "pay_connector",
            "s3_secret_key",
            "hmac_key",
            "reader_password",
            "writer_password",
            "dw_reader_password",
        ):
            path = self.secrets_dir / name
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(pysecrets.token_urlsafe(24))
            out[name] = path.read_text().strip()
        out["cfs_client_id"] = "paynb-sandbox"
        out["cfs_fas_client_id"] = "paynb-sandbox-fas"
        return out

    def _ensure_process(self, name: str, port: int | None, pid: int | None, command) -> tuple[int, int]:
        if pid and port and _alive(pid) and _port_open(port):
            return port, pid
        # port 0 lets the server bind a free port itself and announce it: a port picked here and handed
        # over could be taken by another process in between, which would then answer in its place
        wanted = port if port and not _port_open(port) else 0
        log_path = self.logs / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")}
        proc = subprocess.Popen(
            command(wanted),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=str(self.root),
        )
        log.close()
        # the CFS server loads its state from pay-db before it listens: ~20 s on the large sandbox
        deadline = time.monotonic() + 300
        while True:
            bound = _announced_port(log_path, offset)
            if bound is not None and _port_open(bound):
                return bound, proc.pid
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise SandboxError(f"the sandbox {name} server exited at start: {' / '.join(tail)}")
            if time.monotonic() > deadline:
                proc.terminate()
                raise SandboxError(f"the sandbox {name} server did not start listening within 300 s")
            time.sleep(0.1)

    def _seed_store(self, pg: PostgresServer, state: SandboxState, secrets: dict[str, str]) -> None:
        """Create the buckets and upload the files the generator left in paynb_sandbox.store_objects:
        the pre-2025-08 ones (keys under a legacy bucket name) to the S3 server, the rest to the GCS pay
        bucket. Objects already there are left alone."""
        import io

        from minio import Minio

        from paynb.sandbox.gcs import PROJECT
        from paynb.sandbox.gcs import ensure_bucket as ensure_gcs_bucket
        from paynb.sandbox.s3 import ensure_bucket
        from paynb.store.gcs import make_client
        from paynb.store.s3 import http_pool

        client = Minio(
            f"127.0.0.1:{state.s3_port}",
            access_key="paynb-sandbox",
            secret_key=secrets["s3_secret_key"],
            secure=False,
            region="us-east-1",
            http_client=http_pool(),
        )
        for legacy in LEGACY_BUCKETS:
            ensure_bucket(client, legacy, versioning=False)
        gcs = make_client(project=PROJECT, emulator_host=f"http://127.0.0.1:{state.gcs_port}")
        ensure_gcs_bucket(gcs, DATA_BUCKET)
        # no default hold: the emulator neither enforces nor keeps one, so `paynb doctor` rightly warns
        # that the sandbox archive is not write-once (a prod archive bucket has a locked retention policy)
        ensure_gcs_bucket(gcs, ARCHIVE_BUCKET)
        in_gcs = {b.name for b in gcs.list_blobs(DATA_BUCKET, timeout=(5, 60))}
        in_s3 = {
            (legacy, o.object_name)
            for legacy in LEGACY_BUCKETS
            for o in client.list_objects(legacy, recursive=True)
        }
        pay_bucket = gcs.bucket(DATA_BUCKET)
        eng = sa.create_engine(pg.url(DATABASE), poolclass=NullPool)
        try:
            with eng.connect() as c:
                rows = c.execute(
                    sa.text("SELECT key, content, content_type FROM paynb_sandbox.store_objects ORDER BY key")
                )
                for key, content, ctype in rows:
                    data = bytes(content)
                    ctype = ctype or "application/octet-stream"
                    head, _, rest = key.partition("/")
                    if head in LEGACY_BUCKETS:
                        if (head, rest) not in in_s3:
                            client.put_object(head, rest, io.BytesIO(data), len(data), content_type=ctype)
                    elif key not in in_gcs:
                        pay_bucket.blob(key).upload_from_string(
                            data, content_type=ctype, if_generation_match=0, timeout=(5, 60)
                        )
        finally:
            eng.dispose()

    def _env(self, pg: PostgresServer, state: SandboxState, secrets: dict[str, str]) -> dict[str, str]:
        return {
            "PAYNB_ENVIRONMENT": "sandbox",
            "PAYNB_DATABASE_URL": role_url(pg, READER, secrets["reader_password"], DATABASE),
            "PAYNB_DATABASE_WRITE_URL": role_url(pg, WRITER, secrets["writer_password"], DATABASE),
            # the sandbox's superuser (it owns the tables), for `paynb db` maintenance fixes only; never
            # given to a notebook kernel (docs/roles.md)
            "PAYNB_DATABASE_ADMIN_URL": pg.dsn(DATABASE),
            "PAYNB_CFS_BASE_URL": f"http://127.0.0.1:{state.cfs_port}",
            "PAYNB_CFS_CLIENT_ID": secrets["cfs_client_id"],
            "PAYNB_CFS_CLIENT_SECRET": secrets["cfs_client_secret"],
            "PAYNB_CFS_FAS_CLIENT_ID": secrets["cfs_fas_client_id"],
            "PAYNB_CFS_FAS_CLIENT_SECRET": secrets["cfs_fas_client_secret"],
            "PAYNB_PAY_CONNECTOR_AUTH": secrets["pay_connector"],
            "PAYNB_S3_ENDPOINT": f"127.0.0.1:{state.s3_port}",
            "PAYNB_S3_ACCESS_KEY": "paynb-sandbox",
            "PAYNB_S3_SECRET_KEY": secrets["s3_secret_key"],
            "PAYNB_S3_SECURE": "false",
            "PAYNB_BUCKET": DATA_BUCKET,
            "PAYNB_BUCKET_URL": f"gs://{DATA_BUCKET}",
            "PAYNB_LEGACY_BUCKET_URL": "s3://",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{state.gcs_port}",
            "PAYNB_GCS_PROJECT": "paynb-sandbox",
            "PAYNB_ARCHIVE_URL": f"gs://{ARCHIVE_BUCKET}/",
            "PAYNB_HMAC_KEY": secrets["hmac_key"],
            "PAYNB_DATA_DIR": str(self.root / "data"),
            # the read-only reader role of the warehouse (docs/reconciliation.md)
            "PAYNB_DW_URL": dw_reader_url(pg.dsn(DW_DATABASE), secrets["dw_reader_password"]),
        }

    def _write_env(self, env: dict[str, str]) -> None:
        lines = [
            "# written by `paynb sandbox up`; synthetic credentials for the local sandbox only",
            '# `source` this file (each line is exported), or: eval "$(paynb sandbox env DIR)"',
        ]
        lines += export_lines(env)
        tmp = self.env_path.with_suffix(".tmp")
        # it holds the roles' passwords: 0600, even when an older copy was more open (paynb.files)
        write_private(tmp, "\n".join(lines) + "\n")
        tmp.replace(self.env_path)

    def read_env(self) -> dict[str, str]:
        """The settings ``up`` wrote to ``DIR/sandbox.env`` (with or without ``export``)."""
        if not self.env_path.is_file():
            raise InputError(
                "holds no sandbox settings",
                file=str(self.env_path),
                hint=f"start the sandbox first: `paynb sandbox up --dir {self.root}`",
            )
        from dotenv import dotenv_values

        return {k: v for k, v in dotenv_values(self.env_path).items() if v is not None}

    # -- down / status
    def down(self, *, purge: bool = False) -> list[str]:
        stopped: list[str] = []
        state = self.state()
        if state:
            for name, pid in (("cfs", state.cfs_pid), ("s3", state.s3_pid), ("gcs", state.gcs_pid)):
                if pid and _alive(pid):
                    _stop_pid(pid)
                    stopped.append(name)
        pg = self.postgres()
        if isinstance(pg, EmbeddedPostgres) and pg.is_running():
            pg.stop()
            stopped.append("postgres")
        if purge:
            import shutil

            if isinstance(pg, ExternalPostgres) and pg.is_running():
                admin = sa.create_engine(pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
                    c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DW_DATABASE}" WITH (FORCE)')
                admin.dispose()
            pg.destroy()
            shutil.rmtree(self.root, ignore_errors=True)
        elif state:
            state.s3_pid = state.cfs_pid = state.gcs_pid = None
            state.write(self.state_path)
        return stopped

    def status(self) -> list[dict[str, Any]]:
        state = self.state()
        if state is None:
            return [{"component": "sandbox", "state": "absent", "detail": f"no sandbox in {self.root}"}]
        pg = self.postgres()
        rows = [
            {
                "component": "postgres",
                "state": "running" if pg.is_running() else "stopped",
                "detail": f"127.0.0.1:{state.pg_port}/{DATABASE} scale={state.scale} seed={state.seed}",
            },
            {
                "component": "s3",
                "state": _proc_state(state.s3_pid, state.s3_port),
                "detail": f"127.0.0.1:{state.s3_port}",
            },
            {
                "component": "gcs",
                "state": _proc_state(state.gcs_pid, state.gcs_port),
                "detail": f"http://127.0.0.1:{state.gcs_port} (pay bucket, archive; data in {self.gcs_dir})",
            },
            {
                "component": "cfs",
                "state": _proc_state(state.cfs_pid, state.cfs_port),
                "detail": f"http://127.0.0.1:{state.cfs_port} knobs={state.cfs_knobs}",
            },
        ]
        return rows


def export_lines(env: dict[str, str]) -> list[str]:
    """``export NAME='value'`` lines: a shell that sources or evals them passes the settings on to the
    programs it starts (plain ``NAME=value`` lines would stay shell variables, unseen by paynb). Values are
    single-quoted, which bash and python-dotenv (``PAYNB_ENV_FILE``) read alike as long as they hold no
    quote or backslash; the sandbox's values are URLs and hex tokens."""
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a recycled pid that is not ours must not count
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"paynb.sandbox" in cmdline
    except OSError:
        return True


def _stop_pid(pid: int, timeout_s: float = 10) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _announced_port(log_path: Path, offset: int) -> int | None:
    """The port a server printed in its "listening on http://127.0.0.1:PORT" line since ``offset``."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found = _LISTENING.search(text)
    return int(found.group(1)) if found else None


def _port_open(port: int | None) -> bool:
    if not port:
        return False
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _proc_state(pid: int | None, port: int | None) -> str:
    if pid and _alive(pid):
        return "running" if _port_open(port) else "starting"
    return "stopped"
