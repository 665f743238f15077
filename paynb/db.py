"""pay-db access: read-only engines by default, one explicit write path, Decimal money.

* Engines come from :func:`sqlalchemy.engine.URL.create` or a parsed URL, never string formatting.
* Every session is read-only (``default_transaction_read_only``), has a ``statement_timeout`` and an
  ``idle_in_transaction_session_timeout``, runs in UTC, and names the run in ``application_name``.
* :func:`write_transaction` is the one way to change data: one transaction, ``READ WRITE`` set
  explicitly, ``SET LOCAL`` statement and lock timeouts, and ``paynb.run_id`` set transaction-locally
  so audit triggers can stamp rows.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from paynb.errors import ConfigError, DatabaseError, ReadOnlyViolation
from paynb.settings import Settings, get_settings

DRIVER = "postgresql+psycopg2"
_engines: dict[tuple[str, str, int, int], Engine] = {}
# run id and timeouts of each engine, for write_transaction (Engine objects take no attributes)
_engine_meta: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def engine_meta(engine: Engine) -> dict[str, Any]:
    return _engine_meta.get(engine, {})


def current_run_id() -> str:
    """The run id of this process (set by ``paynb run`` in the kernel's environment)."""
    return os.environ.get("PAYNB_RUN_ID", "adhoc")


def build_url(raw: str) -> URL:
    """Parse an operator-given URL and force the psycopg2 driver."""
    try:
        url = make_url(raw)
    except Exception:
        raise ConfigError(
            "the database URL is not valid (expected postgresql://user:pw@host:port/db)"
        ) from None
    if not url.drivername.startswith("postgresql"):
        raise ConfigError(
            f"pay-db must be PostgreSQL; the URL names the {url.drivername!r} driver",
            hint="point PAYNB_DATABASE_URL at a postgresql:// server",
        )
    return url.set(drivername=DRIVER)


def describe_url(url: URL) -> str:
    """host:port/db without user or password, for messages."""
    host = url.host or url.query.get("host") or "local socket"
    return f"{host}:{url.port or 5432}/{url.database or ''}"


def create_engine(
    settings: Settings | None = None,
    *,
    run_id: str | None = None,
    url: str | None = None,
    statement_timeout_ms: int | None = None,
) -> Engine:
    """A read-only engine for pay-db. Cached per URL, run id and timeouts."""
    settings = settings or get_settings()
    raw = url or settings.require_database()
    run_id = run_id or current_run_id()
    st = statement_timeout_ms if statement_timeout_ms is not None else settings.statement_timeout_ms
    key = (raw, run_id, st, settings.idle_in_transaction_timeout_ms)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            options = (
                "-c default_transaction_read_only=on "
                f"-c statement_timeout={int(st)} "
                f"-c idle_in_transaction_session_timeout={int(settings.idle_in_transaction_timeout_ms)} "
                "-c TimeZone=UTC"
            )
            engine = sa.create_engine(
                build_url(raw),
                connect_args={
                    "application_name": f"paynb:{run_id}"[:63],
                    "options": options,
                    "connect_timeout": 10,
                },
                pool_pre_ping=True,
                pool_size=4,
                max_overflow=8,
            )
            _engine_meta[engine] = {
                "lock_timeout_ms": settings.lock_timeout_ms,
                "statement_timeout_ms": st,
                "run_id": run_id,
            }
            _engines[key] = engine
        return engine


def create_write_engine(settings: Settings | None = None, *, run_id: str | None = None) -> Engine:
    """The engine applies write through (the writer role, ``PAYNB_DATABASE_WRITE_URL``).

    ConfigError when it is not set: there is no fallback to the reader URL (docs/roles.md).

    Sessions still start read-only; :func:`write_transaction` opens the one READ WRITE transaction.
    """
    settings = settings or get_settings()
    return create_engine(settings, run_id=run_id, url=settings.require_write_database())


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def translate_error(err: Exception, engine: Engine | None = None) -> DatabaseError:
    """Turn a driver error into a PaynbError whose message carries no credentials."""
    orig = getattr(err, "orig", None)
    code = getattr(orig, "pgcode", None)
    where = describe_url(engine.url) if engine is not None else "pay-db"
    if code == "25006":
        return ReadOnlyViolation(f"write refused on a read-only session ({where})")
    if code == "42501":  # insufficient_privilege: the reader role (or a writer outside its grants)
        user = engine.url.username if engine is not None else None
        return ReadOnlyViolation(f"permission denied for role {user or '?'} on {where}")
    if code == "57014":
        return DatabaseError(
            f"statement cancelled by statement_timeout on {where}",
            hint="narrow the query (dates, account) or raise PAYNB_STATEMENT_TIMEOUT_MS",
        )
    if code == "55P03":
        return DatabaseError(
            f"could not take a lock in time on {where}", hint="retry when the other job is done"
        )
    if isinstance(err, sa_exc.OperationalError):
        first = str(orig or err).strip().splitlines()[0] if str(orig or err).strip() else "connection failed"
        return DatabaseError(f"cannot reach pay-db at {where}: {_scrub(first, engine)}")
    text = str(orig or err).strip().splitlines()
    return DatabaseError(
        f"pay-db error on {where}: {_scrub(text[0] if text else type(err).__name__, engine)}"
    )


def _scrub(message: str, engine: Engine | None) -> str:
    if engine is not None and engine.url.password:
        message = message.replace(str(engine.url.password), "***")
    return message


@contextmanager
def read_connection(engine: Engine | None = None) -> Iterator[Connection]:
    """A read-only connection (a transaction that is rolled back at the end)."""
    engine = engine or create_engine()
    try:
        with engine.connect() as conn:
            yield conn
            conn.rollback()
    except sa_exc.DBAPIError as err:
        raise translate_error(err, engine) from None


@contextmanager
def write_transaction(
    engine: Engine | None = None,
    *,
    run_id: str | None = None,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int | None = None,
) -> Iterator[Connection]:
    """The one write path: a single READ WRITE transaction stamped with the run id.

    Commits when the block ends normally, rolls back on any exception.
    """
    engine = engine or create_engine()
    meta = engine_meta(engine)
    run_id = run_id or meta.get("run_id") or current_run_id()
    st = statement_timeout_ms or meta.get("statement_timeout_ms", 60_000)
    lt = lock_timeout_ms or meta.get("lock_timeout_ms", 5_000)
    try:
        with engine.connect() as conn:
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ WRITE")
                # SET LOCAL cannot take bind parameters; the values are ints we own
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(st)}")
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lt)}")
                conn.execute(sa.text("SELECT set_config('paynb.run_id', :rid, true)"), {"rid": run_id})
                yield conn
    except sa_exc.DBAPIError as err:
        raise translate_error(err, engine) from None


def _as_text(sql: str | sa.TextClause) -> sa.TextClause | sa.Executable:
    return sa.text(sql) if isinstance(sql, str) else sql


def fetch_all(
    conn: Connection, sql: str | sa.TextClause, params: Mapping[str, Any] | None = None
) -> list[dict]:
    """Rows as dicts; numeric stays Decimal."""
    try:
        return [dict(r) for r in conn.execute(_as_text(sql), dict(params or {})).mappings()]
    except sa_exc.DBAPIError as err:
        raise translate_error(err, conn.engine) from None


def fetch_one(
    conn: Connection, sql: str | sa.TextClause, params: Mapping[str, Any] | None = None
) -> dict | None:
    rows = fetch_all(conn, sql, params)
    return rows[0] if rows else None


def query_df(
    sql: str | sa.TextClause,
    params: Mapping[str, Any] | None = None,
    *,
    conn: Connection | None = None,
    engine: Engine | None = None,
    money_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Run a bound query and return a DataFrame. NUMERIC comes back as Decimal (``coerce_float=False``);
    ``money_columns`` that PostgreSQL stores as double precision are converted to Decimal too."""

    def run(c: Connection) -> pd.DataFrame:
        result = c.execute(_as_text(sql), dict(params or {}))
        rows = result.fetchall()
        df = pd.DataFrame.from_records(rows, columns=list(result.keys()), coerce_float=False)
        for col in money_columns:
            if col in df.columns:
                df[col] = df[col].map(to_money)
        return df

    try:
        if conn is not None:
            return run(conn)
        with read_connection(engine) as c:
            return run(c)
    except sa_exc.DBAPIError as err:
        raise translate_error(err, (conn.engine if conn is not None else engine)) from None


def to_money(value: Any) -> Decimal | None:
    """Decimal with 2 places. Floats go through ``repr`` so 0.1 stays 0.10, not 0.1000000000000000055."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.01"))
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(Decimal("0.01"))
    return Decimal(str(value)).quantize(Decimal("0.01"))


def table_columns(conn: Connection, table: str, schema: str = "public") -> set[str]:
    """Column names of a table, for code that must work across schema versions (see docs/schema.md#schema-versions)."""
    rows = conn.execute(
        sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"
        ),
        {"s": schema, "t": table},
    )
    return {r[0] for r in rows}


def alembic_version(conn: Connection) -> str | None:
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version LIMIT 1")).first()
    return row[0] if row else None


def amcheck_state(conn: Connection) -> str:
    """``missing`` (amcheck is not installed), ``denied`` (installed, but this role may not run
    ``bt_index_check``: amcheck's functions are not granted to PUBLIC) or ``usable``."""
    row = fetch_all(
        conn,
        """
        SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'amcheck') AS installed,
               coalesce((SELECT bool_or(has_function_privilege(p.oid, 'EXECUTE'))
                           FROM pg_proc p
                           JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                           AND d.deptype = 'e'
                           JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'amcheck'
                          WHERE p.proname = 'bt_index_check'), false) AS executable
        """,
    )[0]
    if not row["installed"]:
        return "missing"
    return "usable" if row["executable"] else "denied"


def amcheck_grant(role: str) -> str:
    """The statement that lets ``role`` run amcheck's index check (for the extension's owner to run)."""
    return f"GRANT EXECUTE ON FUNCTION bt_index_check(regclass, boolean) TO {role}"


def stats_grant(role: str) -> str:
    """The statement that lets ``role`` see every session in full (see :func:`sees_all_sessions`)."""
    return f"GRANT pg_read_all_stats TO {role}"


def sees_all_sessions(conn: Connection) -> bool:
    """Whether this role sees other roles' sessions in full in pg_stat_activity (state, query, wait):
    superusers and members of pg_read_all_stats do; anyone else gets NULLs for them."""
    return bool(
        conn.execute(
            sa.text(
                "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"
                " OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
            )
        ).scalar()
    )


@contextmanager
def advisory_lock(
    engine: Engine, namespace: int, key: int, *, wait_s: float, busy: Exception
) -> Iterator[None]:
    """A session advisory lock on (``namespace``, ``key``) held until the block ends; ``busy`` is raised when
    another session still holds it after ``wait_s``. A killed process loses its connection, and PostgreSQL
    releases the lock with it."""
    conn = engine.connect()
    got = False
    try:
        deadline = time.monotonic() + wait_s
        while True:
            got = bool(
                conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": namespace, "id": key}
                ).scalar()
            )
            conn.commit()  # a session lock outlives the transaction; don't sit idle in one
            if got:
                break
            if time.monotonic() >= deadline:
                raise busy
            time.sleep(0.05)
        yield
    except sa_exc.DBAPIError as err:
        raise translate_error(err, engine) from None
    finally:
        try:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": namespace, "id": key})
                conn.commit()
        except Exception:
            conn.invalidate()  # closing the session releases the lock
        finally:
            conn.close()
