"""The ledger: hash chain, serialized parallel appends, idempotency keys, intents; verify on the chain.
SQLite file by default, PostgreSQL when a URL is given. No kernel needed."""

from __future__ import annotations

import itertools
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.errors import InputError, JobError
from paynb.ids import new_run_id
from paynb.jobs.audit import verify
from paynb.jobs.run_record import read_record, record_bytes, record_hash, validate_record
from paynb.ledger import Ledger, ledger_url, open_ledger
from paynb.settings import Settings

_dbs = itertools.count()


def make_record(**overrides: Any) -> dict[str, Any]:
    """A valid execution record of a run that archived nothing."""
    record = {
        "schema_version": 1,
        "run_id": new_run_id(),
        "notebook": {"path": "notebooks/x.ipynb", "name": "x", "sha256": "0" * 64},
        "paynb_version": "0.1.0",
        "git": {"commit": None, "dirty": None},
        "parameters": {"days": 20},
        "parameters_hmac": {"days": "1" * 64},
        "hmac_key_id": "2" * 16,
        "defaults": [],
        "actor": "tester",
        "host": "h",
        "python": "3.11",
        "kernel": "k",
        "environment_sha256": "3" * 64,
        "started_at": "2026-01-02T03:04:05+00:00",
        "ended_at": "2026-01-02T03:04:06+00:00",
        "duration_ms": 1000,
        "status": "succeeded",
        "failure_kind": None,
        "failure_detail": None,
        "dry_run": False,
        "plan_sha256": None,
        "rows_affected": None,
        "idempotency_key": None,
        "summary": None,
        "reported": {},
        "report_problems": [],
        "output": None,
        "archive": None,
    }
    record.update(overrides)
    return record


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(env={"PAYNB_DATA_DIR": str(tmp_path / "data")}, dotenv=None)


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    return open_ledger(settings)


def test_default_ledger_is_a_sqlite_file_in_the_data_dir(settings: Settings, ledger: Ledger) -> None:
    assert ledger_url(settings).startswith("sqlite:///") and ledger_url(settings).endswith(
        "data/ledger.sqlite"
    )
    assert (Path(settings.data_dir) / "ledger.sqlite").is_file()


def test_appends_chain_and_verify_ok(settings: Settings, ledger: Ledger) -> None:
    first = ledger.append(make_record())
    second = ledger.append(make_record())
    assert first.previous_record_hash is None and second.previous_record_hash == first.record_hash
    assert second.record_hash == record_hash(second.record)
    assert read_record(record_bytes(second.record)) == second.record
    assert [e.run_id for e in ledger.entries()] == [first.run_id, second.run_id]
    assert ledger.find_run(second.run_id[:13]).run_id == second.run_id
    results = verify(all=True, settings=settings, ledger=ledger)
    assert [(r.state, r.detail) for r in results if r.kind == "run"] == [
        ("ok", "nothing archived (no archive)")
    ] * 2
    assert all(r.ok for r in results)


def test_deleting_a_ledger_row_breaks_the_chain(settings: Settings, ledger: Ledger) -> None:
    runs = [ledger.append(make_record()) for _ in range(3)]
    with sqlite3.connect(Path(settings.data_dir) / "ledger.sqlite") as db:
        db.execute("DELETE FROM paynb_ledger WHERE ref = ?", (runs[1].run_id,))
    states = {
        r.run_id: r.state for r in verify(all=True, settings=settings, ledger=ledger) if r.kind == "run"
    }
    assert states == {runs[0].run_id: "ok", runs[2].run_id: "chain_broken"}
    assert verify(runs[2].run_id, settings=settings, ledger=ledger)[0].state == "chain_broken"


def test_editing_a_ledger_row_is_tampering(settings: Settings, ledger: Ledger) -> None:
    run = ledger.append(make_record(rows_affected=1))
    with sqlite3.connect(Path(settings.data_dir) / "ledger.sqlite") as db:
        text = db.execute("SELECT record FROM paynb_ledger").fetchone()[0]
        db.execute(
            "UPDATE paynb_ledger SET record = ?", (text.replace('"rows_affected":1', '"rows_affected":0'),)
        )
    result, _ledger = verify(run.run_id, settings=settings, ledger=ledger)
    assert result.state == "tampered" and "does not match its hash" in result.detail


def test_parallel_appends_keep_one_intact_chain(settings: Settings, ledger: Ledger) -> None:
    def append(_: int) -> str:
        # a separate Ledger object per thread, as separate processes would have
        return Ledger(ledger_url(settings)).append(make_record()).run_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(append, range(40)))
    assert len(set(ids)) == 40
    entries = ledger.entries()
    assert [e.seq for e in entries] == list(range(1, 41))
    for before, after in itertools.pairwise(entries):
        assert after.previous_record_hash == before.record_hash
    assert all(r.ok for r in verify(all=True, settings=settings, ledger=ledger))


def test_idempotency_key_is_unique_for_successful_applies(ledger: Ledger) -> None:
    ledger.append(make_record(idempotency_key="fix:abc", dry_run=True))  # a dry run does not claim the key
    ledger.append(
        make_record(
            idempotency_key="fix:abc",
            status="failed",
            failure_kind="cell_error",
            failure_detail={"cell_index": 2, "ename": "E", "message": "m"},
        )
    )
    applied = ledger.append(make_record(idempotency_key="fix:abc"))
    assert ledger.find_idempotency_key("fix:abc").run_id == applied.run_id
    again = ledger.append(make_record(idempotency_key="fix:abc"))
    assert again.record["idempotency_duplicate_of"] == applied.run_id
    assert again.idempotency_key is None


def test_invalid_records_are_refused_before_writing(ledger: Ledger) -> None:
    with pytest.raises(JobError, match="run record field status"):
        ledger.append(make_record(status="maybe"), validate=validate_record)
    with pytest.raises(JobError, match="newer than this paynb"):
        validate_record(make_record(schema_version=2))
    assert ledger.entries() == []


def test_intents_record_mark_and_stay_final(ledger: Ledger) -> None:
    intent = ledger.record_intent("pad-credit:42", {"invoice": 42, "amount": "10.00"})
    assert intent.state == "pending"
    assert ledger.record_intent("pad-credit:42", {"invoice": 42, "amount": "10.00"}).state == "pending"
    with pytest.raises(InputError, match="different payload"):
        ledger.record_intent("pad-credit:42", {"invoice": 42, "amount": "99.00"})
    ledger.mark_intent("pad-credit:42", "sent", request_id="r-1")
    done = ledger.mark_intent("pad-credit:42", "confirmed", receipt="CFS-77")
    assert done.evidence == {"request_id": "r-1", "receipt": "CFS-77"}
    assert [step["state"] for step in ledger.get_intent("pad-credit:42").history] == [
        "pending",
        "sent",
        "confirmed",
    ]
    assert ledger.mark_intent("pad-credit:42", "confirmed").state == "confirmed"
    with pytest.raises(InputError, match="final"):
        ledger.mark_intent("pad-credit:42", "failed")
    with pytest.raises(InputError, match="record_intent"):
        ledger.mark_intent("unknown", "sent")
    assert ledger.get_intent("unknown") is None


def test_postgresql_ledger_when_a_url_is_set(pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = f"paynb_ledger_{next(_dbs)}"
    admin = sa.create_engine(pg_server.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = pg_server.url(name).render_as_string(hide_password=False)
    settings = Settings.load(env={"PAYNB_LEDGER_URL": url, "PAYNB_DATA_DIR": str(tmp_path)}, dotenv=None)
    ledger = open_ledger(settings)
    assert ledger.dialect == "postgresql"

    def append(_: int) -> str:
        return Ledger(url).append(make_record()).run_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(append, range(12)))
    assert len(set(ids)) == 12
    assert all(r.ok for r in verify(all=True, settings=settings, ledger=ledger))
    ledger.record_intent("k", {"a": 1})
    assert ledger.mark_intent("k", "sent", ref="x").evidence == {"ref": "x"}
    assert not (tmp_path / "ledger.sqlite").exists()
