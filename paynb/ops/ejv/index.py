"""The local search index: for each scanned object (URL + etag) the records that name an invoice.

A SQLite file (default ``<data_dir>/ejv-index.sqlite``). An object whose etag and size are unchanged is
never read again; a changed or new one is re-scanned; one that disappeared from its folder is dropped.
The index only ever holds what the files say, so deleting it is always safe (``--reindex``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from paynb.errors import StoreError
from paynb.ops.ejv.scan import ROW_FIELDS, FileScan, Row

INDEX_SCHEMA_VERSION = 1
INDEX_FILE_NAME = "ejv-index.sqlite"

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    url        TEXT PRIMARY KEY,
    identity   TEXT NOT NULL,
    size       INTEGER,
    kind       TEXT NOT NULL,
    error      TEXT,
    lines      INTEGER NOT NULL DEFAULT 0,
    mentions   INTEGER NOT NULL DEFAULT 0,
    indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mentions (
    url TEXT NOT NULL,
    {", ".join(f"{name} {'INTEGER' if name in ('line', 'offset', 'batch_number', 'invoice_id', 'partner_disbursement_id', 'refunds_partial_id') else 'TEXT'}" for name in ROW_FIELDS)}
);
CREATE INDEX IF NOT EXISTS ix_mentions_invoice ON mentions (invoice_id);
CREATE INDEX IF NOT EXISTS ix_mentions_url ON mentions (url);
"""


@dataclass(frozen=True)
class IndexedFile:
    url: str
    identity: str
    size: int | None
    kind: str
    error: str | None
    lines: int
    mentions: int


class SearchIndex:
    """One SQLite connection, used from one thread at a time (writes happen on the caller's thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the EJV search index {self.path}: {err}") from None
        self._lock = threading.Lock()
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        if self._version() not in (None, str(INDEX_SCHEMA_VERSION)):
            self._drop_all()  # written by another paynb version: rebuild rather than misread
        self.conn.executescript(_DDL)
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(INDEX_SCHEMA_VERSION),),
        )
        self.conn.commit()

    def _version(self) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    def _drop_all(self) -> None:
        self.conn.executescript(
            "DROP TABLE IF EXISTS mentions; DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS meta;"
        )

    def clear(self) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM mentions")
            self.conn.execute("DELETE FROM files")
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files -----------------------------------------------------------------------------------------------
    def files_under(self, url_prefix: str) -> dict[str, IndexedFile]:
        """Indexed files whose URL starts with ``url_prefix``."""
        rows = self.conn.execute(
            "SELECT url, identity, size, kind, error, lines, mentions FROM files WHERE substr(url, 1, ?) = ?",
            (len(url_prefix), url_prefix),
        ).fetchall()
        return {r[0]: IndexedFile(*r) for r in rows}

    def forget(self, urls: Iterable[str]) -> int:
        urls = list(urls)
        with self._lock:
            for url in urls:
                self.conn.execute("DELETE FROM mentions WHERE url = ?", (url,))
                self.conn.execute("DELETE FROM files WHERE url = ?", (url,))
        return len(urls)

    def store(self, url: str, identity: str, size: int | None, scan: FileScan) -> None:
        """Replace what the index knows about ``url`` (committed by :meth:`commit`)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self.conn.execute("DELETE FROM mentions WHERE url = ?", (url,))
            self.conn.executemany(
                # column names are our constants; values are bound
                f"INSERT INTO mentions (url, {', '.join(ROW_FIELDS)}) VALUES (?{', ?' * len(ROW_FIELDS)})",  # noqa: S608
                ((url, *row) for row in scan.rows),
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO files (url, identity, size, kind, error, lines, mentions, indexed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (url, identity, size, scan.kind, scan.error, scan.lines, len(scan.rows), now),
            )

    def commit(self) -> None:
        with self._lock:
            self.conn.commit()

    # -- queries ---------------------------------------------------------------------------------------------
    def mentions(self, invoice_ids: Sequence[int], urls: Iterable[str]) -> list[tuple[str, Row]]:
        """``(url, row)`` for every indexed record naming one of the invoices, in one of ``urls``."""
        wanted = set(urls)
        with self._lock:
            cur = self.conn.cursor()
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS q_ids (invoice_id INTEGER PRIMARY KEY)")
            cur.execute("DELETE FROM q_ids")
            cur.executemany("INSERT OR IGNORE INTO q_ids VALUES (?)", ((i,) for i in invoice_ids))
            # the IN form makes SQLite walk ix_mentions_invoice once per id instead of scanning mentions
            rows = cur.execute(
                f"SELECT url, {', '.join(ROW_FIELDS)} FROM mentions"  # noqa: S608 - constant column names
                " WHERE invoice_id IN (SELECT invoice_id FROM q_ids) ORDER BY url, line"
            ).fetchall()
            self.conn.commit()
        return [(r[0], tuple(r[1:])) for r in rows if r[0] in wanted]
