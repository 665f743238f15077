from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from paynb import db
from paynb.errors import ConfigError, DatabaseError, ReadOnlyViolation
from paynb.sandbox.postgres import READER, WRITER
from paynb.settings import Settings
from tests.plugins.db import as_role

INSERT_CREDIT = "INSERT INTO credits (amount, remaining_amount, details) VALUES (1.5, 1.5, :d)"


@pytest.fixture
def settings(empty_db_url: str) -> Settings:
    return Settings.load(
        {
            "PAYNB_DATABASE_URL": as_role(empty_db_url, READER),
            "PAYNB_DATABASE_WRITE_URL": as_role(empty_db_url, WRITER),
            "PAYNB_STATEMENT_TIMEOUT_MS": "300",
        },
        dotenv=None,
    )


def test_default_path_is_read_only(settings):
    engine = db.create_engine(settings, run_id="t-ro")
    with pytest.raises(ReadOnlyViolation):
        with db.read_connection(engine) as conn:
            conn.execute(
                sa.text("INSERT INTO cas_settlements (received_on, file_name) VALUES (now(), 'x.csv')")
            )


def test_session_settings_are_applied(settings):
    engine = db.create_engine(settings, run_id="run-42")
    with db.read_connection(engine) as conn:
        row = db.fetch_one(
            conn,
            "SELECT current_setting('default_transaction_read_only') AS ro, current_setting('TimeZone') AS tz, "
            "current_setting('application_name') AS app, current_setting('idle_in_transaction_session_timeout') AS idle",
        )
    assert row == {"ro": "on", "tz": "UTC", "app": "paynb:run-42", "idle": "1min"}


def test_statement_timeout_is_enforced(settings):
    engine = db.create_engine(settings, run_id="t-timeout")
    with pytest.raises(DatabaseError, match="statement_timeout"):
        with db.read_connection(engine) as conn:
            conn.execute(sa.text("SELECT pg_sleep(2)"))


def test_write_transaction_commits_and_stamps_run_id(settings):
    engine = db.create_write_engine(settings, run_id="t-write")
    with db.write_transaction(engine, run_id="run-abc") as conn:
        conn.execute(sa.text(INSERT_CREDIT), {"d": "a"})
        stamped = conn.execute(sa.text("SELECT current_setting('paynb.run_id', true)")).scalar()
        timeout = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar()
    assert stamped == "run-abc"
    assert timeout == "5s"
    with db.read_connection(engine) as conn:
        assert db.fetch_one(conn, "SELECT count(*) AS n FROM credits")["n"] == 1
        # transaction-local: gone after commit
        assert conn.execute(sa.text("SELECT current_setting('paynb.run_id', true)")).scalar() in ("", None)


def test_write_transaction_rolls_back_on_error(settings):
    engine = db.create_write_engine(settings)
    with pytest.raises(RuntimeError):
        with db.write_transaction(engine) as conn:
            conn.execute(sa.text(INSERT_CREDIT), {"d": "b"})
            raise RuntimeError("boom")
    with db.read_connection(engine) as conn:
        assert db.fetch_one(conn, "SELECT count(*) AS n FROM credits")["n"] == 0


def test_reader_role_cannot_write_even_in_a_write_transaction(settings):
    engine = db.create_engine(settings, run_id="t-reader")
    with pytest.raises(ReadOnlyViolation, match="permission denied for role paynb_reader"):
        with db.write_transaction(engine) as conn:
            conn.execute(sa.text(INSERT_CREDIT), {"d": "c"})


def test_writer_role_has_only_the_fixes_dml(settings):
    engine = db.create_write_engine(settings, run_id="t-writer")
    for sql in (
        "DELETE FROM invoices",  # not a fix's DML (the credit only updates invoices)
        "UPDATE credits SET amount = 0",  # credits are only inserted
        "INSERT INTO payments (payment_system_code) VALUES ('PAYBC')",  # no fix writes payments
        "CREATE TABLE sneaky (id int)",  # no DDL
        "DROP TABLE credits",
    ):
        with pytest.raises(ReadOnlyViolation):
            with db.write_transaction(engine) as conn:
                conn.execute(sa.text(sql))
    with db.read_connection(engine) as conn:
        assert (
            db.fetch_one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")["rolsuper"]
            is False
        )


def test_write_engine_needs_its_own_url(empty_db_url):
    only_reader = Settings.load({"PAYNB_DATABASE_URL": as_role(empty_db_url, READER)}, dotenv=None)
    with pytest.raises(ConfigError, match="PAYNB_DATABASE_WRITE_URL"):
        db.create_write_engine(only_reader)


def test_roles_log_in_with_passwords_only(empty_db_url):
    from sqlalchemy.engine import URL, make_url

    u = make_url(as_role(empty_db_url, READER))
    no_password = URL.create(u.drivername, username=u.username, host=u.host, port=u.port, database=u.database)
    s = Settings.load({"PAYNB_DATABASE_URL": no_password.render_as_string(hide_password=False)}, dotenv=None)
    with pytest.raises(DatabaseError, match="cannot reach pay-db"):
        with db.read_connection(db.create_engine(s, run_id="t-nopw")) as conn:
            conn.execute(sa.text("SELECT 1"))


def test_money_comes_back_as_decimal(settings):
    engine = db.create_engine(settings)
    df = db.query_df(
        "SELECT 12345678901234567.89::numeric AS big, 0.1::double precision AS dbl",
        engine=engine,
        money_columns=("dbl",),
    )
    assert df.loc[0, "big"] == Decimal("12345678901234567.89")
    assert df.loc[0, "dbl"] == Decimal("0.10")
    assert isinstance(df.loc[0, "big"], Decimal)


def test_unreachable_database_is_clear_and_hides_password():
    from paynb.sandbox.postgres import free_port

    s = Settings.load(
        {"PAYNB_DATABASE_URL": f"postgresql://u:topsecretpw@127.0.0.1:{free_port()}/pay"}, dotenv=None
    )
    with pytest.raises(DatabaseError) as ei:
        with db.read_connection(db.create_engine(s, run_id="t-unreach")) as conn:
            conn.execute(sa.text("SELECT 1"))
    assert "cannot reach pay-db" in str(ei.value)
    assert "topsecretpw" not in str(ei.value)


def test_non_postgres_url_is_refused():
    from paynb.errors import ConfigError

    with pytest.raises(ConfigError, match="PostgreSQL"):
        db.build_url("sqlite:///pay.db")
