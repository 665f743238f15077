"""A minimal intent store in paynb's ledger: what a data fix is about to do, and how far it got.

Stand-in for the intents API of ``paynb.jobs.ledger`` (same function names: :func:`record_intent`,
:func:`get_intent`, :func:`mark_intent`) until that module exists. It lives outside pay-db: a SQLite file
``<PAYNB_DATA_DIR>/intents.sqlite3`` by default, or the database named by ``PAYNB_LEDGER_URL``.

States only move forward (``recorded`` -> ``posted`` -> ``done``); marking an earlier state than the
current one is ignored, so a late or repeated call cannot undo progress. Evidence accumulates, and every
mark is kept in ``history``.

Example::

    record_intent("pcr-1a2b", {"invoice_id": 10, "amount": "1.00"})
    mark_intent("pcr-1a2b", "posted", credit_memo_number="900001")
    get_intent("pcr-1a2b")["state"]            # 'posted'
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from paynb.canonical import canonical_json, to_jsonable
from paynb.errors import ConfigError, InputError, StoreError
from paynb.settings import Settings, get_settings
from paynb.timez import utcnow_naive

STATES = ("recorded", "posted", "done")
DDL = """
CREATE TABLE IF NOT EXISTS paynb_intents (
    key        varchar(100) PRIMARY KEY,
    state      varchar(20)  NOT NULL,
    payload    text         NOT NULL,
    evidence   text         NOT NULL,
    history    text         NOT NULL,
    created_on varchar(32)  NOT NULL,
    updated_on varchar(32)  NOT NULL
)
"""
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Intent:
    key: str
    state: str
    payload: dict[str, Any]
    evidence: dict[str, Any]
    history: list[dict[str, Any]]
    created_on: str
    updated_on: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "state": self.state,
            "payload": self.payload,
            "evidence": self.evidence,
            "history": self.history,
            "created_on": self.created_on,
            "updated_on": self.updated_on,
        }


def store_url(settings: Settings | None = None) -> str:
    """Where intents live: ``PAYNB_LEDGER_URL`` if set, else a SQLite file in the data folder."""
    settings = settings or get_settings()
    if settings.ledger_url:
        return settings.ledger_url.reveal()
    folder = Path(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'intents.sqlite3').resolve()}"


def _engine(settings: Settings | None) -> Engine:
    url = store_url(settings)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            try:
                if url.startswith("sqlite"):
                    # a busy timeout instead of "database is locked" when two applies meet
                    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})
                else:
                    engine = sa.create_engine(url, poolclass=NullPool)
                with engine.begin() as conn:
                    conn.exec_driver_sql(DDL)
            except Exception as err:
                raise StoreError(
                    f"the intent ledger cannot be opened ({type(err).__name__})",
                    hint="check PAYNB_LEDGER_URL or that PAYNB_DATA_DIR is writable",
                ) from None
            _engines[url] = engine
        return engine


def _now() -> str:
    return utcnow_naive().isoformat(timespec="microseconds")


def _row_to_intent(row: Any) -> Intent:
    return Intent(
        key=row.key,
        state=row.state,
        payload=json.loads(row.payload),
        evidence=json.loads(row.evidence),
        history=json.loads(row.history),
        created_on=row.created_on,
        updated_on=row.updated_on,
    )


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > 100:
        raise InputError("an intent key is a non-empty string of at most 100 characters", field="key")
    return key


def get_intent(key: str, *, settings: Settings | None = None) -> Intent | None:
    """The intent stored under ``key``, or None."""
    engine = _engine(settings)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM paynb_intents WHERE key = :k"), {"k": _check_key(key)}
        ).first()
    return _row_to_intent(row) if row is not None else None


def record_intent(key: str, payload: dict[str, Any], *, settings: Settings | None = None) -> Intent:
    """Store the intent if ``key`` is new and return it. An existing intent is returned unchanged
    (its payload is the one recorded first), so recording twice is harmless."""
    engine = _engine(settings)
    now = _now()
    text = canonical_json(payload)
    history = json.dumps([{"state": "recorded", "at": now}])
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO paynb_intents (key, state, payload, evidence, history, created_on, updated_on) "
                "VALUES (:k, 'recorded', :p, '{}', :h, :now, :now) ON CONFLICT (key) DO NOTHING"
            ),
            {"k": _check_key(key), "p": text, "h": history, "now": now},
        )
        row = conn.execute(sa.text("SELECT * FROM paynb_intents WHERE key = :k"), {"k": key}).first()
    return _row_to_intent(row)


def mark_intent(key: str, state: str, *, settings: Settings | None = None, **evidence: Any) -> Intent:
    """Move the intent to ``state`` (never backwards) and merge ``evidence`` into it."""
    if state not in STATES:
        raise ConfigError(f"unknown intent state {state!r} (expected one of {', '.join(STATES)})")
    engine = _engine(settings)
    now = _now()
    with engine.begin() as conn:
        # lock the row where the back end can (PostgreSQL); SQLite serialises writers anyway
        sql = "SELECT * FROM paynb_intents WHERE key = :k"
        if engine.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        row = conn.execute(sa.text(sql), {"k": _check_key(key)}).first()
        if row is None:
            raise StoreError(f"no intent is recorded under {key!r}; record_intent comes first")
        current = _row_to_intent(row)
        new_state = state if STATES.index(state) >= STATES.index(current.state) else current.state
        merged = {**current.evidence, **to_jsonable(evidence)}
        history = [*current.history, {"state": state, "at": now, **to_jsonable(evidence)}]
        conn.execute(
            sa.text(
                "UPDATE paynb_intents SET state = :s, evidence = :e, history = :h, updated_on = :now WHERE key = :k"
            ),
            {"s": new_state, "e": canonical_json(merged), "h": json.dumps(history), "now": now, "k": key},
        )
        row = conn.execute(sa.text("SELECT * FROM paynb_intents WHERE key = :k"), {"k": key}).first()
    return _row_to_intent(row)


def dispose() -> None:
    """Close the store's engines (tests switch data folders between runs)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
