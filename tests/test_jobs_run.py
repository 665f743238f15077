"""``paynb run`` end to end: real kernels, the real S3 server over HTTP, the ledger and verify.

Each notebook execution starts a kernel (about a second), so each behaviour is executed once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from paynb.cli import main
from paynb.errors import InputError, SecretLeak
from paynb.jobs import run_notebook, verify
from paynb.jobs.archive import flush_spool, spooled_runs
from paynb.ledger import open_ledger
from paynb.sandbox.postgres import free_port
from paynb.settings import Settings
from paynb.store import open_store

pytestmark = pytest.mark.notebook
NOTEBOOKS = Path(__file__).parent / "notebooks"
SECRET = "cfs-client-secret-for-tests-0001"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(env={"PAYNB_DATA_DIR": str(tmp_path / "data")}, dotenv=None)


def archived(settings: Settings, result) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    store = open_store(result.record["archive"]["url"], settings)
    prefix = result.record["archive"]["prefix"]
    return {
        name: store.get(f"{prefix}/{name}") for name in ("notebook.ipynb", "notebook.html", "record.json")
    }


def test_success_run_records_redacts_and_archives(settings: Settings) -> None:
    result = run_notebook(
        NOTEBOOKS / "success.ipynb",
        {
            "invoice_id": "7",
            "label": "0042",
            "as_of": "2026-02-28",
            "amount": "12.50",
            "methods": "PAD,EFT",
            "account_name": "Jane Q Customer",
            "dry_run": "false",
        },
        settings=settings,
        idempotency_key="success-test:1",
    )
    assert result.ok, result.message
    rec = result.record
    assert rec["parameters"]["label"] == "0042" and rec["parameters"]["account_name"] == "***"
    assert rec["parameters"]["amount"] == "12.50" and rec["parameters"]["as_of"] == "2026-02-28"
    assert set(rec["parameters_hmac"]) == set(rec["parameters"])
    assert rec["defaults"] == ["mode"]
    # rows_affected is what paynb's applies counted (none here); the notebook's 7 is only a claim
    assert rec["rows_affected"] == 0 and rec["reported"]["claimed_rows_affected"] == 7
    assert rec["dry_run"] is False
    assert rec["summary"] == {"methods": ["PAD", "EFT"], "amount": "12.50"} and rec["reported"] == {
        "label": "0042",
        "claimed_rows_affected": 7,
    }
    assert rec["notebook"]["sha256"] == hashlib.sha256((NOTEBOOKS / "success.ipynb").read_bytes()).hexdigest()
    assert rec["kernel"] == "paynb-current-env" and rec["idempotency_key"] == "success-test:1"
    assert rec["archive"]["state"] == "archived" and result.archive_state == "archived"
    assert result.archive_url.startswith("file://") and f"/success/{result.run_id}/" in result.archive_url

    objects = archived(settings, result)
    assert hashlib.sha256(objects["record.json"]).hexdigest() == result.record_hash
    assert json.loads(objects["record.json"]) == rec
    for name in ("notebook.ipynb", "notebook.html", "record.json"):
        assert b"Jane Q Customer" not in objects[name], name
    nb = nbformat.reads(objects["notebook.ipynb"].decode(), as_version=4)
    assert nb.metadata.paynb["run_id"] == result.run_id and "archive" not in nb.metadata.paynb
    assert nb.metadata.papermill["parameters"]["account_name"] == "***"
    stdout = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"run {result.run_id}" in stdout and "label '0042' as_of 2026-02-28 amount 12.50" in stdout
    assert hashlib.sha256(objects["notebook.ipynb"]).hexdigest() == rec["output"]["notebook_sha256"]

    ok, _chain = verify(result.run_id, settings=settings)
    assert ok.state == "ok", ok.detail
    with pytest.raises(InputError, match="already succeeded") as info:
        run_notebook(NOTEBOOKS / "success.ipynb", settings=settings, idempotency_key="success-test:1")
    assert info.value.field == "idempotency_key"

    # tamper with the archived notebook: verify must notice
    path = (
        Path(rec["archive"]["url"].removeprefix("file://"))
        / rec["archive"]["objects"]["notebook.ipynb"]["key"]
    )
    path.write_bytes(path.read_bytes().replace(b"0042", b"0043"))
    bad, _chain = verify(result.run_id, settings=settings)
    assert bad.state == "tampered" and "notebook.ipynb" in bad.detail
    path.unlink()
    assert verify(result.run_id, settings=settings)[0].state == "missing"


@pytest.mark.parametrize(
    ("notebook", "timeout_s", "kind", "cell", "ename"),
    [
        ("cell_error", None, "cell_error", 4, "ValueError"),  # papermill adds a banner and an anchor cell
        ("timeout", 1, "timeout", 1, "CellTimeoutError"),
        ("dead_kernel", None, "dead_kernel", 1, "DeadKernelError"),
    ],
)
def test_failures_are_classified_recorded_and_archived(
    settings: Settings, notebook: str, timeout_s: int | None, kind: str, cell: int, ename: str
) -> None:
    result = run_notebook(NOTEBOOKS / f"{notebook}.ipynb", settings=settings, timeout_s=timeout_s)
    assert (result.status, result.failure_kind) == ("failed", kind)
    detail = result.record["failure_detail"]
    assert (detail["cell_index"], detail["ename"]) == (cell, ename)
    nb = result.notebook
    assert nb.metadata.papermill["exception"] is True
    assert nb.cells[cell].metadata.papermill["status"] == "failed"
    assert any(o.output_type == "error" for o in nb.cells[cell].outputs)
    assert all(not c.get("outputs") for c in nb.cells[cell + 1 :] if c.cell_type == "code")
    assert result.archive_state == "archived"
    assert verify(result.run_id, settings=settings)[0].state == "ok"


def test_secret_in_an_output_is_caught_and_nothing_is_archived(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYNB_CFS_CLIENT_SECRET", SECRET)  # the kernel inherits it and prints it
    leaky = Settings.load(
        env={"PAYNB_DATA_DIR": str(tmp_path / "data"), "PAYNB_CFS_CLIENT_SECRET": SECRET}, dotenv=None
    )
    with pytest.raises(SecretLeak, match="cell 1") as info:
        run_notebook(NOTEBOOKS / "secret_output.ipynb", settings=leaky)
    assert SECRET not in str(info.value)
    started, entry = open_ledger(leaky).entries()
    assert started.event == "started" and entry.event == "finished"
    assert entry.record["failure_kind"] == "secret_leak" and entry.record["archive"] is None
    assert entry.record["failure_detail"]["cells"] == [1]
    assert SECRET not in entry.raw_record
    archive = tmp_path / "data" / "archive"
    # only the chain head's anchor (of the run-started entry) is in the archive, no run object
    assert not archive.exists() or not any(p.is_file() for p in (archive / "runs").rglob("*"))
    assert not any(SECRET.encode() in p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())


def test_s3_archive_uses_versions_and_verify_catches_an_overwrite(
    s3_server, s3_settings: Settings, s3_store_url: str
) -> None:  # type: ignore[no-untyped-def]
    result = run_notebook(
        NOTEBOOKS / "success.ipynb", {"invoice_id": "1"}, settings=s3_settings, archive_url=s3_store_url
    )
    assert result.ok and result.archive_state == "archived"
    assert result.archive_url.startswith(s3_store_url + "/runs/")
    objects = result.record["archive"]["objects"]
    assert all(o["version_id"] for o in objects.values())
    store = open_store(s3_store_url, s3_settings)
    key = objects["notebook.html"]["key"]
    info = store.stat(key)
    assert (
        info.sha256 == objects["notebook.html"]["sha256"]
        and info.version_id == objects["notebook.html"]["version_id"]
    )
    delivered = open_ledger(s3_settings).objects(result.run_id)
    assert set(delivered) == {"notebook.ipynb", "notebook.html", "record.json"}
    assert verify(result.run_id, settings=s3_settings)[0].state == "ok"
    store.put(key, b"<html>rewritten</html>", overwrite=True)  # a new version over the evidence
    bad, _chain = verify(result.run_id, settings=s3_settings)
    assert bad.state == "tampered" and "newer version" in bad.detail


def test_s3_outage_spools_the_run_and_flush_delivers_it(
    s3_env: dict[str, str], s3_settings: Settings, s3_store_url: str
) -> None:
    down = Settings.load(env={**s3_env, "PAYNB_S3_ENDPOINT": f"127.0.0.1:{free_port()}"}, dotenv=None)
    result = run_notebook(NOTEBOOKS / "success.ipynb", settings=down, archive_url=s3_store_url)
    assert result.ok and result.archive_state == "spooled"
    assert "unreachable" in result.spool_reason
    assert result.record["archive"]["state"] == "spooled"
    [manifest] = spooled_runs(down)
    assert manifest["run_id"] == result.run_id and len(manifest["objects"]) == 3
    pending, _chain = verify(result.run_id, settings=down)
    assert pending.state == "missing" and "spool" in pending.detail

    [still_down] = flush_spool(down, open_ledger(down))
    assert still_down.error and still_down.remaining
    [flushed] = flush_spool(s3_settings, open_ledger(s3_settings))  # the store is back
    assert flushed.done and sorted(flushed.delivered) == ["notebook.html", "notebook.ipynb", "record.json"]
    assert spooled_runs(s3_settings) == []
    assert verify(result.run_id, settings=s3_settings)[0].state == "ok"


def test_gcs_archive_uses_generations_and_verify_catches_an_overwrite(
    gcs_settings: Settings, gcs_store_url: str
) -> None:
    result = run_notebook(
        NOTEBOOKS / "success.ipynb", {"invoice_id": "1"}, settings=gcs_settings, archive_url=gcs_store_url
    )
    assert result.ok and result.archive_state == "archived"
    assert result.archive_url.startswith(gcs_store_url + "/runs/")
    objects = result.record["archive"]["objects"]
    assert all(o["version_id"] for o in objects.values())  # GCS generations
    assert verify(result.run_id, settings=gcs_settings)[0].state == "ok"
    store = open_store(gcs_store_url, gcs_settings)
    store.put(objects["notebook.html"]["key"], b"<html>rewritten</html>", overwrite=True)
    bad = verify(result.run_id, settings=gcs_settings)[0]
    # the emulator's on-disk back end keeps no older generations, so the recorded one is gone (a prod
    # archive bucket with a locked retention policy refuses the overwrite in the first place)
    assert bad.state == "missing" and "is gone" in bad.detail


def test_gcs_outage_spools_the_run_and_flush_delivers_it(
    gcs_env: dict[str, str], gcs_settings: Settings, gcs_store_url: str
) -> None:
    down = Settings.load(
        env={**gcs_env, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}"}, dotenv=None
    )
    result = run_notebook(NOTEBOOKS / "success.ipynb", settings=down, archive_url=gcs_store_url)
    assert result.ok and result.archive_state == "spooled" and "unreachable" in result.spool_reason
    [flushed] = flush_spool(gcs_settings, open_ledger(gcs_settings))  # the emulator is back
    assert flushed.done and sorted(flushed.delivered) == ["notebook.html", "notebook.ipynb", "record.json"]
    assert verify(result.run_id, settings=gcs_settings)[0].state == "ok"


def test_parallel_runs_get_distinct_ids_and_an_intact_chain(settings: Settings) -> None:
    def run(n: int):  # type: ignore[no-untyped-def]
        return run_notebook(NOTEBOOKS / "success.ipynb", {"invoice_id": str(n)}, settings=settings)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, range(3)))
    assert all(r.ok for r in results)
    assert len({r.run_id for r in results}) == 3
    assert sorted(r.record["reported"].get("claimed_rows_affected", 0) for r in results) == [0, 1, 2]
    checks = verify(all=True, settings=settings)
    assert [c.state for c in checks if c.kind == "run"] == ["ok"] * 3 and all(c.ok for c in checks)
    # deleting a run's record breaks the chain at the next entry (or, at the tail, against the newest
    # anchor); the run whose record is gone while its archive holds one is noticed too
    runs = open_ledger(settings).runs()
    with sqlite3.connect(Path(settings.data_dir) / "ledger.sqlite") as db:
        db.execute("DELETE FROM paynb_ledger WHERE ref = ? AND event = 'finished'", (runs[1].run_id,))
    checks = verify(all=True, settings=settings)
    states = {c.run_id: c.state for c in checks if c.kind == "run"}
    assert states[runs[1].run_id] == "chain_broken"
    assert "chain_broken" in [c.state for c in checks if c.run_id != runs[1].run_id]


def test_cli_run_list_show_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    assert main(["runs", "list"]) == 0 and main(["audit", "verify", "--all"]) == 0
    assert capsys.readouterr().out.count("no runs recorded yet") == 2
    assert not (tmp_path / "data").exists()  # read-only commands create no ledger
    nb = str(NOTEBOOKS / "cell_error.ipynb")
    assert main(["run", nb, "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["failure_kind"] == "cell_error" and out["archive_state"] == "archived"
    assert main(["run", nb, "-p", "nope", "1"]) == 2
    assert "field 'nope'" in capsys.readouterr().err
    assert main(["run", str(NOTEBOOKS / "no_parameters.ipynb")]) == 1
    assert main(["run", str(NOTEBOOKS / "success.ipynb"), "--help-notebook", "--json"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in schema["parameters"]][:2] == ["invoice_id", "label"]
    assert main(["runs", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["run_id"] == out["run_id"] and row["status"] == "failed"
    assert main(["runs", "show", out["run_id"][:13]]) == 0
    assert "cell_error" in capsys.readouterr().out
    assert main(["audit", "verify", "--all"]) == 0
    assert main(["archive", "flush"]) == 0
    assert "spool is empty" in capsys.readouterr().out
