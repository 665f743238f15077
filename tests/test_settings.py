from __future__ import annotations

import logging

import pytest

from paynb.errors import ConfigError, PaynbError
from paynb.secrets import Secret
from paynb.settings import Settings


def test_canonical_names_win_over_aliases():
    s = Settings.load({"PAYNB_CFS_BASE_URL": "http://a/", "CFS_BASE_URL": "http://b"}, dotenv=None)
    assert s.cfs_base_url == "http://a"
    assert s.sources["PAYNB_CFS_BASE_URL"] == "PAYNB_CFS_BASE_URL"


@pytest.mark.parametrize(
    "env",
    [
        {
            "DATABASE_USERNAME": "u",
            "DATABASE_PASSWORD": "hunter22",
            "DATABASE_HOST": "h",
            "DATABASE_NAME": "pay",
        },
        {"PAY_USER": "u", "PAY_PASSWORD": "hunter22", "PAY_HOST": "h", "PAY_DB_NAME": "pay"},
        {"PG_USER": "u", "PG_PASSWORD": "hunter22", "PG_HOST": "h", "PG_DB_NAME": "pay"},
    ],
)
def test_notebook_aliases_build_a_url(env):
    s = Settings.load(env, dotenv=None)
    url = s.require_database()
    assert url.startswith("postgresql+psycopg2://u:hunter22@h:5432/pay")
    assert "hunter22" not in repr(s)
    assert "hunter22" not in str(s.describe())
    assert "hunter22" in s.secret_values()


def test_dotenv_fills_only_unset(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PAYNB_CFS_CLIENT_ID=from-file\nPAYNB_CFS_CLIENT_SECRET=file-secret-value\n")
    s = Settings.load({"PAYNB_CFS_CLIENT_ID": "from-env"}, dotenv=env_file)
    assert s.cfs_client_id == "from-env"
    assert s.cfs_client_secret.reveal() == "file-secret-value"


def test_secret_never_prints():
    sec = Secret("s3cr3t-value")
    assert "s3cr3t" not in repr(sec)
    assert "s3cr3t" not in str(sec)
    assert "s3cr3t" not in f"{sec}"
    assert sec.reveal() == "s3cr3t-value"


def test_secret_not_in_log_records(caplog):
    s = Settings.load({"PAYNB_CFS_CLIENT_SECRET": "abc-very-secret"}, dotenv=None)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("paynb.test").info("settings: %r %s", s, s.cfs_client_secret)
    assert "abc-very-secret" not in caplog.text


def test_bad_database_url_is_a_config_error_without_the_value():
    with pytest.raises(ConfigError) as ei:
        Settings.load({"PAYNB_DATABASE_URL": "not a url at all:pw"}, dotenv=None)
    assert "not a url at all" not in str(ei.value)


def test_bad_port_names_the_alias():
    with pytest.raises(ConfigError, match="PAY_PORT"):
        Settings.load({"PAY_HOST": "h", "PAY_PORT": "54x"}, dotenv=None)


def test_missing_database_says_what_to_do():
    with pytest.raises(PaynbError, match="sandbox up"):
        Settings.load({}, dotenv=None).require_database()
