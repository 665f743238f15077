"""`paynb db activity` and the signal fix, on real sessions of the test PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from paynb.context import Env
from paynb.errors import InputError, StalePlanError
from paynb.ops.dbhealth.activity import SignalBackendFix, find_activity
from paynb.sandbox.postgres import READER, WRITER
from paynb.settings import Settings

SIGNALLER = (
    "paynb_test_signaller"  # a stand-in for production's admin role: no superuser, may signal backends
)


@pytest.fixture
def env(empty_db_url: str) -> Iterator[Env]:
    """The roles production has: the reader looks, a non-superuser with pg_signal_backend acts."""
    from tests.plugins.db import as_role

    admin = sa.create_engine(empty_db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(
            f"""DO $$ BEGIN CREATE ROLE {SIGNALLER} LOGIN NOSUPERUSER PASSWORD 'signaller-pw-1';
                EXCEPTION WHEN duplicate_object THEN NULL; END $$"""
        )
        c.exec_driver_sql(f"GRANT pg_signal_backend TO {SIGNALLER}")
    admin.dispose()
    signaller = make_url(empty_db_url).set(username=SIGNALLER, password="signaller-pw-1")
    settings = Settings.load(
        env={
            "PAYNB_DATABASE_URL": as_role(empty_db_url, READER),
            "PAYNB_DATABASE_ADMIN_URL": signaller.render_as_string(hide_password=False),
        },
        dotenv=None,
    )
    yield Env(settings=settings)


@pytest.fixture
def app_url(empty_db_url: str) -> str:
    """Sessions of an application role (pay-api's), not the superuser's."""
    from tests.plugins.db import as_role

    return as_role(empty_db_url, WRITER)


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the sessions to line up"
        time.sleep(0.1)


def test_blocking_chain_is_found_and_its_root_terminated(env: Env, empty_db_url: str, app_url: str) -> None:
    from paynb.fixes import apply_fix

    setup = sa.create_engine(empty_db_url, poolclass=NullPool)
    with setup.begin() as c:
        c.exec_driver_sql("INSERT INTO payment_accounts (id, name) VALUES (1, 'a')")
    setup.dispose()
    engine = sa.create_engine(app_url, poolclass=NullPool)
    holder = engine.connect()
    holder.exec_driver_sql("BEGIN")
    holder.exec_driver_sql("UPDATE payment_accounts SET name = 'held' WHERE id = 1")
    holder_pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    outcome: dict[str, object] = {}

    def waiter() -> None:
        with engine.connect() as c:
            c.exec_driver_sql("SET lock_timeout = '20s'")
            c.exec_driver_sql("UPDATE payment_accounts SET name = 'waited' WHERE id = 1")
            c.commit()
            outcome["done"] = True

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: any(f.kind == "blocked" for f in find_activity(min_seconds=0, env=env).findings))
        report = find_activity(min_seconds=0, env=env)
        root = next(f for f in report.findings if f.kind == "blocking")
        assert root.pid == holder_pid and root.action == "terminate"
        assert root.statement == f"SELECT pg_terminate_backend({holder_pid})"
        blocked = next(f for f in report.findings if f.kind == "blocked")
        assert blocked.blocked_by == (holder_pid,)

        fix = SignalBackendFix()
        plan = fix.plan(env, pid=holder_pid, action="terminate")
        result = apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-3", reason="idle tx holds a row lock")
        assert result.verification == {"ended": True}
        thread.join(timeout=20)
        assert outcome.get("done") is True
    finally:
        thread.join(timeout=20)
        holder.invalidate()
        engine.dispose()


def test_a_session_that_changed_is_refused(env: Env, empty_db_url: str) -> None:
    from paynb.fixes import apply_fix

    engine = sa.create_engine(empty_db_url, poolclass=NullPool)
    conn = engine.connect()
    try:
        conn.exec_driver_sql("SELECT 1")
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        fix = SignalBackendFix()
        plan = fix.plan(env, pid=pid, action="cancel")
        conn.exec_driver_sql("SELECT 2")  # a new query: the planned one is over
        with pytest.raises(StalePlanError):
            apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-3", reason="runaway query")
    finally:
        conn.close()
        engine.dispose()


def test_bad_input(env: Env) -> None:
    with pytest.raises(InputError, match="no session"):
        SignalBackendFix().plan(env, pid=999999, action="cancel")
    with pytest.raises(InputError, match="cancel or terminate"):
        SignalBackendFix().plan(env, pid=1, action="kill")
    with pytest.raises(InputError, match="--min-seconds"):
        find_activity(min_seconds=-1, env=env)


def test_a_reader_that_cannot_see_other_sessions_says_so_and_exits_incomplete(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from paynb.cli import exits, main

    blind = "paynb_test_blind_reader"
    admin = sa.create_engine(empty_db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(
            f"""DO $$ BEGIN CREATE ROLE {blind} LOGIN NOSUPERUSER PASSWORD 'blind-pw-1';
                EXCEPTION WHEN duplicate_object THEN NULL; END $$"""
        )
    admin.dispose()
    url = (
        make_url(empty_db_url)
        .set(username=blind, password="blind-pw-1")
        .render_as_string(hide_password=False)
    )
    report = find_activity(
        min_seconds=0, env=Env(settings=Settings.load(env={"PAYNB_DATABASE_URL": url}, dotenv=None))
    )
    assert report.notes and f"GRANT pg_read_all_stats TO {blind}" in report.notes[0]
    assert report.to_dict()["complete"] is False

    monkeypatch.setenv("PAYNB_DATABASE_URL", url)
    assert main(["db", "activity", "--min-seconds", "0"]) == exits.INCOMPLETE
    assert "incomplete:" in capsys.readouterr().err
