"""`paynb sandbox up/status/down` end to end: real processes, real ports, one folder."""

from __future__ import annotations

import os
import stat

import pytest

from paynb.cli import main
from paynb.errors import InputError
from paynb.sandbox.manager import Sandbox
from paynb.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running_sandbox(tmp_path_factory):
    box = Sandbox(tmp_path_factory.mktemp("sbx") / "box")
    env = box.up(scale="small", seed=7, echo=lambda m: None)
    yield box, env
    box.down(purge=True)


def test_up_writes_a_private_env_file(running_sandbox):
    box, env = running_sandbox
    assert stat.S_IMODE(box.env_path.stat().st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in box.env_path.read_text().splitlines() if "=" in line)
    assert lines["PAYNB_DATABASE_URL"] == env["PAYNB_DATABASE_URL"]
    for name in ("PAYNB_CFS_BASE_URL", "PAYNB_S3_ENDPOINT", "PAYNB_BUCKET", "PAYNB_ARCHIVE_URL"):
        assert lines[name]
    assert all(row["state"] == "running" for row in box.status())


def test_up_twice_reuses_everything(running_sandbox):
    box, env = running_sandbox
    before = box.state()
    again = box.up(scale="small", seed=7, echo=lambda m: None)
    after = box.state()
    assert again == env
    assert (after.pg_port, after.s3_port, after.cfs_port, after.s3_pid) == (
        before.pg_port, before.s3_port, before.cfs_port, before.s3_pid,
    )  # fmt: skip


def test_doctor_and_scenarios_against_the_sandbox(running_sandbox, monkeypatch, capsys):
    _, env = running_sandbox
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "read-only session" in out and "fail" not in out
    for secret in Settings.load(env, dotenv=None).secret_values():
        assert secret not in out
    assert main(["sandbox", "scenarios", "--json"]) == 0
    assert "pad_stuck_uncharged" in capsys.readouterr().out
    assert main(["stale", "--days", "20"]) == 0


def test_settlement_files_are_in_the_bucket(running_sandbox):
    from paynb.store import open_store

    _, env = running_sandbox
    settings = Settings.load(env, dotenv=None)
    keys = [o.key for o in open_store(f"s3://{settings.bucket}/", settings).list("ar/")]
    assert any(k.startswith("ar/BCR_PAYMENT_APPL_") for k in keys)


def test_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="--dir"):
        Sandbox(f)
    assert main(["sandbox", "up", "--dir", str(f)]) == 2


def test_unknown_scale_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="--scale"):
        Sandbox(tmp_path / "new").up(scale="enormous", echo=lambda m: None)
    assert not (tmp_path / "new").exists()


def test_unreachable_database_fails_doctor(monkeypatch, capsys):
    from paynb.sandbox.postgres import free_port

    monkeypatch.setenv("PAYNB_DATABASE_URL", f"postgresql://x:pw-not-shown@127.0.0.1:{free_port()}/pay")
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "cannot reach pay-db" in captured.out
    assert "pw-not-shown" not in captured.out + captured.err


def test_status_of_an_absent_sandbox(tmp_path, capsys):
    assert main(["sandbox", "status", "--dir", str(tmp_path / "none")]) == 1
    assert "absent" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "none")
