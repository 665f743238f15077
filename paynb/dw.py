"""The data warehouse (CAS and BCOL tables): read-only engines and a check that the tables and columns a
reconciliation reads are there, so a missing one is one clear error instead of a half-read report.

``PAYNB_DW_URL`` is a SQLAlchemy URL (docs/reconciliation.md shows the TCP, unix-socket and IAM forms).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url

from paynb.errors import ConfigError, WarehouseError
from paynb.settings import Settings

DRIVER = "postgresql+psycopg2"


def require_url(settings: Settings) -> str:
    if not settings.dw_url:
        raise ConfigError(
            "no data warehouse is configured",
            hint="set PAYNB_DW_URL (or DW_NAME/DW_UNIX_SOCKET/DW_IAM_USER), or use --source cfs-api for a sample",
        )
    return settings.dw_url.reveal()


def create_engine(settings: Settings, *, run_id: str = "adhoc") -> Engine:
    """A read-only engine on the warehouse with pay-db's session limits."""
    url = make_url(require_url(settings))
    if not url.drivername.startswith("postgresql"):
        raise ConfigError(f"the data warehouse must be PostgreSQL; PAYNB_DW_URL names {url.drivername!r}")
    options = (
        "-c default_transaction_read_only=on "
        f"-c statement_timeout={int(settings.statement_timeout_ms)} "
        f"-c idle_in_transaction_session_timeout={int(settings.idle_in_transaction_timeout_ms)} "
        "-c TimeZone=UTC"
    )
    return sa.create_engine(
        url.set(drivername=DRIVER),
        connect_args={"application_name": f"paynb:{run_id}"[:63], "options": options, "connect_timeout": 10},
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=2,
    )


def where(engine: Engine) -> str:
    url = engine.url
    host = url.host or url.query.get("host") or "local socket"
    return f"{host}:{url.port or 5432}/{url.database or ''}"


def translate_error(err: Exception, engine: Engine) -> WarehouseError:
    """A driver error as a WarehouseError without credentials."""
    orig = getattr(err, "orig", err)
    lines = str(orig).strip().splitlines()
    first = lines[0] if lines else type(err).__name__
    if engine.url.password:
        first = first.replace(str(engine.url.password), "***")
    if isinstance(err, sa_exc.OperationalError) and getattr(orig, "pgcode", None) is None:
        return WarehouseError(f"cannot reach the data warehouse at {where(engine)}: {first}")
    return WarehouseError(f"data warehouse error on {where(engine)}: {first}")


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only warehouse connection; driver errors become :class:`WarehouseError`."""
    try:
        with engine.connect() as conn:
            yield conn
            conn.rollback()
    except sa_exc.DBAPIError as err:
        raise translate_error(err, engine) from None


def check_columns(
    conn: Connection, needed: Mapping[str, Sequence[str]], engine: Engine | None = None
) -> None:
    """Every ``schema.table`` of ``needed`` exists with its columns, else one WarehouseError naming them all."""
    missing: list[str] = []
    for qualified, columns in needed.items():
        schema, table = qualified.split(".", 1)
        have = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = :t"
                ),
                {"s": schema, "t": table},
            )
        }
        if not have:
            missing.append(f"table {qualified}")
            continue
        missing += [f"column {qualified}.{c}" for c in columns if c not in have]
    if missing:
        place = f" at {where(engine)}" if engine is not None else ""
        raise WarehouseError(
            f"the data warehouse{place} lacks {', '.join(missing)}; no report was made",
            hint="check the reader role's grants, or set the PAYNB_DW_CAS_* column settings "
            "(docs/reconciliation.md)",
        )
