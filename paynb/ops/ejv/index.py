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
from paynb.files import make_private_dirs, private_file, tighten
from paynb.ops.ejv.scan import ROW_FIELDS, FileScan, Row

INDEX_SCHEMA_VERSION = 3
INDEX_FILE_NAME = "ejv-index.sqlite"

# the records of one invoice in one file are stored as one text value: fields joined by US (chr 31), None
# written as NUL, records joined by RS (chr 30). Few narrow rows keep a cold build of hundreds of thousands
# of records fast; only the hits are decoded.
_SEP = "\x1f"
_REC = "\x1e"
_NONE = "\x00"
_MARKERS = (_SEP, _REC, _NONE)
_INT_FIELDS = frozenset(
    {"line", "offset", "batch_number", "invoice_id", "partner_disbursement_id", "refunds_partial_id"}
)
_IS_INT = tuple(name in _INT_FIELDS for name in ROW_FIELDS)
_INVOICE_AT = ROW_FIELDS.index("invoice_id")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    id         INTEGER PRIMARY KEY,
    url        TEXT NOT NULL UNIQUE,
    identity   TEXT NOT NULL,
    size       INTEGER,
    kind       TEXT NOT NULL,
    error      TEXT,
    lines      INTEGER NOT NULL DEFAULT 0,
    mentions   INTEGER NOT NULL DEFAULT 0,
    indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mentions (file_id INTEGER NOT NULL, invoice_id INTEGER NOT NULL, records TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_mentions_invoice ON mentions (invoice_id);
CREATE INDEX IF NOT EXISTS ix_mentions_file ON mentions (file_id);
"""


_FILE_COLUMNS = "url, identity, size, kind, error, lines, mentions"


def _upper(url_prefix: str) -> str:
    """The smallest string above every string that starts with ``url_prefix`` (for a range scan)."""
    return url_prefix[:-1] + chr(ord(url_prefix[-1]) + 1) if url_prefix else "\U0010ffff"


def encode_row(row: Row) -> str:
    text = _SEP.join([_NONE if v is None else str(v) for v in row])
    if text.count(_SEP) == len(row) - 1 and _REC not in text and text.count(_NONE) == row.count(None):
        return text
    return _SEP.join(_NONE if v is None else _clean(str(v)) for v in row)  # a value holds a marker


def _clean(text: str) -> str:
    for marker in _MARKERS:
        text = text.replace(marker, "\ufffd")
    return text


def decode_row(text: str) -> Row:
    return tuple(
        None if v == _NONE else (int(v) if is_int else v)
        for v, is_int in zip(text.split(_SEP), _IS_INT, strict=True)
    )


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
        try:
            # it names invoices and amounts: 0600 in a 0700 folder, -wal/-shm included (paynb.files)
            make_private_dirs(self.path.parent)
            private_file(self.path)
            for extra in ("-wal", "-shm"):
                tighten(f"{self.path}{extra}")
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        except OSError as err:
            raise StoreError(f"cannot open the EJV search index {self.path}: {err.strerror}") from None
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the EJV search index {self.path}: {err}") from None
        self._lock = threading.Lock()
        self.conn.execute("PRAGMA journal_mode=WAL")
        # the index is a cache that --reindex rebuilds: no fsync per commit
        self.conn.execute("PRAGMA synchronous=OFF")
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
            self.conn.execute("DELETE FROM meta WHERE key LIKE 'complete:%'")
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
    def files_under(self, url_prefix: str, *, after: str | None = None) -> dict[str, IndexedFile]:
        """Indexed files whose URL starts with ``url_prefix`` (and, with ``after``, sorts after that URL).
        A range on the UNIQUE url index: a warm search reads only the window it re-listed."""
        rows = self.conn.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE url >= ? AND url < ? AND url > ?",  # noqa: S608
            (url_prefix, _upper(url_prefix), after or ""),
        ).fetchall()
        return {r[0]: IndexedFile(*r) for r in rows}

    def count_under(self, url_prefix: str) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM files WHERE url >= ? AND url < ?", (url_prefix, _upper(url_prefix))
        ).fetchone()
        return int(row[0])

    def files_named(self, urls: Iterable[str]) -> dict[str, IndexedFile]:
        """The index entries of these URLs (those it has)."""
        out: dict[str, IndexedFile] = {}
        for url in set(urls):
            row = self.conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE url = ?", (url,)).fetchone()  # noqa: S608
            if row is not None:
                out[url] = IndexedFile(*row)
        return out

    def errors_under(self, url_prefix: str) -> dict[str, IndexedFile]:
        """Indexed files under ``url_prefix`` that did not parse cleanly."""
        rows = self.conn.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE url >= ? AND url < ? AND error IS NOT NULL"  # noqa: S608
            " AND error <> '' ORDER BY url",
            (url_prefix, _upper(url_prefix)),
        ).fetchall()
        return {r[0]: IndexedFile(*r) for r in rows}

    def window_start(self, url_prefix: str, window: int) -> tuple[bool, str | None]:
        """(whether any file under ``url_prefix`` is indexed, the URL listing may start after so that the
        ``window`` newest indexed files are listed again). ``None``: list from the start. The range query
        walks the UNIQUE index on url, so it costs the same however many files are indexed."""
        rows = self.conn.execute(
            "SELECT url FROM files WHERE url >= ? AND url < ? ORDER BY url DESC LIMIT ?",
            (url_prefix, _upper(url_prefix), window + 1),
        ).fetchall()
        if not rows:
            return False, None
        return True, rows[window][0] if len(rows) > window else None

    def is_complete(self, url_prefix: str) -> bool:
        """Whether every file under ``url_prefix`` was indexed by some search (none skipped as older than
        a search's ``since``): only then may a search list just the names after the newest indexed one."""
        row = self.conn.execute(
            "SELECT value FROM meta WHERE key = ?", (f"complete:{url_prefix}",)
        ).fetchone()
        return row is not None and row[0] == "1"

    def mark_complete(self, url_prefix: str, complete: bool) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (f"complete:{url_prefix}", "1" if complete else "0"),
            )

    def forget(self, urls: Iterable[str]) -> int:
        urls = list(urls)
        with self._lock:
            for url in urls:
                self.conn.execute(
                    "DELETE FROM mentions WHERE file_id = (SELECT id FROM files WHERE url = ?)", (url,)
                )
                self.conn.execute("DELETE FROM files WHERE url = ?", (url,))
        return len(urls)

    def store(self, url: str, identity: str, size: int | None, scan: FileScan) -> None:
        """Replace what the index knows about ``url`` (committed by :meth:`commit`)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            row = self.conn.execute("SELECT id FROM files WHERE url = ?", (url,)).fetchone()
            if row is not None:
                self.conn.execute("DELETE FROM mentions WHERE file_id = ?", (row[0],))
                self.conn.execute(
                    "UPDATE files SET identity = ?, size = ?, kind = ?, error = ?, lines = ?, mentions = ?,"
                    " indexed_at = ? WHERE id = ?",
                    (identity, size, scan.kind, scan.error, scan.lines, len(scan.rows), now, row[0]),
                )
                file_id = row[0]
            else:
                file_id = self.conn.execute(
                    "INSERT INTO files (url, identity, size, kind, error, lines, mentions, indexed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (url, identity, size, scan.kind, scan.error, scan.lines, len(scan.rows), now),
                ).lastrowid
            by_invoice: dict[int, list[str]] = {}
            for r in scan.rows:
                by_invoice.setdefault(r[_INVOICE_AT], []).append(encode_row(r))
            self.conn.executemany(
                "INSERT INTO mentions (file_id, invoice_id, records) VALUES (?, ?, ?)",
                ((file_id, invoice, _REC.join(records)) for invoice, records in by_invoice.items()),
            )

    def commit(self) -> None:
        with self._lock:
            self.conn.commit()

    # -- queries ---------------------------------------------------------------------------------------------
    def mentions(
        self, invoice_ids: Sequence[int], urls: Iterable[str] | None = None
    ) -> list[tuple[str, Row]]:
        """``(url, row)`` for every indexed record naming one of the invoices (in one of ``urls``, if given)."""
        wanted = None if urls is None else set(urls)
        with self._lock:
            cur = self.conn.cursor()
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS q_ids (invoice_id INTEGER PRIMARY KEY)")
            cur.execute("DELETE FROM q_ids")
            cur.executemany("INSERT OR IGNORE INTO q_ids VALUES (?)", ((i,) for i in invoice_ids))
            # the IN form makes SQLite walk ix_mentions_invoice once per id instead of scanning mentions
            rows = cur.execute(
                "SELECT f.url, m.records FROM mentions m JOIN files f ON f.id = m.file_id"
                " WHERE m.invoice_id IN (SELECT invoice_id FROM q_ids)"
            ).fetchall()
            self.conn.commit()
        out = [
            (url, decode_row(record))
            for url, records in rows
            if wanted is None or url in wanted
            for record in records.split(_REC)
        ]
        out.sort(key=lambda item: (item[0], item[1][0]))
        return out
