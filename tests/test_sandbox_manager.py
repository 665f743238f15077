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
    assert all(line.startswith("export ") for line in box.env_path.read_text().splitlines() if "=" in line)
    lines = box.read_env()
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
        before.pg_port,
        before.s3_port,
        before.cfs_port,
        before.s3_pid,
    )


def test_doctor_and_scenarios_against_the_sandbox(running_sandbox, monkeypatch, capsys):
    _, env = running_sandbox
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "reader cannot write" in out and "fail" not in out
    for secret in Settings.load(env, dotenv=None).secret_values():
        assert secret not in out
    assert main(["sandbox", "scenarios", "--json"]) == 0
    assert "pad_stuck_uncharged" in capsys.readouterr().out
    assert main(["stale", "--days", "20"]) == 0


def test_settlement_files_are_in_the_bucket(running_sandbox):
    from paynb.store import pay_bucket

    _, env = running_sandbox
    settings = Settings.load(env, dotenv=None)
    keys = [o.key for o in pay_bucket(settings).list("ar/")]
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


def test_an_existing_server_can_stand_in_for_the_embedded_one(pg_server, tmp_path, monkeypatch):
    """Where no PostgreSQL can be embedded, PAYNB_SANDBOX_DATABASE_URL points the sandbox at one."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    monkeypatch.setenv("PAYNB_SANDBOX_DATABASE_URL", pg_server.dsn("postgres"))
    box = Sandbox(tmp_path / "ext")
    # roles are cluster-wide: the sandbox must keep the passwords the other tests on this server log in with
    from paynb.sandbox.postgres import READER, WRITER
    from tests.plugins.db import ROLE_PASSWORDS

    box.secrets_dir.mkdir(parents=True, mode=0o700)
    for role, name in ((READER, "reader_password"), (WRITER, "writer_password")):
        (box.secrets_dir / name).write_text(ROLE_PASSWORDS[role])
    try:
        env = box.up(scale="small", seed=3, echo=lambda m: None)
        assert f":{pg_server.port}/paydb" in env["PAYNB_DATABASE_URL"]
        assert not (tmp_path / "ext" / "pg").exists()  # nothing embedded was started
    finally:
        box.down(purge=True)
    eng = sa.create_engine(pg_server.url("postgres"), poolclass=NullPool)
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = 'paydb'")).first() is None
    eng.dispose()


def test_unreachable_external_server_is_a_clear_error(tmp_path, monkeypatch):
    from paynb.errors import SandboxError
    from paynb.sandbox.postgres import free_port

    monkeypatch.setenv(
        "PAYNB_SANDBOX_DATABASE_URL", f"postgresql://u:hidden-pw@127.0.0.1:{free_port()}/postgres"
    )
    with pytest.raises(SandboxError) as ei:
        Sandbox(tmp_path / "ext").up(echo=lambda m: None)
    assert "PAYNB_SANDBOX_DATABASE_URL" in str(ei.value) and "hidden-pw" not in str(ei.value)


def test_cfs_knobs_restart_the_cfs_server_with_faults(running_sandbox):
    """`up` again with other CFS knobs restarts only the CFS server; a 429 burst then reaches clients."""
    from paynb.cfs import CfsClient
    from paynb.errors import CfsError
    from paynb.sandbox.manager import CfsKnobs

    box, _ = running_sandbox
    before = box.state()
    try:
        env = box.up(scale="small", seed=7, cfs=CfsKnobs(burst_429=50), echo=lambda m: None)
        after = box.state()
        assert after.cfs_pid != before.cfs_pid
        assert (after.pg_port, after.s3_pid) == (before.pg_port, before.s3_pid)
        client = CfsClient(Settings.load(env, dotenv=None), max_retries=1, backoff_s=0.01)
        with pytest.raises(CfsError) as ei:
            client.check_credentials()
        assert ei.value.status == 429
    finally:
        box.up(scale="small", seed=7, echo=lambda m: None)  # back to no faults for the other tests


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        ({"fault_rate": 1.5}, "--cfs-fault-rate"),
        ({"drop_rate": -0.1}, "--cfs-drop-rate"),
        ({"latency_ms": -1}, "--cfs-latency-ms"),
        ({"token_ttl_s": 0}, "--cfs-token-ttl-s"),
    ],
)
def test_bad_cfs_knobs_are_refused_before_anything_starts(tmp_path, knobs, field):
    from paynb.sandbox.manager import CfsKnobs

    with pytest.raises(InputError, match=field):
        Sandbox(tmp_path / "k").up(cfs=CfsKnobs(**knobs), echo=lambda m: None)
    assert not (tmp_path / "k").exists()
