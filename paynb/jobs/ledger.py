"""The run ledger: one row per run, chained by hashes, plus the archive deliveries and an intents table.

Where it lives: ``PAYNB_LEDGER_URL`` (any SQLAlchemy URL; PostgreSQL in production) or, by default, a
SQLite file ``<data_dir>/ledger.sqlite``. It is never pay-db unless that URL is given on purpose.

Tables
------
``paynb_runs``
    ``run_id`` (PK), ``seq`` (chain position), ``record`` (canonical JSON), ``record_hash`` =
    sha256(record), ``previous_record_hash`` (the previous row's hash, also inside the record),
    ``idempotency_key`` (UNIQUE; set for successful non-dry runs that reported one). Appends take a
    lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``pg_advisory_xact_lock``) and read the chain head in
    the same transaction, so parallel runs still form one unbroken chain.
``paynb_run_objects``
    Where each archived object landed and its version id. Delivery happens after the record is
    chained (and, for spooled runs, maybe days later), so it is kept beside the chain, not in it.
``paynb_intents``
    For operations that call out to other systems (e.g. a CFS credit): ``record_intent(key, payload)``
    before the call, ``mark_intent(key, state, **evidence)`` after, ``get_intent(key)`` to find out on
    a retry whether it already happened. States: ``pending`` → ``sent`` → ``confirmed`` | ``failed`` |
    ``abandoned``; the last three are final. A second ``record_intent`` with the same key and payload
    returns the existing intent; with another payload it is refused.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from paynb.canonical import canonical_json, canonical_sha256
from paynb.errors import InputError, JobError
from paynb.jobs.run_record import record_hash, validate_record
from paynb.settings import Settings, get_settings

LEDGER_FILE = "ledger.sqlite"
_PG_LOCK_ID = 0x7061796E62  # "paynb"
INTENT_STATES = ("pending", "sent", "confirmed", "failed", "abandoned")
FINAL_STATES = frozenset({"confirmed", "failed", "abandoned"})

metadata = sa.MetaData()
runs = sa.Table(
    "paynb_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False, unique=True),
    sa.Column("notebook", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("previous_record_hash", sa.String(64)),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)
run_objects = sa.Table(
    "paynb_run_objects",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("store_url", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("version_id", sa.Text),
    sa.Column("delivered_at", sa.String(40), nullable=False),
)
intents = sa.Table(
    "paynb_intents",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("payload_sha256", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("history", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    run_id: str
    record: dict[str, Any]
    record_hash: str
    previous_record_hash: str | None
    idempotency_key: str | None
    created_at: str
    raw_record: str  # the stored text, exactly (verify hashes this, not a re-serialisation)


@dataclass(frozen=True)
class ArchivedObject:
    run_id: str
    name: str
    store_url: str
    key: str
    sha256: str
    version_id: str | None
    delivered_at: str


@dataclass(frozen=True)
class Intent:
    key: str
    payload: Any
    state: str
    history: list[dict[str, Any]]
    run_id: str | None
    created_at: str
    updated_at: str

    @property
    def evidence(self) -> dict[str, Any]:
        """All evidence given so far, later marks winning."""
        merged: dict[str, Any] = {}
        for step in self.history:
            merged.update(step.get("evidence", {}))
        return merged


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Ledger:
    """Open with :func:`open_ledger`. Safe to share between threads; processes coordinate through
    the database lock."""

    _init_lock = threading.Lock()

    def __init__(self, url: str) -> None:
        self._url = url
        parsed = make_url(url)
        self.display_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = sa.create_engine(url, poolclass=NullPool)
        with self._init_lock, self._guard("create its tables"):
            with self.engine.begin() as conn:
                self._lock(conn)
                metadata.create_all(conn)

    # -- plumbing ------------------------------------------------------------------------------------
    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            cause = type(getattr(exc, "orig", None) or exc).__name__
            raise JobError(f"the ledger at {self.display_url} could not {what} ({cause})") from None

    def _lock(self, conn: sa.Connection) -> None:
        if self.dialect == "postgresql":
            # as long as SQLite's busy timeout: a writer that never lets go is an error, not a hang
            conn.execute(sa.text("SET LOCAL lock_timeout = '60s'"))
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        # SQLite: the transaction itself began with BEGIN IMMEDIATE, which is the lock

    # -- runs ----------------------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> LedgerEntry:
        """Chain ``record`` (its ``previous_record_hash`` and ``idempotency_duplicate_of`` are filled in
        here), validate it complete, and store it. Returns the stored entry."""
        with self._guard("append a run"), self.engine.begin() as conn:
            self._lock(conn)
            head = conn.execute(
                sa.select(runs.c.seq, runs.c.record_hash).order_by(runs.c.seq.desc()).limit(1)
            ).first()
            rec = dict(record)
            rec["previous_record_hash"] = head.record_hash if head else None
            key = rec.get("idempotency_key")
            column_key = (
                key if key and rec.get("status") == "succeeded" and rec.get("dry_run") is not True else None
            )
            rec.setdefault("idempotency_duplicate_of", None)
            if column_key:
                earlier = conn.execute(
                    sa.select(runs.c.run_id).where(runs.c.idempotency_key == column_key)
                ).scalar_one_or_none()
                if earlier:
                    rec["idempotency_duplicate_of"] = earlier
                    column_key = None
            validate_record(rec, complete=True)
            text = canonical_json(rec)
            digest = record_hash(rec)
            created = _now()
            seq = (head.seq + 1) if head else 1
            conn.execute(
                runs.insert().values(
                    run_id=rec["run_id"], seq=seq, notebook=rec["notebook"]["path"], status=rec["status"],
                    started_at=rec["started_at"], record=text, record_hash=digest,
                    previous_record_hash=rec["previous_record_hash"], idempotency_key=column_key,
                    created_at=created,
                )
            )  # fmt: skip
        return LedgerEntry(
            seq, rec["run_id"], rec, digest, rec["previous_record_hash"], column_key, created, text
        )

    def entries(self, *, limit: int | None = None, newest_first: bool = False) -> list[LedgerEntry]:
        order = runs.c.seq.desc() if newest_first else runs.c.seq.asc()
        query = sa.select(runs).order_by(order)
        if limit:
            query = query.limit(limit)
        with self._guard("read runs"), self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def get(self, run_id: str) -> LedgerEntry | None:
        with self._guard("read a run"), self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        return _entry(row) if row else None

    def find_run(self, prefix: str) -> LedgerEntry:
        """A run by id or unambiguous id prefix (at least 8 characters); InputError otherwise."""
        if len(prefix) < 8 or not re.fullmatch(r"[0-9a-f-]+", prefix):
            raise InputError("give the run id (or its first 8 or more characters)", field="run_id")
        with self._guard("read a run"), self.engine.connect() as conn:
            rows = conn.execute(sa.select(runs).where(runs.c.run_id.startswith(prefix)).limit(2)).all()
        if not rows:
            raise InputError(f"no run {prefix} in the ledger at {self.display_url}", field="run_id")
        if len(rows) > 1:
            raise InputError(f"{prefix} matches more than one run; give more characters", field="run_id")
        return _entry(rows[0])

    def find_idempotency_key(self, key: str) -> LedgerEntry | None:
        """The successful run that recorded ``key``, if any (check this before applying a fix)."""
        with self._guard("read a run"), self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.idempotency_key == key)).first()
        return _entry(row) if row else None

    # -- archive deliveries --------------------------------------------------------------------------
    def add_object(
        self, run_id: str, name: str, *, store_url: str, key: str, sha256: str, version_id: str | None
    ) -> None:
        values = dict(run_id=run_id, name=name, store_url=store_url, key=key, sha256=sha256,
                      version_id=version_id, delivered_at=_now())  # fmt: skip
        with self._guard("record an archived object"), self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(run_objects.c.run_id).where(
                    run_objects.c.run_id == run_id, run_objects.c.name == name
                )
            ).first()
            if not exists:
                conn.execute(run_objects.insert().values(**values))

    def objects(self, run_id: str) -> dict[str, ArchivedObject]:
        with self._guard("read archived objects"), self.engine.connect() as conn:
            rows = conn.execute(sa.select(run_objects).where(run_objects.c.run_id == run_id)).all()
        return {r.name: ArchivedObject(**r._mapping) for r in rows}

    # -- intents -------------------------------------------------------------------------------------
    def record_intent(self, key: str, payload: Any, *, run_id: str | None = None) -> Intent:
        """Note that we are about to do ``key`` (state ``pending``). Idempotent for the same payload."""
        if not key or len(key) > 200:
            raise InputError("an intent key is 1 to 200 characters", field="key")
        text = canonical_json(payload)
        digest = canonical_sha256(payload)
        with self._guard("record an intent"), self.engine.begin() as conn:
            self._lock(conn)
            row = conn.execute(sa.select(intents).where(intents.c.key == key)).first()
            if row is not None:
                if row.payload_sha256 != digest:
                    raise InputError(
                        "this intent key was already recorded with a different payload", field="key"
                    )
                return _intent(row)
            now = _now()
            history = [{"state": "pending", "at": now, "evidence": {}}]
            conn.execute(
                intents.insert().values(key=key, payload=text, payload_sha256=digest, state="pending",
                                        history=canonical_json(history), run_id=run_id, created_at=now,
                                        updated_at=now)
            )  # fmt: skip
        return Intent(key, json.loads(text), "pending", history, run_id, now, now)

    def get_intent(self, key: str) -> Intent | None:
        with self._guard("read an intent"), self.engine.connect() as conn:
            row = conn.execute(sa.select(intents).where(intents.c.key == key)).first()
        return _intent(row) if row else None

    def mark_intent(self, key: str, state: str, **evidence: Any) -> Intent:
        """Move an intent to ``state``, appending the evidence (e.g. a CFS receipt number) to its
        history. A final state cannot change; marking the same final state again is a no-op."""
        if state not in INTENT_STATES:
            raise InputError(f"must be one of {', '.join(INTENT_STATES)}", field="state")
        with self._guard("update an intent"), self.engine.begin() as conn:
            self._lock(conn)
            row = conn.execute(sa.select(intents).where(intents.c.key == key)).first()
            if row is None:
                raise InputError("no intent with this key; record_intent() it first", field="key")
            current = _intent(row)
            if current.state in FINAL_STATES:
                if state == current.state:
                    return current
                raise InputError(f"the intent is already {current.state}, which is final", field="state")
            now = _now()
            history = [
                *current.history,
                {"state": state, "at": now, "evidence": json.loads(canonical_json(evidence))},
            ]
            conn.execute(
                intents.update()
                .where(intents.c.key == key)
                .values(state=state, history=canonical_json(history), updated_at=now)
            )
        return Intent(key, current.payload, state, history, current.run_id, current.created_at, now)


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        seq=row.seq,
        run_id=row.run_id,
        record=json.loads(row.record),
        record_hash=row.record_hash,
        previous_record_hash=row.previous_record_hash,
        idempotency_key=row.idempotency_key,
        created_at=row.created_at,
        raw_record=row.record,
    )


def _intent(row: Any) -> Intent:
    return Intent(row.key, json.loads(row.payload), row.state, json.loads(row.history), row.run_id,
                  row.created_at, row.updated_at)  # fmt: skip


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _local_ledger_path(settings: Settings) -> Path:
    return (Path(settings.data_dir).expanduser() / LEDGER_FILE).absolute()


def ledger_url(settings: Settings) -> str:
    if settings.ledger_url:
        return settings.ledger_url.reveal()
    return f"sqlite:///{_local_ledger_path(settings)}"


def missing_local_ledger(settings: Settings) -> Path | None:
    """The local ledger file when nothing has created it yet, so that read-only commands can say so
    instead of creating an empty ledger as a side effect. None for a ledger on a server."""
    if settings.ledger_url:
        return None
    path = _local_ledger_path(settings)
    return None if path.exists() else path


_OPEN: dict[str, Ledger] = {}
_OPEN_LOCK = threading.Lock()


def open_ledger(settings: Settings | None = None) -> Ledger:
    """The ledger the settings name (one instance per URL per process)."""
    url = ledger_url(settings or get_settings())
    with _OPEN_LOCK:
        if url not in _OPEN:
            _OPEN[url] = Ledger(url)
        return _OPEN[url]


# module-level conveniences over the configured ledger, for notebooks and ops code
def record_intent(
    key: str, payload: Any, *, run_id: str | None = None, settings: Settings | None = None
) -> Intent:
    return open_ledger(settings).record_intent(key, payload, run_id=run_id)


def get_intent(key: str, *, settings: Settings | None = None) -> Intent | None:
    return open_ledger(settings).get_intent(key)


def mark_intent(key: str, state: str, *, settings: Settings | None = None, **evidence: Any) -> Intent:
    return open_ledger(settings).mark_intent(key, state, **evidence)
