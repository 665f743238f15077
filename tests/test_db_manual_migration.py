"""`paynb db migrate-manually`: the FAQ's procedure as one checked sequence, on a test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.context import Env
from paynb.errors import InputError
from paynb.ops.dbhealth.manual_migration import ManualMigrationFix
from paynb.settings import Settings


def _env(url: str, environment: str) -> Env:
    settings = Settings.load(
        env={"PAYNB_DATABASE_URL": url, "PAYNB_DATABASE_ADMIN_URL": url, "PAYNB_ENVIRONMENT": environment},
        dotenv=None,
    )
    return Env(settings=settings)


@pytest.fixture
def ddl(tmp_path: Path) -> Path:
    path = tmp_path / "add_column.sql"
    path.write_text("ALTER TABLE invoices ADD COLUMN paynb_manual_flag boolean;\n")
    return path


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(empty_db_url, poolclass=NullPool)
    yield eng
    eng.dispose()


def test_runs_the_ddl_sets_the_version_and_reopens(empty_db_url: str, ddl: Path, engine: sa.Engine) -> None:
    """As production's roles: the reader plans, a non-superuser owner of the database and its tables
    applies, and the session it ends is an application's (the writer role), not a superuser's."""
    from paynb.fixes import apply_fix
    from paynb.sandbox.postgres import READER, WRITER
    from tests.db_roles import make_owner
    from tests.plugins.db import as_role

    owner_url = make_owner(empty_db_url)
    settings = Settings.load(
        env={
            "PAYNB_DATABASE_URL": as_role(empty_db_url, READER),
            "PAYNB_DATABASE_ADMIN_URL": owner_url,
            "PAYNB_ENVIRONMENT": "sandbox",
        },
        dotenv=None,
    )
    env = Env(settings=settings)
    app = sa.create_engine(as_role(empty_db_url, WRITER), poolclass=NullPool)
    bystander = app.connect()
    bystander.exec_driver_sql("SELECT 1")
    fix = ManualMigrationFix()
    plan = fix.plan(env, sql_file=str(ddl), revision="abc123def456")
    assert plan.body["alembic_version"]["after"] == "abc123def456"
    result = apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-4", reason="DDL on invoices")
    assert result.outcome.after["terminated_backends"] >= 1
    assert result.verification == {"alembic_version": "abc123def456", "allow_connections": True}
    with engine.connect() as c:
        cols = c.execute(
            sa.text("SELECT column_name FROM information_schema.columns WHERE table_name = 'invoices'")
        ).scalars()
        assert "paynb_manual_flag" in set(cols)
    with pytest.raises(sa.exc.DBAPIError):
        bystander.exec_driver_sql("SELECT 1")  # it was terminated
    bystander.invalidate()
    app.dispose()


def test_a_failing_ddl_changes_nothing_and_reopens(
    empty_db_url: str, tmp_path: Path, engine: sa.Engine
) -> None:
    from paynb.fixes import apply_fix

    bad = tmp_path / "bad.sql"
    bad.write_text("ALTER TABLE no_such_table ADD COLUMN x int;\n")
    env = _env(empty_db_url, "sandbox")
    with engine.connect() as c:
        before = c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one_or_none()
    fix = ManualMigrationFix()
    plan = fix.plan(env, sql_file=str(bad), revision="abc123def456")
    with pytest.raises(Exception, match="no_such_table"):
        apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-4", reason="DDL")
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one_or_none() == before
        allow = c.exec_driver_sql("SELECT datallowconn FROM pg_database WHERE datname = current_database()")
        assert allow.scalar_one() is True


def test_refused_outside_the_sandbox_without_ack(empty_db_url: str, ddl: Path) -> None:
    env = _env(empty_db_url, "production")
    with pytest.raises(InputError, match="--production-ack"):
        ManualMigrationFix().plan(env, sql_file=str(ddl), revision="abc123")
    plan = ManualMigrationFix().plan(env, sql_file=str(ddl), revision="abc123", production_ack=True)
    assert plan.body["params"]["production_ack"] is True


def test_bad_input(empty_db_url: str, tmp_path: Path, ddl: Path) -> None:
    env = _env(empty_db_url, "sandbox")
    with pytest.raises(InputError, match="missing.sql"):
        ManualMigrationFix().plan(env, sql_file=str(tmp_path / "missing.sql"), revision="abc")
    empty = tmp_path / "empty.sql"
    empty.write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        ManualMigrationFix().plan(env, sql_file=str(empty), revision="abc")
    with pytest.raises(InputError, match="--revision"):
        ManualMigrationFix().plan(env, sql_file=str(ddl), revision="x; drop table invoices")
