"""Fixtures for the reconciliation tests: a fresh small pay-db plus its warehouse database (``dw``),
with or without the injected mismatches, and the reader role's URL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from paynb.context import Env
from paynb.settings import Settings

_counter = itertools.count()


@dataclass
class Warehouse:
    pay_url: str
    dw_url: str  # the owner (tests only)
    reader_url: str
    injected: dict

    def env_vars(self) -> dict[str, str]:
        return {"PAYNB_DATABASE_URL": self.pay_url, "PAYNB_DW_URL": self.reader_url}

    def env(self, **extra: str) -> Env:
        return Env(settings=Settings.load(env={**self.env_vars(), **extra}, dotenv=None))


# synthetic, for the test cluster only (the sandbox makes its own, in DIR/secrets)
DW_READER_PASSWORD = "test-dw-reader-pw-5e1b07"


def _build(pg_server, pay_url: str, inject: bool) -> Iterator[Warehouse]:
    from paynb.sandbox.warehouse import (
        create_database,
        database_url,
        reader_url,
        seed_warehouse,
        set_reader_password,
    )

    name = f"{make_url(pay_url).database}_dw{next(_counter)}"
    create_database(pg_server.dsn("postgres"), name)
    dw_url = database_url(pay_url, name)
    injected = seed_warehouse(pay_url, dw_url, inject=inject)
    set_reader_password(pg_server.dsn("postgres"), DW_READER_PASSWORD)
    try:
        yield Warehouse(pay_url, dw_url, reader_url(dw_url, DW_READER_PASSWORD), injected)
    finally:
        from paynb.db import dispose_engines

        dispose_engines()
        eng = sa.create_engine(pg_server.dsn("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        eng.dispose()


@pytest.fixture
def warehouse(pg_server, sandbox_db_url: str) -> Iterator[Warehouse]:
    """pay-db (small) and its warehouse with every injected mismatch."""
    yield from _build(pg_server, sandbox_db_url, inject=True)


@pytest.fixture
def clean_warehouse(pg_server, sandbox_db_url: str) -> Iterator[Warehouse]:
    """pay-db (small) and a warehouse that agrees with it (no injections)."""
    yield from _build(pg_server, sandbox_db_url, inject=False)


def expected_findings(pay_url: str) -> set[tuple[str, str]]:
    """(class, key) of every injected mismatch, read from pay-db's scenario rows."""
    from paynb.sandbox.warehouse import CATALOGUE

    eng = sa.create_engine(pay_url, poolclass=NullPool)
    out: set[tuple[str, str]] = set()
    with eng.connect() as c:
        for s in CATALOGUE:
            rows = c.execute(
                sa.text("SELECT ids, details FROM paynb_sandbox.scenarios WHERE name = :n"), {"n": s.name}
            ).all()
            assert rows, f"scenario {s.name} not recorded"
            if not s.mismatch_class:
                continue
            for ids, details in rows:
                keys = details["numbers"] or [str(i) for i in ids]
                out |= {(s.mismatch_class, k) for k in keys}
    eng.dispose()
    return out
