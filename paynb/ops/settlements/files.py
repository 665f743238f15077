"""Where settlement CSVs live (the pay bucket's ``ar/`` folder and the legacy MinIO bucket) and how a
reference names one (docs/files.md#cas-settlement-csv, docs/files.md#bucket)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from paynb.errors import InputError, StoreError
from paynb.settings import Settings, get_settings
from paynb.store import Store, legacy_bucket, pay_bucket, pay_bucket_url

if TYPE_CHECKING:
    from paynb.formats.settlement_csv import SettlementFile

AR_FOLDER = "ar"
_NAME_DATE = re.compile(r"(20[0-9]{2})([01][0-9])([0-3][0-9])")


# -- where the files are ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SettlementSource:
    """One place settlement CSVs live: ``bucket`` (``ar/`` folder) or ``legacy`` (bucket root)."""

    name: str  # "bucket" | "legacy"
    store: Store
    folder: str  # "ar" or "" (legacy: bare file names)
    bucket: str  # for references and messages; no credentials

    def key_for(self, file_name: str) -> str:
        return f"{self.folder}/{file_name}" if self.folder else file_name

    def ref_for(self, file_name: str) -> str:
        return f"{AR_FOLDER}/{file_name}" if self.name == "bucket" else f"{self.bucket}/{file_name}"


@dataclass(frozen=True)
class SettlementFileRef:
    """A settlement CSV found somewhere: ``ref`` is what ``paynb settlement plan-replay`` accepts."""

    source: str  # "bucket" | "legacy" | "local"
    ref: str
    key: str  # store key, or the local path
    file_name: str  # bare name, as in cas_settlements.file_name
    url: str  # s3://bucket/key or file path (no credentials)

    def to_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "ref": self.ref,
            "key": self.key,
            "file_name": self.file_name,
            "url": self.url,
        }


def settlement_sources(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    legacy_store: Store | None = None,
) -> tuple[list[SettlementSource], list[str]]:
    """The current bucket (``store`` or :func:`paynb.store.pay_bucket`) and the legacy bucket (``legacy_store``
    or :func:`paynb.store.legacy_bucket` ``settings.legacy_settlement_bucket``). A given ``store`` means "search only what I give you":
    the legacy bucket is then used only when ``legacy_store`` is given too. Returns (sources, problems):
    a bucket that cannot be opened is a problem to report, not an exception."""
    sources: list[SettlementSource] = []
    problems: list[str] = []
    explicit = store is not None or legacy_store is not None
    if store is None and not explicit:
        settings = settings or get_settings()
        if pay_bucket_url(settings):
            try:
                store = pay_bucket(settings)
            except StoreError as err:
                problems.append(f"bucket {pay_bucket_url(settings)}: {err}")
        else:
            problems.append(
                "no bucket configured (PAYNB_BUCKET_URL, or PAYNB_BUCKET / FTP_POLLER_BUCKET_NAME and PAYNB_S3_ENDPOINT)"
            )
    if store is not None:
        sources.append(SettlementSource("bucket", store, AR_FOLDER, _bucket_name(store)))
    if legacy_store is None and not explicit:
        settings = settings or get_settings()
        try:
            legacy_store = legacy_bucket(settings, settings.legacy_settlement_bucket)
        except StoreError as err:
            problems.append(f"legacy bucket {settings.legacy_settlement_bucket}: {err}")
    if legacy_store is not None:
        sources.append(SettlementSource("legacy", legacy_store, "", _bucket_name(legacy_store)))
    return sources, problems


def _bucket_name(store: Store) -> str:
    bucket = getattr(store, "bucket", None)
    if bucket:
        return str(bucket)
    return Path(store.url.partition("://")[2]).name or store.url


def list_settlement_files(
    sources: Sequence[SettlementSource], *, since: date | None = None
) -> tuple[list[SettlementFileRef], list[str]]:
    """CSV files (``*.csv``, any case) of every source, in key order. With ``since``, files whose name
    carries a date (``…YYYYMMDD…``) before it are left out; undated names are always kept. A source that
    cannot be listed is reported in the second list (a missing legacy bucket is normal after 2025-08)."""
    found: list[SettlementFileRef] = []
    problems: list[str] = []
    for src in sources:
        prefix = f"{src.folder}/" if src.folder else ""
        try:
            items = list(src.store.list(prefix, recursive=False))
        except StoreError as err:
            problems.append(f"{src.name} ({src.bucket}): {str(err).splitlines()[0]}")
            continue
        for info in items:
            if info.is_prefix or not info.key.lower().endswith(".csv"):
                continue
            name = info.key.rsplit("/", 1)[-1]
            if since is not None:
                dated = _name_date(name)
                if dated is not None and dated < since:
                    continue
            found.append(
                SettlementFileRef(src.name, src.ref_for(name), info.key, name, src.store.url_for(info.key))
            )
    return found, problems


def _name_date(name: str) -> date | None:
    match = _NAME_DATE.search(name)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def read_settlement_ref(ref: SettlementFileRef, sources: Sequence[SettlementSource]) -> bytes:
    if ref.source == "local":
        try:
            return Path(ref.key).read_bytes()
        except OSError as err:
            raise InputError(f"cannot read the file: {err.strerror}", file=ref.key) from None
    src = next((s for s in sources if s.name == ref.source), None)
    if src is None:
        raise StoreError(f"no {ref.source} store to read {ref.ref} from")
    return src.store.get(ref.key)


def resolve_settlement_file(file_key_or_path: str, sources: Sequence[SettlementSource]) -> SettlementFileRef:
    """A local path, ``ar/<file>``, ``<legacy bucket>/<file>`` or a bare name -> where the file is.
    Raises InputError naming what was tried when it is nowhere."""
    text = str(file_key_or_path).strip()
    if not text:
        raise InputError(
            "give a settlement CSV: a local path or a store key like ar/BCR_PAYMENT_APPL_20260730.csv",
            field="file",
        )
    local = Path(text)
    if local.is_file():
        return SettlementFileRef("local", str(local), str(local), local.name, str(local.resolve()))
    if local.is_dir():
        raise InputError("is a folder, not a settlement CSV", file=text)
    tried: list[str] = [f"local file {text}"]
    by_name = {s.name: s for s in sources}
    candidates: list[tuple[SettlementSource, str]] = []
    head, sep, rest = text.partition("/")
    if sep and head == AR_FOLDER and "bucket" in by_name and rest and "/" not in rest:
        candidates.append((by_name["bucket"], rest))
    elif sep and "legacy" in by_name and head == by_name["legacy"].bucket and rest and "/" not in rest:
        candidates.append((by_name["legacy"], rest))
    elif not sep:
        candidates.extend((s, text) for s in sources)
    for src, name in candidates:
        key = src.key_for(name)
        tried.append(f"{src.store.url_for(key)}")
        try:
            info = src.store.stat(key)
        except StoreError as err:
            raise StoreError(f"cannot look for {text} in {src.bucket}: {str(err).splitlines()[0]}") from None
        if info is not None:
            return SettlementFileRef(src.name, src.ref_for(name), key, name, src.store.url_for(key))
    if not sources:
        tried.append("no bucket is configured (PAYNB_BUCKET, PAYNB_S3_ENDPOINT)")
    raise InputError("settlement file not found (tried: " + "; ".join(tried) + ")", file=text)


def load_settlement_file(file_key_or_path: str, *, settings: Settings | None = None) -> SettlementFile:
    """Parse a settlement CSV given as a local path, ``ar/<file>``, ``<legacy bucket>/<file>`` or a bare
    name (what ``paynb pad triage`` prints), read from wherever :func:`resolve_settlement_file` finds it."""
    from paynb.formats.settlement_csv import parse_settlement_csv

    local = Path(str(file_key_or_path).strip())
    sources, _ = ([], []) if local.is_file() else settlement_sources(settings)
    ref = resolve_settlement_file(str(file_key_or_path), sources)
    return parse_settlement_csv(read_settlement_ref(ref, sources), file=ref.ref)
