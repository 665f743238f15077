"""Read-only is enforced by PostgreSQL: a report notebook cannot write pay-db by any route, a data-fix
notebook alone gets the writer, and ``paynb doctor`` flags a reader that can write (docs/roles.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.cli import main
from paynb.jobs import run_notebook
from paynb.jobs.kernel_env import kernel_environment
from paynb.ops.doctor import run_checks
from paynb.sandbox.postgres import READER, WRITER
from paynb.settings import READ_ONLY_KERNEL, Settings
from tests.plugins.db import as_role

NOTEBOOK = Path(__file__).parent / "notebooks" / "stale_report_writes.ipynb"


def invoices_digest(admin_url: str) -> str:
    eng = sa.create_engine(admin_url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            rows = c.execute(sa.text("SELECT id, total, invoice_status_code FROM invoices ORDER BY id")).all()
    finally:
        eng.dispose()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def run_settings(pay_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    return Settings.load(dotenv=None)


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("route", "ename"),
    [
        ("read_connection", "ReadOnlyViolation"),  # SET TRANSACTION READ WRITE, then UPDATE as the reader
        ("write_transaction", "ReadOnlyViolation"),
        ("psycopg2", "InsufficientPrivilege"),  # raw driver with PAYNB_DATABASE_URL
        ("write_engine", "ConfigError"),  # the writer URL never reached the report's kernel
    ],
)
def test_a_report_cannot_write_by_any_route(
    route: str, ename: str, run_settings: Settings, sandbox_db_url: str, tmp_path: Path
) -> None:
    before = invoices_digest(sandbox_db_url)
    result = run_notebook(NOTEBOOK, {"route": route}, settings=run_settings, cwd=tmp_path)
    assert (result.status, result.failure_kind) == ("failed", "cell_error"), result.message
    assert result.record["failure_detail"]["ename"] == ename
    assert invoices_digest(sandbox_db_url) == before


@pytest.mark.notebook
def test_paynb_run_exits_non_zero_when_a_report_writes(
    run_settings: Settings, sandbox_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    before = invoices_digest(sandbox_db_url)
    code = main(["run", str(NOTEBOOK), "-p", "route", "read_connection", "--json"])
    assert code == 3
    assert json.loads(capsys.readouterr().out)["status"] == "failed"
    assert invoices_digest(sandbox_db_url) == before


@pytest.mark.notebook
def test_only_a_datafix_notebook_gets_the_writer(
    run_settings: Settings, sandbox_db_url: str, tmp_path: Path
) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.metadata["paynb"] = {"kind": "datafix"}
    datafix = tmp_path / "datafix_copy.ipynb"
    nbformat.write(nb, datafix)
    before = invoices_digest(sandbox_db_url)
    result = run_notebook(datafix, {"route": "write_engine"}, settings=run_settings, cwd=tmp_path)
    assert result.ok, result.message
    assert invoices_digest(sandbox_db_url) != before  # the writer may update invoices


def test_report_kernels_lose_every_copy_of_the_writer_url() -> None:
    writer = "postgresql://paynb_writer:w-secret-123@db:5432/pay"
    settings = Settings.load({"PAYNB_DATABASE_WRITE_URL": writer}, dotenv=None)
    environ = {
        "PAYNB_DATABASE_WRITE_URL": writer,
        "PAY_DATABASE_WRITE_URL": writer,
        "MY_COPY": writer,
        "X": "1",
    }
    add, drop = kernel_environment({"metadata": {}}, "run-1", settings, environ)
    assert drop == {"PAYNB_DATABASE_WRITE_URL", "PAY_DATABASE_WRITE_URL", "MY_COPY"}
    assert add[READ_ONLY_KERNEL] == "1"
    # even a .env file naming the writer is ignored in such a kernel
    assert not Settings.load(
        {"PAYNB_DATABASE_WRITE_URL": writer, READ_ONLY_KERNEL: "1"}, dotenv=None
    ).database_write_url
    add, drop = kernel_environment({"metadata": {"paynb": {"kind": "datafix"}}}, "run-2", settings, environ)
    assert drop == set() and READ_ONLY_KERNEL not in add


def _checks(**env: str) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in run_checks(Settings.load(env, dotenv=None))}


def test_doctor_passes_the_sandbox_roles(sandbox_db_url: str) -> None:
    checks = _checks(
        PAYNB_DATABASE_URL=as_role(sandbox_db_url, READER),
        PAYNB_DATABASE_WRITE_URL=as_role(sandbox_db_url, WRITER),
    )
    assert checks["reader cannot write"][0] == "ok"
    assert checks["writer role"][0] == "ok" and "not a superuser" in checks["writer role"][1]
    assert checks["reader sees sessions"][0] == "ok"  # the sandbox reader has pg_read_all_stats
    # as the writer (no pg_read_all_stats) `db activity` would be blind to other roles' sessions
    blind = _checks(PAYNB_DATABASE_URL=as_role(sandbox_db_url, WRITER))["reader sees sessions"]
    assert blind[0] == "warn" and f"GRANT pg_read_all_stats TO {WRITER}" in blind[1]


def test_doctor_flags_a_reader_that_can_write(sandbox_db_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    checks = _checks(PAYNB_DATABASE_URL=sandbox_db_url)  # the superuser as "reader"
    assert checks["reader cannot write"][0] == "fail" and "SUPERUSER" in checks["reader cannot write"][1]
    assert checks["writer role"][0] == "warn"
    assert not any("read-only session ok" in d for _, d in checks.values())
    # a plain role with one stray UPDATE grant is caught too
    admin = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with admin.begin() as c:
        c.exec_driver_sql(f"GRANT UPDATE ON invoices TO {READER}")
    admin.dispose()
    checks = _checks(
        PAYNB_DATABASE_URL=as_role(sandbox_db_url, READER), PAYNB_DATABASE_WRITE_URL=sandbox_db_url
    )
    assert checks["reader cannot write"] == ("fail", checks["reader cannot write"][1])
    assert "invoices:UPDATE" in checks["reader cannot write"][1]
    assert checks["writer role"][0] == "fail"  # a superuser writer


def test_doctor_cli_exits_non_zero_for_a_writable_reader(
    sandbox_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PAYNB_DATABASE_URL", sandbox_db_url)
    assert main(["doctor", "--json"]) == 1
    rows = {r["check"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert rows["reader cannot write"] == "fail"
