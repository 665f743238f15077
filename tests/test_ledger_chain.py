"""The chain without a kernel or pay-db: intents covered by it, keyed hashing, anchors (archived, spooled,
flushed), private files, and a ledger written before applies joined the chain."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from paynb.canonical import canonical_json, canonical_sha256, sha256_hex
from paynb.jobs.archive import flush_spool
from paynb.jobs.audit import verify
from paynb.ledger import Ledger, open_ledger, write_anchor
from paynb.ledger.anchors import spooled_anchors
from paynb.ledger.check import check_ledger
from paynb.sandbox.postgres import free_port
from paynb.settings import Settings
from tests.test_jobs_ledger import make_record


def _settings(tmp_path: Path, **extra: str) -> Settings:
    return Settings.load(env={"PAYNB_DATA_DIR": str(tmp_path / "data"), **extra}, dotenv=None)


def _sql(settings: Settings, statement: str, *args: object) -> None:
    with sqlite3.connect(Path(settings.data_dir) / "ledger.sqlite") as db:
        db.execute(statement, args)


def _bad(settings: Settings) -> list[str]:
    return sorted(f"{r.kind}:{r.state}" for r in verify(all=True, settings=settings) if not r.ok)


def _credit_intent(ledger: Ledger) -> None:
    ledger.record_intent("pcr-1", {"invoice_id": 10, "amount": "1.00"})
    ledger.mark_intent("pcr-1", "sent", credit_memo_number="900001")


@pytest.mark.parametrize(
    ("tamper", "statement"),
    [
        ("edit the amount", "UPDATE paynb_intents SET payload = replace(payload, '1.00', '9.00')"),
        (
            "edit amount and its sha",
            "UPDATE paynb_intents SET payload = replace(payload, '1.00', '9.00'), "
            "payload_sha256 = '" + "0" * 64 + "'",
        ),
        ("roll back the state", "UPDATE paynb_intents SET state = 'pending'"),
        ("edit the evidence", "UPDATE paynb_intents SET history = replace(history, '900001', '900002')"),
        ("delete every intent", "DELETE FROM paynb_intents"),
        (
            "add one outside the chain",
            "INSERT INTO paynb_intents SELECT 'pcr-2', payload, payload_sha256, state, "
            "history, run_id, created_at, updated_at FROM paynb_intents",
        ),
    ],
)
def test_intent_tampering_fails_audit_verify(tmp_path: Path, tamper: str, statement: str) -> None:
    settings = _settings(tmp_path)
    _credit_intent(open_ledger(settings))
    assert _bad(settings) == []
    _sql(settings, statement)
    assert "intent:tampered" in _bad(settings), tamper


def test_each_intent_step_is_a_chain_entry(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ledger = open_ledger(settings)
    _credit_intent(ledger)
    steps = ledger.entries(kind="intent")
    assert [(e.ref, e.event) for e in steps] == [("pcr-1", "pending"), ("pcr-1", "sent")]
    assert steps[1].record["evidence"] == {"credit_memo_number": "900001"}
    assert steps[0].record["payload_sha256"] == canonical_sha256({"invoice_id": 10, "amount": "1.00"})
    # deleting the intent's chain entry (the tail) is caught by the intent check even with no anchor
    _sql(settings, "DELETE FROM paynb_ledger WHERE seq = 2")
    assert "intent:tampered" in _bad(settings)


def test_keyed_chain_cannot_be_rechained_without_the_key(tmp_path: Path) -> None:
    keyed = _settings(tmp_path, PAYNB_LEDGER_KEY="a-ledger-key-only-the-auditor-has")
    ledger = open_ledger(keyed)
    first = ledger.append(make_record(rows_affected=1))
    ledger.append(make_record())
    assert first.hash_mode.startswith("hmac-sha256:")
    report = check_ledger(ledger, keyed)
    assert report.ok and report.mode.startswith("HMAC-SHA256")
    # someone who can edit the file edits a record and re-chains it with plain sha256, as a script would
    rows = (
        sqlite3.connect(Path(keyed.data_dir) / "ledger.sqlite")
        .execute("SELECT seq, record FROM paynb_ledger ORDER BY seq")
        .fetchall()
    )
    previous = None
    for seq, text in rows:
        record = json.loads(text.replace('"rows_affected":1', '"rows_affected":0'))
        record["previous_record_hash"] = previous
        new = canonical_json(record)
        previous = sha256_hex(new)
        _sql(
            keyed,
            "UPDATE paynb_ledger SET record = ?, record_hash = ?, previous_record_hash = ? WHERE seq = ?",
            new,
            previous,
            record["previous_record_hash"],
            seq,
        )
    assert "run:tampered" in _bad(keyed)
    # without the key configured, verify says the keyed entries cannot be checked
    unkeyed = _settings(tmp_path)
    assert "PAYNB_LEDGER_KEY" in check_ledger(open_ledger(unkeyed), unkeyed).mode


def test_anchor_spools_when_the_archive_is_down_and_flush_delivers_it(
    s3_env: dict[str, str], s3_store_url: str
) -> None:
    up = Settings.load(env={**s3_env, "PAYNB_ARCHIVE_URL": s3_store_url}, dotenv=None)
    down = Settings.load(
        env={**s3_env, "PAYNB_ARCHIVE_URL": s3_store_url, "PAYNB_S3_ENDPOINT": f"127.0.0.1:{free_port()}"},
        dotenv=None,
    )
    ledger = open_ledger(down)
    entry = ledger.append(make_record())
    anchor = write_anchor(ledger, entry, down)
    assert anchor.state == "spooled"
    [spooled] = spooled_anchors(down, ledger.ledger_id)
    assert spooled["seq"] == entry.seq and spooled["record_hash"] == entry.record_hash
    folder = next((Path(down.data_dir) / "spool").iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())

    [flushed] = flush_spool(up, open_ledger(up))  # the archive is back
    assert flushed.done and spooled_anchors(up, ledger.ledger_id) == []
    report = check_ledger(open_ledger(up), up)
    assert report.ok and report.anchor.startswith(f"seq {entry.seq} at s3://")
    # verify compares with the delivered anchor: cutting the entry is found
    _sql(up, "DELETE FROM paynb_ledger WHERE seq = ?", entry.seq)
    assert any(state == "chain_broken" for state, _ in check_ledger(open_ledger(up), up).overall)


def test_every_file_the_ledger_writes_is_private(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ledger = open_ledger(settings)
    _credit_intent(ledger)
    entry = ledger.append(make_record())
    write_anchor(ledger, entry, settings)
    data = Path(settings.data_dir)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    written = [p for p in data.iterdir() if p.name.startswith("ledger.sqlite")]
    assert written and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)


def test_a_ledger_from_before_the_one_chain_is_carried_over(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = Path(settings.data_dir)
    path.mkdir(parents=True)
    old = [make_record(), make_record()]
    previous = None
    with sqlite3.connect(path / "ledger.sqlite") as db:
        db.execute(
            "CREATE TABLE paynb_runs (run_id TEXT PRIMARY KEY, seq INTEGER, notebook TEXT, status TEXT, "
            "started_at TEXT, record TEXT, record_hash TEXT, previous_record_hash TEXT, "
            "idempotency_key TEXT, created_at TEXT)"
        )
        for seq, record in enumerate(old, start=1):
            record = {**record, "previous_record_hash": previous, "idempotency_duplicate_of": None}
            text = canonical_json(record)
            digest = sha256_hex(text)
            db.execute(
                "INSERT INTO paynb_runs VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    record["run_id"],
                    seq,
                    "notebooks/x.ipynb",
                    "succeeded",
                    record["started_at"],
                    text,
                    digest,
                    previous,
                    None,
                    "2026-01-01T00:00:00+00:00",
                ),
            )
            previous = digest
        payload = {"invoice_id": 10, "amount": "1.00"}
        history = [
            {"state": "pending", "at": "t0", "evidence": {}},
            {"state": "sent", "at": "t1", "evidence": {"credit_memo_number": "900001"}},
        ]
        db.execute(
            "CREATE TABLE paynb_intents (key TEXT PRIMARY KEY, payload TEXT, payload_sha256 TEXT, "
            "state TEXT, history TEXT, run_id TEXT, created_at TEXT, updated_at TEXT)"
        )
        db.execute(
            "INSERT INTO paynb_intents VALUES (?,?,?,?,?,?,?,?)",
            (
                "pcr-old",
                canonical_json(payload),
                canonical_sha256(payload),
                "sent",
                canonical_json(history),
                None,
                "t0",
                "t1",
            ),
        )
    ledger = Ledger(f"sqlite:///{path / 'ledger.sqlite'}")
    assert [e.ref for e in ledger.runs()] == [r["run_id"] for r in old]
    assert [e.event for e in ledger.entries(kind="intent")] == ["pending", "sent"]
    assert check_ledger(ledger, settings).ok


def test_scrub_secrets_reaches_strings_beside_long_id_lists() -> None:
    from paynb.ledger.store import scrub_secrets

    value = {"ids": list(range(5)), "mixed": [1, "pw=s3cret", True], "tuple": (7, 8), "s3cret": "k"}
    assert scrub_secrets(value, ["s3cret"]) == {
        "ids": [0, 1, 2, 3, 4],
        "mixed": [1, "pw=***", True],
        "tuple": [7, 8],
        "***": "k",
    }
