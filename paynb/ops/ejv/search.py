"""Find every FEEDBACK (and INBOX) record that names some invoices, across the EJV folders of the store.

Where it looks (docs/files.md#bucket):

* the current bucket (``PAYNB_BUCKET``, prod ``ftp-poller-prod``): ``cgi_feedback/`` (FEEDBACK from CAS),
  ``cgi_processing/`` (INBOX waiting for the SFTP poller) and ``cgi_processed/`` (INBOX already sent);
* the pre-2025-08 MinIO bucket ``cgi-ejv`` (``PAYNB_LEGACY_EJV_BUCKET``): FEEDBACK and INBOX copies under
  bare names. A missing legacy bucket is a warning, not an error.

Objects are read in parallel (a thread pool) and what they say is kept in a local index
(:mod:`paynb.ops.ejv.index`), so the next search only reads new or changed objects. A file that does not
parse is reported with its error; the lines that could be decoded are still searched.

Example::

    from paynb.ops.ejv.search import search_feedback
    result = search_feedback([10011001, 10021002])
    result.by_invoice()          # one row per invoice: INBOX files, FEEDBACK files, latest outcome
    result.to_frame()            # one row per record: file, line, batch, journal, C/D, amount, return code
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from paynb.context import Env, resolve_env
from paynb.errors import InputError, PaynbError, StoreError
from paynb.formats.feedback import SUCCESS_CODE
from paynb.headless import is_headless
from paynb.ids import parse_invoice_number
from paynb.ops.ejv.index import INDEX_FILE_NAME, IndexedFile, SearchIndex
from paynb.ops.ejv.scan import FEEDBACK, INBOX, ROW_FIELDS, FileScan, Row, file_kind, scan_file
from paynb.settings import Settings
from paynb.store import ObjectInfo, Store, legacy_bucket, pay_bucket

SEARCH_SCHEMA_VERSION = 1
FEEDBACK_FOLDER = "cgi_feedback/"
PROCESSING_FOLDER = "cgi_processing/"
PROCESSED_FOLDER = "cgi_processed/"
EJV_FOLDERS = (FEEDBACK_FOLDER, PROCESSING_FOLDER, PROCESSED_FOLDER)
COMMIT_EVERY = 200
# a warm search lists only the names after the newest indexed ones, minus this many, so a file that lands
# a little out of order is still found; anything later than that needs --reindex (docs/storage.md)
RELIST_WINDOW = 64


@dataclass(frozen=True)
class Source:
    """One place to search: a store and a key prefix. ``required=False``: a missing bucket is a warning."""

    store: Store
    prefix: str = ""
    required: bool = True
    label: str = ""
    #: list only the newest names (time-ordered FEEDBACK/INBOX names) on a warm search; a queue folder
    #: whose files move away (cgi_processing/) is listed whole every time
    incremental: bool = True
    #: the name families a warm listing asks for (one request each): cgi_feedback/ holds only FEEDBACK
    #: files, cgi_processed/ only INBOX files; a legacy bucket both
    families: tuple[str, ...] = (FEEDBACK, INBOX)

    @property
    def url_prefix(self) -> str:
        """The URL every object of this source starts with (``s3://bucket/cgi_feedback/``)."""
        return self.store.url_for(self.prefix + "x")[:-1]

    @property
    def name(self) -> str:
        return self.label or self.url_prefix


def default_sources(env: Env | Settings | None = None) -> list[Source]:
    """The three EJV folders of the pay bucket (``PAYNB_BUCKET_URL``, or ``PAYNB_BUCKET`` on S3) and the
    legacy ``cgi-ejv`` bucket of the pre-2025-08 MinIO store (``PAYNB_LEGACY_BUCKET_URL``). ``env`` may
    still be a plain Settings."""
    if not isinstance(env, Env):
        env = resolve_env(None, settings=env)
    settings = env.settings
    main = pay_bucket(settings)
    families = {FEEDBACK_FOLDER: (FEEDBACK,), PROCESSED_FOLDER: (INBOX,)}
    sources = [
        Source(
            main,
            folder,
            True,
            folder.rstrip("/"),
            incremental=folder != PROCESSING_FOLDER,
            families=families.get(folder, (FEEDBACK, INBOX)),
        )
        for folder in EJV_FOLDERS
    ]
    legacy = legacy_bucket(settings, settings.legacy_ejv_bucket)
    if legacy is not None:
        sources.append(Source(legacy, "", False, f"{settings.legacy_ejv_bucket} (legacy)"))
    return sources


@dataclass(frozen=True)
class Mention:
    """One record naming an invoice: a JD detail line (or an AP IH line whose reference is the id)."""

    invoice_id: int
    kind: str  # FEEDBACK or INBOX
    file: str  # URL of the object
    name: str  # file name
    location: str  # folder / bucket it was found in
    line: int
    offset: int | None
    record_type: str
    batch_type: str | None
    batch_number: int | None
    journal_name: str | None
    ejv_header_id: int | None
    flowthrough: str | None
    partner_disbursement_id: int | None
    refunds_partial_id: int | None
    debit_credit: str | None
    amount: Decimal | None
    effective_date: date | None
    return_code: str | None
    return_message: str | None
    batch_return_code: str | None
    journal_return_code: str | None
    file_ok: bool = True

    @property
    def is_success(self) -> bool | None:
        return None if self.return_code is None else self.return_code == SUCCESS_CODE

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["is_success"] = self.is_success
        return out


@dataclass(frozen=True)
class FileProblem:
    file: str
    kind: str
    error: str


@dataclass(frozen=True)
class SearchResult:
    invoice_ids: tuple[int, ...]
    mentions: tuple[Mention, ...]
    files_listed: int
    files_scanned: int
    files_from_index: int
    bytes_read: int
    problems: tuple[FileProblem, ...] = ()
    warnings: tuple[str, ...] = ()
    index_path: str | None = None
    elapsed_s: float = 0.0
    sources: tuple[str, ...] = field(default_factory=tuple)

    def for_invoice(self, invoice_id: int) -> list[Mention]:
        return [m for m in self.mentions if m.invoice_id == invoice_id]

    def feedback(self) -> list[Mention]:
        return [m for m in self.mentions if m.kind == FEEDBACK]

    def not_found(self) -> list[int]:
        """Invoices no FEEDBACK and no INBOX record names."""
        seen = {m.invoice_id for m in self.mentions}
        return [i for i in self.invoice_ids if i not in seen]

    def without_feedback(self) -> list[int]:
        """Invoices with no FEEDBACK record (maybe in an INBOX, maybe nowhere)."""
        seen = {m.invoice_id for m in self.mentions if m.kind == FEEDBACK}
        return [i for i in self.invoice_ids if i not in seen]

    def to_frame(self) -> pd.DataFrame:
        columns = [f.name for f in fields(Mention)] + ["is_success"]
        if not self.mentions:
            return pd.DataFrame(columns=columns)
        return pd.DataFrame.from_records([m.to_dict() for m in self.mentions], columns=columns)

    def by_invoice(self) -> pd.DataFrame:
        """One row per invoice: where it appears and what its latest FEEDBACK said."""
        rows = []
        for invoice_id in self.invoice_ids:
            found = self.for_invoice(invoice_id)
            inbox = sorted({m.name for m in found if m.kind == INBOX})
            feedback = [m for m in found if m.kind == FEEDBACK]
            feedback_files = sorted({m.name for m in feedback})
            latest = feedback_files[-1] if feedback_files else None
            rows.append(
                {
                    "invoice_id": invoice_id,
                    "inbox_files": ", ".join(inbox),
                    "feedback_files": ", ".join(feedback_files),
                    "latest_feedback": latest,
                    "outcome": _outcome(inbox, [m for m in feedback if m.name == latest]),
                }
            )
        return pd.DataFrame.from_records(
            rows, columns=["invoice_id", "inbox_files", "feedback_files", "latest_feedback", "outcome"]
        )

    def summary(self) -> dict[str, int]:
        return {
            "invoices": len(self.invoice_ids),
            "with_feedback": len(self.invoice_ids) - len(self.without_feedback()),
            "inbox_only": len(set(self.without_feedback()) - set(self.not_found())),
            "not_found": len(self.not_found()),
            "records": len(self.mentions),
            "error_records": sum(1 for m in self.mentions if m.is_success is False),
            "files_listed": self.files_listed,
            "files_scanned": self.files_scanned,
            "files_from_index": self.files_from_index,
            "unparseable_files": len(self.problems),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SEARCH_SCHEMA_VERSION,
            "report": "ejv_search",
            "invoice_ids": list(self.invoice_ids),
            "summary": self.summary(),
            "sources": list(self.sources),
            "bytes_read": self.bytes_read,
            "elapsed_s": Decimal(f"{self.elapsed_s:.3f}"),
            "index_path": self.index_path,
            "warnings": list(self.warnings),
            "problems": [{"file": p.file, "kind": p.kind, "error": p.error} for p in self.problems],
            "by_invoice": self.by_invoice().to_dict(orient="records"),
            "mentions": [m.to_dict() for m in self.mentions],
        }


def _outcome(inbox: list[str], latest: list[Mention]) -> str:
    if not latest:
        return "INBOX sent, no FEEDBACK found" if inbox else "not found in any EJV file"
    errors = sorted({f"{m.return_code} {m.return_message}".strip() for m in latest if m.is_success is False})
    if errors:
        return "FEEDBACK error: " + "; ".join(errors)
    return "FEEDBACK 0000 (success)"


def normalise_invoice_ids(values: Iterable[int | str]) -> tuple[int, ...]:
    """Ints, digit strings, comma lists and CFS numbers (``REG01234567``) -> unique ids in input order."""
    out: dict[int, None] = {}
    for value in values:
        parts = [value] if isinstance(value, int) else [p.strip() for p in str(value).split(",")]
        for part in parts:
            if part == "":
                continue
            if isinstance(part, int):
                out[part] = None
            elif part.isascii() and part.isdigit():
                out[int(part)] = None
            else:
                try:
                    out[parse_invoice_number(part.upper())[1]] = None
                except InputError:
                    raise InputError(
                        f"{part!r} is not an invoice id (e.g. 10011001) or number (e.g. REG10011001)",
                        field="invoice_ids",
                    ) from None
    if not out:
        raise InputError("give at least one invoice id", field="invoice_ids")
    return tuple(out)


def search_feedback(
    invoice_ids: Iterable[int | str],
    *,
    env: Env | None = None,
    settings: Settings | None = None,
    stores: Sequence[Source | Store] | None = None,
    index_path: str | Path | None = None,
    workers: int = 8,
    progress: bool = True,
    reindex: bool = False,
    since: datetime | None = None,
) -> SearchResult:
    """Every FEEDBACK/INBOX record that names one of ``invoice_ids``.

    ``since`` (UTC): files whose names are stamped earlier are not read unless already indexed; for
    invoices created after it (``invoice explain``) they cannot name them, and a cold index then reads
    days of files rather than years. The index remembers the skip, so the next search without ``since``
    lists those sources whole and reads what was skipped.

    The buckets and data folder come from ``env`` (default: the environment's settings; ``settings`` still
    overrides it). ``stores`` overrides where to look (default :func:`default_sources`); a bare Store is
    searched whole.
    ``index_path`` defaults to ``<data_dir>/ejv-index.sqlite``; ``reindex`` empties it first.
    """
    started = time.perf_counter()
    progress = progress and not is_headless()  # tqdm.auto bars are widgets in a kernel
    ids = normalise_invoice_ids(invoice_ids)
    if workers < 1:
        raise InputError("must be 1 or more", field="workers")
    env = resolve_env(env, settings=settings)
    settings = env.settings
    sources = [s if isinstance(s, Source) else Source(s) for s in stores] if stores else default_sources(env)
    path = Path(index_path) if index_path else settings.data_dir / INDEX_FILE_NAME

    warnings: list[str] = []
    with SearchIndex(path) as index:
        if reindex:
            index.clear()
        starts = [_list_starts(index, source) for source in sources]
        listed = _list_sources(sources, starts, workers, warnings)
        scope = _plan_scan(index, sources, starts, listed, since)
        scanned, bytes_read, unreadable = _scan(index, scope.todo, workers, progress)
        scope.excluded.update(unreadable)
        warnings.extend(unreadable.values())
        rows = [(url, row) for url, row in index.mentions(ids) if scope.answers(url)]
        problems = _problems(index, scope)
        unlisted = index.files_named(url for url, _ in rows if url not in scope.listed)
    items = {
        **{url: _from_index(scope.source_of(url), url, entry) for url, entry in unlisted.items()},
        **scope.listed,
    }
    bad_files = {p.file for p in problems}
    mentions = tuple(_mention(url, row, items[url], bad_files) for url, row in rows)
    return SearchResult(
        invoice_ids=ids,
        mentions=mentions,
        files_listed=scope.cached + len(scope.todo),
        files_scanned=scanned,
        files_from_index=scope.cached,
        bytes_read=bytes_read,
        problems=tuple(problems),
        warnings=tuple(warnings),
        index_path=str(path),
        elapsed_s=time.perf_counter() - started,
        sources=tuple(s.name for s in sources),
    )


# --- steps ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listed:
    source: Source
    info: ObjectInfo
    kind: str
    url: str

    @property
    def identity(self) -> str:
        """What says the object is unchanged: its etag (or size + time where a store has none)."""
        info = self.info
        return info.etag or info.sha256 or f"{info.size}:{info.last_modified}"


def _list_starts(index: SearchIndex, source: Source) -> dict[str, str | None] | None:
    """Where a warm listing of ``source`` starts, per name family (``FEEDBACK``/``INBOX``): the key
    after which to list, or None for the whole family. ``None`` overall: list the source whole (a cold
    index, ``--reindex``, or a source that is not incremental)."""
    if not source.incremental or not index.is_complete(source.url_prefix):
        return None
    starts: dict[str, str | None] = {}
    any_indexed = False
    for family in source.families:
        indexed, url = index.window_start(source.url_prefix + family, RELIST_WINDOW)
        any_indexed = any_indexed or indexed
        starts[family] = source.prefix + url[len(source.url_prefix) :] if url else None
    return starts if any_indexed else None


def _list_sources(
    sources: Sequence[Source],
    starts: Sequence[dict[str, str | None] | None],
    workers: int,
    warnings: list[str],
) -> list[list[_Listed] | None]:
    """The EJV objects of each source (for a warm incremental source: only those at or after its
    start keys); ``None`` for an optional source that could not be listed."""

    def one(source: Source, start: dict[str, str | None] | None) -> list[_Listed] | None:
        try:
            if start is None:
                infos = list(source.store.list(source.prefix, recursive=True))
            else:
                infos = [
                    info
                    for family, after in start.items()
                    for info in source.store.list(source.prefix + family, recursive=True, start_after=after)
                ]
        except StoreError as err:
            if source.required:
                raise
            warnings.append(f"skipped {source.name}: {err}")
            return None
        out = []
        for info in infos:
            kind = None if info.is_prefix else file_kind(info.key)
            if kind is not None:
                out.append(_Listed(source, info, kind, source.store.url_for(info.key)))
        return out

    if len(sources) == 1:
        return [one(sources[0], starts[0])]
    with ThreadPoolExecutor(max_workers=min(workers, len(sources))) as pool:
        return list(pool.map(one, sources, starts))


@dataclass
class _Scope:
    """What a search answers from: the files to read now, the ones listed this time, and the indexed
    files of the reachable sources minus those it must not answer from (unreadable, or skipped as older
    than ``since`` while the index holds an older copy)."""

    todo: list[_Listed] = field(default_factory=list)
    listed: dict[str, _Listed] = field(default_factory=dict)
    cached: int = 0
    sources: dict[str, Source] = field(default_factory=dict)  # url prefix -> source, the reachable ones
    excluded: set[str] = field(default_factory=set)

    def answers(self, url: str) -> bool:
        return url not in self.excluded and any(url.startswith(p) for p in self.sources)

    def source_of(self, url: str) -> Source:
        return self.sources[max((p for p in self.sources if url.startswith(p)), key=len)]


def _plan_scan(
    index: SearchIndex,
    sources: Sequence[Source],
    starts: Sequence[dict[str, str | None] | None],
    listed: list[list[_Listed] | None],
    since: datetime | None = None,
) -> _Scope:
    """Compare each listing with the index. A warm listing covered only the newest names, so only the
    index's entries in those ranges are read: the cost follows the new files, not the history."""
    scope = _Scope()
    for source, start, items in zip(sources, starts, listed, strict=True):
        if items is None:  # not reachable this time: keep what the index knows, answer nothing from it
            continue
        url_prefix = source.url_prefix
        scope.sources[url_prefix] = source
        known: dict[str, IndexedFile] = {}
        if start is None:
            known = index.files_under(url_prefix)
        else:
            for family, after in start.items():
                after_url = url_prefix + after[len(source.prefix) :] if after else None
                known.update(index.files_under(url_prefix + family, after=after_url))
        here = {item.url for item in items}
        gone = [url for url in known if url not in here]
        index.forget(gone)  # gone from the store
        for url in gone:
            known.pop(url)
        # older than the re-listed window: unchanged as far as we know, answered from the index
        scope.cached += index.count_under(url_prefix) - len(known)
        skipped = 0
        for item in items:
            scope.listed[item.url] = item
            entry = known.get(item.url)
            if entry is not None and entry.identity == item.identity and entry.size == item.info.size:
                scope.cached += 1
            elif since is not None and _stamped_before(item.info.key, since):
                skipped += 1  # cannot name an invoice made after `since`; a later full search reads it
                scope.excluded.add(item.url)
            else:
                scope.todo.append(item)
        # a source stays (or becomes) complete when nothing was skipped: an incremental listing only
        # starts from a complete one, and a full listing covers everything
        index.mark_complete(url_prefix, skipped == 0)
    index.commit()
    return scope


def _stamped_before(key: str, since: datetime) -> bool:
    """Whether the object name's ``.YYYYMMDDHHMMSS`` stamp (FEEDBACK/INBOX names) is before ``since``; a
    name without a readable stamp is never skipped."""
    stamp = PurePosixPath(key).name.split(".")[-1]
    if len(stamp) != 14 or not stamp.isdigit():
        return False
    try:
        return datetime.strptime(stamp, "%Y%m%d%H%M%S") < since.replace(tzinfo=None)
    except ValueError:
        return False


def _from_index(source: Source, url: str, entry: IndexedFile) -> _Listed:
    key = source.prefix + url[len(source.url_prefix) :]
    info = ObjectInfo(key=key, size=entry.size, etag=entry.identity, last_modified=None)
    return _Listed(source, info, entry.kind, url)


def _scan(
    index: SearchIndex, todo: list[_Listed], workers: int, progress: bool
) -> tuple[int, int, dict[str, str]]:
    """Read and scan ``todo`` in a thread pool; the index is written on this thread as results arrive."""
    if not todo:
        return 0, 0, {}

    def work(item: _Listed) -> tuple[_Listed, FileScan | None, int, str | None]:
        try:
            data = item.source.store.get(item.info.key)
        except PaynbError as err:
            return item, None, 0, f"could not read {item.url}: {err}"
        return item, scan_file(data, file=item.url, kind=item.kind), len(data), None

    scanned = bytes_read = 0
    unreadable: dict[str, str] = {}
    bar = tqdm(total=len(todo), desc="scanning EJV files", unit="file", disable=not progress, file=sys.stderr)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        pending = {pool.submit(work, item) for item in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item, scan, size, error = future.result()
                bar.update(1)
                if scan is None:
                    unreadable[item.url] = error or f"could not read {item.url}"
                    continue
                index.store(item.url, item.identity, item.info.size, scan)
                scanned += 1
                bytes_read += size
                if scanned % COMMIT_EVERY == 0:
                    index.commit()  # a long cold scan that is interrupted keeps what it did
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        index.commit()
    return scanned, bytes_read, unreadable


def _problems(index: SearchIndex, scope: _Scope) -> list[FileProblem]:
    return [
        FileProblem(url, entry.kind, entry.error)
        for prefix in scope.sources
        for url, entry in index.errors_under(prefix).items()
        if scope.answers(url)
    ]


def _mention(url: str, row: Row, item: _Listed, bad_files: set[str]) -> Mention:
    v = dict(zip(ROW_FIELDS, row, strict=True))
    journal = v["journal_name"]
    return Mention(
        invoice_id=v["invoice_id"],
        kind=item.kind,
        file=url,
        name=item.info.key.rsplit("/", 1)[-1],
        location=item.source.name,
        line=v["line"],
        offset=v["offset"],
        record_type=v["record_type"],
        batch_type=v["batch_type"],
        batch_number=v["batch_number"],
        journal_name=journal,
        ejv_header_id=int(journal[2:]) if journal else None,
        flowthrough=v["flowthrough"],
        partner_disbursement_id=v["partner_disbursement_id"],
        refunds_partial_id=v["refunds_partial_id"],
        debit_credit=v["debit_credit"],
        amount=Decimal(v["amount"]) if v["amount"] is not None else None,
        effective_date=date.fromisoformat(v["effective_date"]) if v["effective_date"] else None,
        return_code=v["return_code"],
        return_message=v["return_message"],
        batch_return_code=v["batch_return_code"],
        journal_return_code=v["journal_return_code"],
        file_ok=url not in bad_files,
    )
