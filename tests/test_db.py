from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from paynb import db
from paynb.errors import DatabaseError, ReadOnlyViolation
from paynb.settings import Settings


@pytest.fixture
def settings(empty_db_url: str) -> Settings:
    return Settings.load(
        {"PAYNB_DATABASE_URL": empty_db_url, "PAYNB_STATEMENT_TIMEOUT_MS": "300"}, dotenv=None
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
    engine = db.create_engine(settings, run_id="t-write")
    with db.write_transaction(engine, run_id="run-abc") as conn:
        conn.execute(sa.text("INSERT INTO cas_settlements (received_on, file_name) VALUES (now(), 'a.csv')"))
        stamped = conn.execute(sa.text("SELECT current_setting('paynb.run_id', true)")).scalar()
        timeout = conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar()
    assert stamped == "run-abc"
    assert timeout == "5s"
    with db.read_connection(engine) as conn:
        assert db.fetch_one(conn, "SELECT count(*) AS n FROM cas_settlements")["n"] == 1
        # transaction-local: gone after commit
        assert conn.execute(sa.text("SELECT current_setting('paynb.run_id', true)")).scalar() in ("", None)


def test_write_transaction_rolls_back_on_error(settings):
    engine = db.create_engine(settings)
    with pytest.raises(RuntimeError):
        with db.write_transaction(engine) as conn:
            conn.execute(
                sa.text("INSERT INTO cas_settlements (received_on, file_name) VALUES (now(), 'b.csv')")
            )
            raise RuntimeError("boom")
    with db.read_connection(engine) as conn:
        assert db.fetch_one(conn, "SELECT count(*) AS n FROM cas_settlements")["n"] == 0


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
