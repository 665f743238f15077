"""PostgreSQL fixtures: one embedded server per test process, a fresh database per test.

Databases are cloned from templates (schema only, or schema + `small` synthetic data), which takes
a fraction of a second, so every test starts from a known state and may write freely.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from paynb.sandbox.postgres import READER, WRITER, EmbeddedPostgres, ensure_roles, grant_roles
from paynb.timez import pacific_today

EMPTY_TEMPLATE = "paynb_tpl_empty"
SMALL_TEMPLATE = "paynb_tpl_small"
_counter = itertools.count()
# the sandbox's login roles (docs/roles.md); synthetic passwords for the test cluster only
ROLE_PASSWORDS = {READER: "test-reader-pw-3c9a71", WRITER: "test-writer-pw-84d2f0"}


def as_role(dsn: str, role: str) -> str:
    """``dsn`` (the superuser's URL of a test database) with the reader's or writer's login instead."""
    return (
        make_url(dsn).set(username=role, password=ROLE_PASSWORDS[role]).render_as_string(hide_password=False)
    )


def _admin(pg: EmbeddedPostgres) -> sa.Engine:
    return sa.create_engine(pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _database_exists(pg: EmbeddedPostgres, name: str) -> bool:
    eng = _admin(pg)
    with eng.connect() as c:
        return (
            c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            is not None
        )


def _create_database(pg: EmbeddedPostgres, name: str, template: str | None = None) -> None:
    eng = _admin(pg)
    with eng.connect() as c:
        # identifiers are ours (fixed prefixes + a counter), never user input
        tpl = f" TEMPLATE {template}" if template else ""
        c.exec_driver_sql(f'CREATE DATABASE "{name}"{tpl}')


def _drop_database(pg: EmbeddedPostgres, name: str) -> None:
    eng = _admin(pg)
    with eng.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    # as root the cluster lives in the temp dir under a name derived from this path; a run that was
    # killed (or a fixed --basetemp) leaves one behind, and its databases would clash with ours
    pg.destroy()
    pg.start()
    ensure_roles(pg.url("postgres"), ROLE_PASSWORDS)
    yield pg
    pg.destroy()


@pytest.fixture(scope="session")
def sandbox_as_of() -> date:
    """The generator's 'today'. Fixed per session so expected figures are stable."""
    return pacific_today()


@pytest.fixture(scope="session")
def _empty_template(pg_server: EmbeddedPostgres) -> str:
    from paynb.sandbox.schema import apply_schema

    if not _database_exists(pg_server, EMPTY_TEMPLATE):
        _create_database(pg_server, EMPTY_TEMPLATE)
        eng = sa.create_engine(pg_server.url(EMPTY_TEMPLATE), poolclass=NullPool)
        with eng.begin() as conn:
            apply_schema(conn)
            grant_roles(conn)  # clones of the template keep the grants
        eng.dispose()
    return EMPTY_TEMPLATE


@pytest.fixture(scope="session")
def _small_template(pg_server: EmbeddedPostgres, _empty_template: str, sandbox_as_of: date):
    from paynb.sandbox.seed import seed_sandbox

    _create_database(pg_server, SMALL_TEMPLATE, template=_empty_template)
    summary = seed_sandbox(pg_server.dsn(SMALL_TEMPLATE), scale="small", seed=42, as_of=sandbox_as_of)
    from paynb.db import dispose_engines

    dispose_engines()
    return SMALL_TEMPLATE, summary


def _fresh(pg: EmbeddedPostgres, template: str) -> Iterator[str]:
    from paynb.db import dispose_engines

    dispose_engines()  # a template must have no open connections to be cloned
    name = f"t_{os.getpid()}_{next(_counter)}"
    _create_database(pg, name, template=template)
    try:
        yield pg.dsn(name)
    finally:
        dispose_engines()
        _drop_database(pg, name)


@pytest.fixture
def empty_db_url(pg_server: EmbeddedPostgres, _empty_template: str) -> Iterator[str]:
    """A fresh database with the pay-db schema and code tables, no data."""
    yield from _fresh(pg_server, _empty_template)


@pytest.fixture
def sandbox_db_url(pg_server: EmbeddedPostgres, _small_template) -> Iterator[str]:
    """A fresh database holding the `small` synthetic pay-db (seed 42)."""
    yield from _fresh(pg_server, _small_template[0])


@pytest.fixture
def sandbox_summary(_small_template):
    """What the generator reported for the `small` template (expected counts, scenarios)."""
    return _small_template[1]


@pytest.fixture
def reader_db_url(sandbox_db_url: str) -> str:
    """The fresh sandbox database as the reader role (SELECT only)."""
    return as_role(sandbox_db_url, READER)


@pytest.fixture
def writer_db_url(sandbox_db_url: str) -> str:
    """The fresh sandbox database as the writer role (the fixes' DML only)."""
    return as_role(sandbox_db_url, WRITER)


@pytest.fixture
def pay_env(sandbox_db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Process environment pointing paynb at the fresh sandbox database: the reader role for
    PAYNB_DATABASE_URL, the writer role for PAYNB_DATABASE_WRITE_URL (as the sandbox does)."""
    env = {
        "PAYNB_DATABASE_URL": as_role(sandbox_db_url, READER),
        "PAYNB_DATABASE_WRITE_URL": as_role(sandbox_db_url, WRITER),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
