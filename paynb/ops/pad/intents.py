"""Intents of the PAD credit flow in paynb's ledger: what an apply is about to do and how far it got.

Uses the intents API of :mod:`paynb.jobs.ledger` (``record_intent``/``get_intent``/``mark_intent``;
states ``pending`` -> ``sent`` -> ``confirmed``). If that module is not installed, a minimal stand-in
with the same functions and states keeps the intents in ``<PAYNB_DATA_DIR>/pad_intents.sqlite3`` (table
``paynb_pad_intents``, so it can never clash with the ledger's own table).

The credit flow never depends on the ledger alone for safety: the memo is also found in CFS by its key
and the pay-db rows by ``credits.details``. The ledger says how far a run got and keeps the evidence.

Example::

    record_intent("pcr-1a2b", {"invoice_id": 10, "amount": "1.00"})
    mark_intent("pcr-1a2b", "sent", credit_memo_number="900001")
    get_intent("pcr-1a2b").state               # 'sent'
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from paynb.canonical import canonical_json
from paynb.errors import InputError, StoreError
from paynb.settings import Settings, get_settings
from paynb.timez import utcnow_naive

PENDING, SENT, CONFIRMED = "pending", "sent", "confirmed"


class IntentLike(Protocol):
    key: str
    state: str
    payload: Any

    @property
    def evidence(self) -> dict[str, Any]: ...


def _ledger() -> Any | None:
    try:
        from paynb.jobs import ledger
    except ImportError:
        return None
    return ledger if all(hasattr(ledger, f) for f in ("record_intent", "get_intent", "mark_intent")) else None


def backend_name() -> str:
    return "paynb.jobs.ledger" if _ledger() is not None else "pad_intents (stand-in)"


def record_intent(
    key: str, payload: Any, *, settings: Settings | None = None, run_id: str | None = None
) -> IntentLike:
    """Note that ``key`` is about to happen (state ``pending``). Same key and payload again: the existing
    intent; a different payload under the same key is refused (InputError)."""
    ledger = _ledger()
    if ledger is not None:
        return ledger.record_intent(key, payload, run_id=run_id, settings=settings)
    return _local(settings).record_intent(key, payload, run_id=run_id)


def get_intent(key: str, *, settings: Settings | None = None) -> IntentLike | None:
    ledger = _ledger()
    if ledger is not None:
        return ledger.get_intent(key, settings=settings)
    return _local(settings).get_intent(key)


def mark_intent(key: str, state: str, *, settings: Settings | None = None, **evidence: Any) -> IntentLike:
    """Move the intent to ``state`` and append ``evidence`` to its history."""
    ledger = _ledger()
    if ledger is not None:
        return ledger.mark_intent(key, state, settings=settings, **evidence)
    return _local(settings).mark_intent(key, state, **evidence)


# -- stand-in store (only when paynb.jobs.ledger is absent) ------------------------------------------------------
STATES = (PENDING, SENT, CONFIRMED, "failed", "abandoned")
FINAL = frozenset({CONFIRMED, "failed", "abandoned"})
DDL = """
CREATE TABLE IF NOT EXISTS paynb_pad_intents (
    key        varchar(200) PRIMARY KEY,
    state      varchar(20)  NOT NULL,
    payload    text         NOT NULL,
    history    text         NOT NULL,
    run_id     varchar(64),
    created_at varchar(40)  NOT NULL,
    updated_at varchar(40)  NOT NULL
)
"""


@dataclass(frozen=True)
class LocalIntent:
    key: str
    payload: Any
    state: str
    history: list[dict[str, Any]]
    run_id: str | None
    created_at: str
    updated_at: str

    @property
    def evidence(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for step in self.history:
            merged.update(step.get("evidence", {}))
        return merged


class _LocalStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(DDL)
        except Exception as err:
            raise StoreError(f"the intent store cannot be opened ({type(err).__name__})",
                             hint="check that PAYNB_DATA_DIR is writable") from None  # fmt: skip
        self.lock = threading.Lock()  # one writer at a time within this process

    def get_intent(self, key: str) -> LocalIntent | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM paynb_pad_intents WHERE key = :k"), {"k": key}).first()
        return _row(row) if row is not None else None

    def record_intent(self, key: str, payload: Any, *, run_id: str | None = None) -> LocalIntent:
        if not key or len(key) > 200:
            raise InputError("an intent key is 1 to 200 characters", field="key")
        text = canonical_json(payload)
        with self.lock, self.engine.begin() as conn:
            row = conn.execute(sa.text("SELECT * FROM paynb_pad_intents WHERE key = :k"), {"k": key}).first()
            if row is not None:
                if row.payload != text:
                    raise InputError(
                        "this intent key was already recorded with a different payload", field="key"
                    )
                return _row(row)
            now = utcnow_naive().isoformat()
            history = json.dumps([{"state": PENDING, "at": now, "evidence": {}}])
            conn.execute(
                sa.text("INSERT INTO paynb_pad_intents (key, state, payload, history, run_id, created_at, updated_at) "
                        "VALUES (:k, :s, :p, :h, :r, :now, :now)"),
                {"k": key, "s": PENDING, "p": text, "h": history, "r": run_id, "now": now},
            )  # fmt: skip
            row = conn.execute(sa.text("SELECT * FROM paynb_pad_intents WHERE key = :k"), {"k": key}).first()
        return _row(row)

    def mark_intent(self, key: str, state: str, **evidence: Any) -> LocalIntent:
        if state not in STATES:
            raise InputError(f"must be one of {', '.join(STATES)}", field="state")
        with self.lock, self.engine.begin() as conn:
            row = conn.execute(sa.text("SELECT * FROM paynb_pad_intents WHERE key = :k"), {"k": key}).first()
            if row is None:
                raise InputError("no intent with this key; record_intent() it first", field="key")
            current = _row(row)
            if current.state in FINAL:
                if state == current.state:
                    return current
                raise InputError(f"the intent is already {current.state}, which is final", field="state")
            now = utcnow_naive().isoformat()
            history = [
                *current.history,
                {"state": state, "at": now, "evidence": json.loads(canonical_json(evidence))},
            ]
            conn.execute(
                sa.text(
                    "UPDATE paynb_pad_intents SET state = :s, history = :h, updated_at = :now WHERE key = :k"
                ),
                {"s": state, "h": json.dumps(history), "now": now, "k": key},
            )
            row = conn.execute(sa.text("SELECT * FROM paynb_pad_intents WHERE key = :k"), {"k": key}).first()
        return _row(row)


def _row(row: Any) -> LocalIntent:
    return LocalIntent(row.key, json.loads(row.payload), row.state, json.loads(row.history), row.run_id,
                       row.created_at, row.updated_at)  # fmt: skip


_stores: dict[str, _LocalStore] = {}
_stores_lock = threading.Lock()


def _local(settings: Settings | None) -> _LocalStore:
    folder = Path((settings or get_settings()).data_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(folder / 'pad_intents.sqlite3').resolve()}"
    with _stores_lock:
        if url not in _stores:
            _stores[url] = _LocalStore(url)
        return _stores[url]


def dispose() -> None:
    """Forget open stand-in stores (tests switch data folders)."""
    with _stores_lock:
        for store in _stores.values():
            store.engine.dispose()
        _stores.clear()
