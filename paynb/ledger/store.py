"""The ledger's tables and its one hash chain (runs, applies and intent events in one sequence).

Where it lives: ``PAYNB_LEDGER_URL`` (any SQLAlchemy URL; PostgreSQL in production) or, by default, a
SQLite file ``<data_dir>/ledger.sqlite`` (0600 in a 0700 folder). It is never pay-db unless that URL is
given on purpose.

Tables
------
``paynb_ledger``
    The chain. One row per entry: ``seq`` (position), ``kind`` (``run`` | ``apply`` | ``intent``),
    ``event`` (``started`` | ``finished`` | ``failed`` for runs and applies; the new state for
    intents), ``ref`` (run id, apply id or intent key), ``run_id`` (the ``paynb run`` it belongs to),
    ``record`` (canonical JSON), ``record_hash`` and ``previous_record_hash`` (also inside the record).
    ``record_hash`` is sha256(record), or HMAC-SHA256 under ``PAYNB_LEDGER_KEY`` (``hash_mode`` says
    which). Appends take a lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``pg_advisory_xact_lock``) and
    read the head in the same transaction, so parallel writers still form one unbroken chain.
``paynb_run_objects``
    Where each archived object landed and its version id. Delivery happens after the record is
    chained (and, for spooled runs, maybe days later), so it is kept beside the chain, not in it.
``paynb_intents``
    For operations that call out to other systems (e.g. a CFS credit): ``record_intent(key, payload)``
    before the call, ``mark_intent(key, state, **evidence)`` after, ``get_intent(key)`` to find out on
    a retry whether it already happened. States: ``pending`` → ``sent`` → ``confirmed`` | ``failed`` |
    ``abandoned``; the last three are final. Every change also appends an ``intent`` entry to the chain
    (key, state, payload sha256, evidence) in the same transaction, so ``paynb audit verify`` finds an
    edited or deleted intent.
``paynb_ledger_meta``
    ``ledger_id``: names this ledger's anchors in the archive (``anchors/<ledger_id>/<seq>.json``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets as _secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from paynb.canonical import canonical_json, canonical_sha256, sha256_hex
from paynb.errors import InputError, JobError, SecretLeak
from paynb.files import private_dir, tighten
from paynb.settings import Settings, get_settings

LEDGER_FILE = "ledger.sqlite"
_PG_LOCK_ID = 0x7061796E62  # "paynb"
INTENT_STATES = ("pending", "sent", "confirmed", "failed", "abandoned")
FINAL_STATES = frozenset({"confirmed", "failed", "abandoned"})
KINDS = ("run", "apply", "intent")
PLAIN_MODE = "sha256"
KEYED_MODE = "hmac-sha256"

metadata = sa.MetaData()
chain = sa.Table(
    "paynb_ledger",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(200), nullable=False, index=True),
    sa.Column("run_id", sa.String(36), index=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("previous_record_hash", sa.String(64)),
    sa.Column("hash_mode", sa.String(40), nullable=False),
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
meta = sa.Table(
    "paynb_ledger_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
# the chain before applies and intents joined it (one row per finished run); copied once, see _migrate
_legacy_runs = sa.Table(
    "paynb_runs",
    sa.MetaData(),
    sa.Column("run_id", sa.String(36)),
    sa.Column("seq", sa.Integer),
    sa.Column("notebook", sa.Text),
    sa.Column("status", sa.String(16)),
    sa.Column("record", sa.Text),
    sa.Column("record_hash", sa.String(64)),
    sa.Column("previous_record_hash", sa.String(64)),
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("created_at", sa.String(40)),
)


@dataclass(frozen=True)
class LedgerEntry:
    """One position of the chain. For ``kind == "run"`` entries ``run_id`` is the run itself; for
    applies and intents it is the ``paynb run`` they happened in (None outside a run)."""

    seq: int
    run_id: str | None
    record: dict[str, Any]
    record_hash: str
    previous_record_hash: str | None
    idempotency_key: str | None
    created_at: str
    raw_record: str  # the stored text, exactly (verify hashes this, not a re-serialisation)
    kind: str = "run"
    event: str = "finished"
    ref: str = ""
    subject: str = ""
    status: str = ""
    hash_mode: str = PLAIN_MODE


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


@dataclass(frozen=True)
class ChainKey:
    """How entries are hashed: plain sha256, or HMAC-SHA256 under ``PAYNB_LEDGER_KEY``."""

    secret: bytes = b""
    key_id: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.secret:
            object.__setattr__(self, "key_id", ledger_key_id(self.secret))

    @property
    def mode(self) -> str:
        return f"{KEYED_MODE}:{self.key_id}" if self.secret else PLAIN_MODE

    def digest(self, text: str) -> str:
        if not self.secret:
            return sha256_hex(text)
        return hmac.new(self.secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def ledger_key_id(secret: bytes) -> str:
    """A name for the key that reveals nothing about it."""
    return hashlib.sha256(b"paynb-ledger-key-id\0" + secret).hexdigest()[:16]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def scrub_secrets(value: Any, secret_values: list[str]) -> Any:
    """``value`` with every occurrence of a secret value inside its strings replaced by ``***``."""
    if not secret_values:
        return value
    if isinstance(value, str):
        for secret in secret_values:
            if secret and secret in value:
                value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {scrub_secrets(k, secret_values): scrub_secrets(v, secret_values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # long id lists (a statement run's 14k ids) hold no strings: skip the per-item calls
        if all(type(v) is int for v in value):
            return list(value)
        return [scrub_secrets(v, secret_values) for v in value]
    return value


class Ledger:
    """Open with :func:`open_ledger`. Safe to share between threads; processes coordinate through
    the database lock."""

    _init_lock = threading.Lock()

    def __init__(self, url: str, *, key: ChainKey | None = None, secret_values: list[str] | None = None):
        self._url = url
        self.key = key or ChainKey()
        #: configured secrets; an entry holding one is refused (SecretLeak) before anything is written
        self.secret_values = list(secret_values or [])
        parsed = make_url(url)
        self.display_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        self.path: Path | None = None
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                self.path = Path(parsed.database)
                private_dir(self.path.parent)
            # pooled: reopening the file per append (and SQLite's checkpoint when the last connection
            # closes) cost more than the append itself; every transaction still takes the file lock
            self.engine = sa.create_engine(url, pool_size=2, max_overflow=8, connect_args={"timeout": 60})
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = sa.create_engine(url, poolclass=NullPool)
        with self._init_lock, self._guard("create its tables"):
            with self.engine.begin() as conn:
                self._lock(conn)
                metadata.create_all(conn)
                self.ledger_id = self._ledger_id(conn)
                self._migrate(conn)
        self.tighten_files()

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

    def tighten_files(self) -> None:
        """SQLite creates its file and WAL side files with the umask's mode; make them 0600."""
        if self.path is None:
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            tighten(Path(f"{self.path}{suffix}"))

    def _ledger_id(self, conn: sa.Connection) -> str:
        found = conn.execute(sa.select(meta.c.value).where(meta.c.name == "ledger_id")).scalar_one_or_none()
        if found:
            return found
        ledger_id = _secrets.token_hex(8)
        conn.execute(meta.insert().values(name="ledger_id", value=ledger_id))
        return ledger_id

    def _migrate(self, conn: sa.Connection) -> None:
        """Carry over a ledger written before applies and intents joined the chain: its run rows keep
        their seq, text and hashes (so the old chain still verifies; the old table is left as it was),
        and each step of its intents is chained after them."""
        if conn.execute(sa.select(sa.func.count()).select_from(chain)).scalar_one():
            return
        if sa.inspect(conn).has_table("paynb_runs"):
            for row in conn.execute(sa.select(_legacy_runs).order_by(_legacy_runs.c.seq)):
                conn.execute(
                    chain.insert().values(
                        seq=row.seq,
                        kind="run",
                        event="finished",
                        ref=row.run_id,
                        run_id=row.run_id,
                        subject=row.notebook,
                        status=row.status,
                        record=row.record,
                        record_hash=row.record_hash,
                        previous_record_hash=row.previous_record_hash,
                        hash_mode=PLAIN_MODE,
                        idempotency_key=row.idempotency_key,
                        created_at=row.created_at,
                    )
                )
        for row in conn.execute(sa.select(intents).order_by(intents.c.created_at, intents.c.key)).all():
            for step in json.loads(row.history):
                self._append_intent(
                    conn,
                    row.key,
                    step["state"],
                    row.payload_sha256,
                    step.get("evidence", {}),
                    step.get("at", row.created_at),
                    row.run_id,
                    None,
                )

    def _refuse_secrets(self, text: str) -> None:
        found = [s for s in self.secret_values if s and s in text]
        if found:
            raise SecretLeak(
                "a ledger entry would hold a configured secret value; nothing was written",
                hint="keep credentials out of plans, parameters and evidence (paynb.settings reads them)",
            )

    def _head(self, conn: sa.Connection) -> Any:
        return conn.execute(
            sa.select(chain.c.seq, chain.c.record_hash).order_by(chain.c.seq.desc()).limit(1)
        ).first()

    def _append(
        self,
        conn: sa.Connection,
        *,
        kind: str,
        event: str,
        ref: str,
        record: dict[str, Any],
        run_id: str | None,
        subject: str,
        status: str,
        idempotency_key: str | None = None,
        validate: Callable[[dict[str, Any]], Any] | None = None,
    ) -> LedgerEntry:
        """Chain ``record`` inside the caller's locked transaction."""
        head = self._head(conn)
        rec = dict(record)
        rec["previous_record_hash"] = head.record_hash if head else None
        if validate is not None:
            validate(rec)
        text = canonical_json(rec)
        self._refuse_secrets(text)
        digest = self.key.digest(text)
        created = now_iso()
        seq = (head.seq + 1) if head else 1
        conn.execute(
            chain.insert().values(
                seq=seq,
                kind=kind,
                event=event,
                ref=ref,
                run_id=run_id,
                subject=subject,
                status=status,
                record=text,
                record_hash=digest,
                previous_record_hash=rec["previous_record_hash"],
                hash_mode=self.key.mode,
                idempotency_key=idempotency_key,
                created_at=created,
            )
        )
        return LedgerEntry(
            seq,
            run_id,
            json.loads(text),
            digest,
            rec["previous_record_hash"],
            idempotency_key,
            created,
            text,
            kind,
            event,
            ref,
            subject,
            status,
            self.key.mode,
        )

    def append_entry(
        self,
        *,
        kind: str,
        event: str,
        ref: str,
        record: dict[str, Any],
        run_id: str | None = None,
        subject: str = "",
        status: str = "",
        validate: Callable[[dict[str, Any]], Any] | None = None,
    ) -> LedgerEntry:
        """Chain one entry (its ``previous_record_hash`` is filled in here)."""
        if kind not in KINDS:
            raise InputError(f"must be one of {', '.join(KINDS)}", field="kind")
        with self._guard(f"append a {kind} entry"), self.engine.begin() as conn:
            self._lock(conn)
            entry = self._append(
                conn,
                kind=kind,
                event=event,
                ref=ref,
                record=record,
                run_id=run_id,
                subject=subject,
                status=status or event,
                validate=validate,
            )
        self.tighten_files()
        return entry

    # -- runs ----------------------------------------------------------------------------------------
    def append(
        self, record: dict[str, Any], *, validate: Callable[[dict[str, Any]], Any] | None = None
    ) -> LedgerEntry:
        """Chain a finished run's record (its ``previous_record_hash`` and ``idempotency_duplicate_of``
        are filled in here; ``validate`` checks the complete record before it is stored)."""
        with self._guard("append a run"), self.engine.begin() as conn:
            self._lock(conn)
            rec = dict(record)
            key = rec.get("idempotency_key")
            column_key = (
                key if key and rec.get("status") == "succeeded" and rec.get("dry_run") is not True else None
            )
            rec.setdefault("idempotency_duplicate_of", None)
            if column_key:
                earlier = conn.execute(
                    sa.select(chain.c.ref).where(chain.c.idempotency_key == column_key)
                ).scalar_one_or_none()
                if earlier:
                    rec["idempotency_duplicate_of"] = earlier
                    column_key = None
            entry = self._append(
                conn,
                kind="run",
                event="finished",
                ref=rec["run_id"],
                record=rec,
                run_id=rec["run_id"],
                subject=rec["notebook"]["path"],
                status=rec["status"],
                idempotency_key=column_key,
                validate=validate,
            )
        self.tighten_files()
        return entry

    def entries(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        kind: str | None = None,
        event: str | None = None,
        run_id: str | None = None,
        ref: str | None = None,
    ) -> list[LedgerEntry]:
        """Entries in chain order. Without ``kind``, every entry (runs, applies, intents)."""
        order = chain.c.seq.desc() if newest_first else chain.c.seq.asc()
        query = sa.select(chain).order_by(order)
        for column, value in (
            (chain.c.kind, kind),
            (chain.c.event, event),
            (chain.c.run_id, run_id),
            (chain.c.ref, ref),
        ):
            if value is not None:
                query = query.where(column == value)
        if limit:
            query = query.limit(limit)
        with self._guard("read entries"), self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def runs(self, *, limit: int | None = None, newest_first: bool = False) -> list[LedgerEntry]:
        """The finished runs' records."""
        return self.entries(limit=limit, newest_first=newest_first, kind="run", event="finished")

    def head(self) -> LedgerEntry | None:
        found = self.entries(limit=1, newest_first=True)
        return found[0] if found else None

    def get(self, run_id: str) -> LedgerEntry | None:
        """A finished run's entry by its full id."""
        found = self.entries(kind="run", event="finished", ref=run_id, limit=1)
        return found[0] if found else None

    def find(self, prefix: str) -> list[LedgerEntry]:
        """Every run or apply entry whose id starts with ``prefix`` (8+ characters), in chain order."""
        if len(prefix) < 8 or not re.fullmatch(r"[0-9a-f-]+", prefix):
            raise InputError("give the run or apply id (or its first 8 or more characters)", field="run_id")
        query = (
            sa.select(chain)
            .where(chain.c.kind.in_(("run", "apply")), chain.c.ref.startswith(prefix))
            .order_by(chain.c.seq)
        )
        with self._guard("read an entry"), self.engine.connect() as conn:
            found = [_entry(row) for row in conn.execute(query)]
        refs = {e.ref for e in found}
        if not found:
            raise InputError(f"no run or apply {prefix} in the ledger at {self.display_url}", field="run_id")
        if len(refs) > 1:
            raise InputError(f"{prefix} matches more than one id; give more characters", field="run_id")
        return found

    def find_run(self, prefix: str) -> LedgerEntry:
        """A finished run by id or unambiguous id prefix (at least 8 characters); InputError otherwise."""
        found = [e for e in self.find(prefix) if e.kind == "run"]
        finished = [e for e in found if e.event == "finished"]
        if not finished:
            raise InputError(f"no finished run {prefix} in the ledger at {self.display_url}", field="run_id")
        return finished[-1]

    def find_idempotency_key(self, key: str) -> LedgerEntry | None:
        """The successful run that recorded ``key``, if any (check this before applying a fix)."""
        with self._guard("read a run"), self.engine.connect() as conn:
            row = conn.execute(sa.select(chain).where(chain.c.idempotency_key == key)).first()
        return _entry(row) if row else None

    # -- archive deliveries --------------------------------------------------------------------------
    def add_object(
        self, run_id: str, name: str, *, store_url: str, key: str, sha256: str, version_id: str | None
    ) -> None:
        values = dict(
            run_id=run_id,
            name=name,
            store_url=store_url,
            key=key,
            sha256=sha256,
            version_id=version_id,
            delivered_at=now_iso(),
        )
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
    def record_intent(
        self, key: str, payload: Any, *, run_id: str | None = None, apply_id: str | None = None
    ) -> Intent:
        """Note that we are about to do ``key`` (state ``pending``). Idempotent for the same payload."""
        if not key or len(key) > 200:
            raise InputError("an intent key is 1 to 200 characters", field="key")
        text = canonical_json(payload)
        digest = canonical_sha256(payload)
        self._refuse_secrets(text)
        with self._guard("record an intent"), self.engine.begin() as conn:
            self._lock(conn)
            row = conn.execute(sa.select(intents).where(intents.c.key == key)).first()
            if row is not None:
                if row.payload_sha256 != digest:
                    raise InputError(
                        "this intent key was already recorded with a different payload", field="key"
                    )
                return _intent(row)
            now = now_iso()
            history = [{"state": "pending", "at": now, "evidence": {}}]
            conn.execute(
                intents.insert().values(
                    key=key,
                    payload=text,
                    payload_sha256=digest,
                    state="pending",
                    history=canonical_json(history),
                    run_id=run_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._append_intent(conn, key, "pending", digest, {}, now, run_id, apply_id)
        self.tighten_files()
        return Intent(key, json.loads(text), "pending", history, run_id, now, now)

    def get_intent(self, key: str) -> Intent | None:
        with self._guard("read an intent"), self.engine.connect() as conn:
            row = conn.execute(sa.select(intents).where(intents.c.key == key)).first()
        return _intent(row) if row else None

    def all_intents(self) -> list[Intent]:
        with self._guard("read intents"), self.engine.connect() as conn:
            return [_intent(row) for row in conn.execute(sa.select(intents).order_by(intents.c.key))]

    def intent_payload_sha256(self, key: str) -> str | None:
        """sha256 of the stored payload text as it is now (verify compares it with the chain's)."""
        with self._guard("read an intent"), self.engine.connect() as conn:
            text = conn.execute(sa.select(intents.c.payload).where(intents.c.key == key)).scalar_one_or_none()
        if text is None:
            return None
        try:
            return canonical_sha256(json.loads(text))
        except ValueError:
            return sha256_hex(text)

    def mark_intent(
        self, key: str, state: str, *, run_id: str | None = None, apply_id: str | None = None, **evidence: Any
    ) -> Intent:
        """Move an intent to ``state``, appending the evidence (e.g. a CFS receipt number) to its
        history. A final state cannot change; marking the same final state again is a no-op.
        ``run_id`` (when given) is kept in the evidence, as before."""
        if state not in INTENT_STATES:
            raise InputError(f"must be one of {', '.join(INTENT_STATES)}", field="state")
        if run_id is not None:
            evidence["run_id"] = run_id
        clean = json.loads(canonical_json(evidence))
        self._refuse_secrets(canonical_json(clean))
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
            now = now_iso()
            history = [*current.history, {"state": state, "at": now, "evidence": clean}]
            conn.execute(
                intents.update()
                .where(intents.c.key == key)
                .values(state=state, history=canonical_json(history), updated_at=now)
            )
            self._append_intent(conn, key, state, row.payload_sha256, clean, now, current.run_id, apply_id)
        self.tighten_files()
        return Intent(key, current.payload, state, history, current.run_id, current.created_at, now)

    def _append_intent(
        self,
        conn: sa.Connection,
        key: str,
        state: str,
        payload_sha256: str,
        evidence: dict[str, Any],
        at: str,
        run_id: str | None,
        apply_id: str | None,
    ) -> LedgerEntry:
        from paynb.ledger.entries import ENTRY_SCHEMA_VERSION, validate_entry

        record = {
            "schema_version": ENTRY_SCHEMA_VERSION,
            "entry": "intent",
            "key": key,
            "state": state,
            "payload_sha256": payload_sha256,
            "evidence": evidence,
            "at": at,
            "run_id": run_id,
            "apply_id": apply_id,
        }
        return self._append(
            conn,
            kind="intent",
            event=state,
            ref=key,
            record=record,
            run_id=run_id,
            subject=key,
            status=state,
            validate=validate_entry,
        )


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
        kind=row.kind,
        event=row.event,
        ref=row.ref,
        subject=row.subject,
        status=row.status,
        hash_mode=row.hash_mode,
    )


def _intent(row: Any) -> Intent:
    return Intent(
        row.key,
        json.loads(row.payload),
        row.state,
        json.loads(row.history),
        row.run_id,
        row.created_at,
        row.updated_at,
    )


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


def chain_key(settings: Settings) -> ChainKey:
    return ChainKey(settings.ledger_key.reveal().encode("utf-8") if settings.ledger_key else b"")


def missing_local_ledger(settings: Settings) -> Path | None:
    """The local ledger file when nothing has created it yet, so that read-only commands can say so
    instead of creating an empty ledger as a side effect. None for a ledger on a server."""
    if settings.ledger_url:
        return None
    path = _local_ledger_path(settings)
    return None if path.exists() else path


_OPEN: dict[tuple[str, str], Ledger] = {}
_OPEN_LOCK = threading.Lock()


def open_ledger(settings: Settings | None = None) -> Ledger:
    """The ledger the settings name (one instance per URL and chain key per process)."""
    settings = settings or get_settings()
    url = ledger_url(settings)
    key = chain_key(settings)
    with _OPEN_LOCK:
        ledger = _OPEN.get((url, key.mode))
        if ledger is None:
            ledger = _OPEN[(url, key.mode)] = Ledger(url, key=key)
        ledger.secret_values = settings.secret_values()
        return ledger
