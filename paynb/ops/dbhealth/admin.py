"""The maintenance connection: a table owner's role (``PAYNB_DATABASE_ADMIN_URL``), autocommit.

REINDEX CONCURRENTLY, DROP INDEX CONCURRENTLY and pg_cancel_backend cannot run as the reader or the
DML-only writer, and the concurrent forms cannot run inside a transaction block, so maintenance fixes
use their own autocommit engine. Each fix still goes through paynb.fixes (plan, confirm, ledger).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from paynb.context import Env
from paynb.db import build_url
from paynb.errors import ConfigError


def admin_engine(
    env: Env, *, statement_timeout_ms: int = 0, lock_timeout_ms: int = 5_000, database: str | None = None
) -> Engine:
    """An autocommit engine on the admin URL (on ``database`` instead of its own when given). ``statement_timeout_ms=0`` means no limit (a REINDEX
    of a large index may take minutes); the lock timeout keeps it from queueing behind a long DDL."""
    override = env.overrides.get("admin_engine")
    if override is not None:
        return override
    raw = env.settings.database_admin_url
    if not raw:
        raise ConfigError(
            "PAYNB_DATABASE_ADMIN_URL is not set: maintenance fixes need a role that owns the pay tables",
            hint="set PAYNB_DATABASE_ADMIN_URL for this one command (the sandbox.env has it for the sandbox)",
        )
    options = (
        "-c default_transaction_read_only=off "
        f"-c statement_timeout={int(statement_timeout_ms)} -c lock_timeout={int(lock_timeout_ms)} "
        "-c TimeZone=UTC"
    )
    url = build_url(raw.reveal())
    if database is not None:
        url = url.set(database=database)
    return sa.create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"application_name": "paynb:maintenance", "options": options, "connect_timeout": 10},
    )


@contextmanager
def one_transaction(conn: sa.Connection) -> Iterator[sa.Connection]:
    """A real transaction on an autocommit connection (where ``begin()`` alone would not open one)."""
    conn.commit()  # close SQLAlchemy's autobegun no-op transaction
    conn.execution_options(isolation_level="READ COMMITTED")
    try:
        with conn.begin():
            yield conn
    finally:
        conn.execution_options(isolation_level="AUTOCOMMIT")
