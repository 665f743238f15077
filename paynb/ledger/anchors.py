"""Anchors: the chain head (seq, hash) written once to the archive, so a cut tail is found.

Each archived run and each apply writes ``anchors/<ledger_id>/<seq:012d>.json`` to the archive
(``PAYNB_ARCHIVE_URL``, else ``file://<data_dir>/archive``) with ``put(overwrite=False)``: an anchor is
never replaced. When the archive cannot be reached the anchor waits in the local spool
(``<data_dir>/spool/<id>/``, the same manifest layout as a spooled run) and ``paynb archive flush``
delivers it. ``paynb audit verify`` compares the ledger with the newest anchor it can find.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paynb.canonical import canonical_json, sha256_hex
from paynb.errors import StoreError
from paynb.files import private_dir, write_private
from paynb.ids import new_run_id
from paynb.ledger.store import Ledger, LedgerEntry, now_iso
from paynb.settings import Settings

ANCHOR_PREFIX = "anchors"
ANCHOR_NAME = "anchor.json"
ANCHOR_SCHEMA_VERSION = 1
SPOOL_DIR = "spool"
MANIFEST = "manifest.json"

log = logging.getLogger(__name__)

_STORES: dict[tuple[str, Any], Any] = {}
_STORES_LOCK = threading.Lock()


@dataclass(frozen=True)
class Anchor:
    """One chain head as written (or spooled). ``state``: ``archived``, ``spooled`` or ``failed``."""

    ledger_id: str
    seq: int
    record_hash: str
    hash_mode: str
    key: str
    store_url: str
    state: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "record_hash": self.record_hash,
            "hash_mode": self.hash_mode,
            "key": self.key,
            "store_url": self.store_url,
            "state": self.state,
            "detail": self.detail,
        }


def archive_url(settings: Settings) -> str:
    """Where runs and anchors are archived: ``PAYNB_ARCHIVE_URL``, else ``<data_dir>/archive``."""
    if settings.archive_url:
        return settings.archive_url
    return f"file://{(Path(settings.data_dir).expanduser() / 'archive').absolute()}"


def anchor_key(ledger_id: str, seq: int) -> str:
    return f"{ANCHOR_PREFIX}/{ledger_id}/{seq:012d}.json"


def anchor_document(ledger: Ledger, entry: LedgerEntry) -> dict[str, Any]:
    return {
        "schema_version": ANCHOR_SCHEMA_VERSION,
        "ledger_id": ledger.ledger_id,
        "seq": entry.seq,
        "record_hash": entry.record_hash,
        "hash_mode": entry.hash_mode,
        "kind": entry.kind,
        "event": entry.event,
        "ref": entry.ref,
        "anchored_at": now_iso(),
    }


def _store(url: str, settings: Settings) -> Any:
    from paynb.store import open_store

    # one client per URL and configuration (opening an S3 client costs more than writing an anchor)
    key = (url, tuple(sorted(settings.describe().items())))
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = open_store(url, settings)
        return _STORES[key]


def write_anchor(ledger: Ledger, entry: LedgerEntry, settings: Settings) -> Anchor:
    """Write ``entry`` as the chain head to the archive, or spool it. Never raises for the store: the
    entry is already chained, and a missing anchor only weakens (never breaks) verification."""
    url = archive_url(settings)
    key = anchor_key(ledger.ledger_id, entry.seq)
    data = (canonical_json(anchor_document(ledger, entry)) + "\n").encode("utf-8")

    def made(state: str, detail: str = "") -> Anchor:
        return Anchor(
            ledger.ledger_id, entry.seq, entry.record_hash, entry.hash_mode, key, url, state, detail
        )

    try:
        store = _store(url, settings)
        try:
            store.put(key, data, content_type="application/json", metadata={"paynb-ledger": ledger.ledger_id})
            return made("archived")
        except StoreError:
            existing = store.stat(key)
            if existing is None:
                raise
            found = json.loads(store.get(key, verify=False))
            if found.get("record_hash") == entry.record_hash:
                return made("archived", "already anchored")
            log.warning("anchor %s already holds another chain head; left as it is", key)
            return made("failed", f"{key} already holds another chain head")
    except StoreError as err:
        reason = str(err).splitlines()[0]
    try:
        spool_anchor(settings, url, key, data, reason)
    except OSError as err:
        log.warning("the anchor of ledger entry %s could not be spooled: %s", entry.seq, err.strerror)
        return made("failed", f"neither archived ({reason}) nor spooled ({err.strerror})")
    return made("spooled", reason)


def spool_anchor(settings: Settings, store_url: str, key: str, data: bytes, reason: str) -> Path:
    """Keep an anchor for ``paynb archive flush`` (same manifest layout as a spooled run)."""
    spool_id = new_run_id()
    folder = private_dir(Path(settings.data_dir).expanduser() / SPOOL_DIR / spool_id)
    write_private(folder / ANCHOR_NAME, data)
    manifest = {
        "run_id": spool_id,
        "store_url": store_url,
        "reason": reason,
        "delivered": {},
        "objects": [{"name": ANCHOR_NAME, "key": key, "sha256": sha256_hex(data)}],
    }
    write_private(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return folder


def spooled_anchors(settings: Settings, ledger_id: str) -> list[dict[str, Any]]:
    """Anchors of this ledger still waiting in the local spool."""
    root = Path(settings.data_dir).expanduser() / SPOOL_DIR
    if not root.is_dir():
        return []
    prefix = f"{ANCHOR_PREFIX}/{ledger_id}/"
    found = []
    for manifest_path in root.glob(f"*/{MANIFEST}"):
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
            item = next(o for o in manifest.get("objects", []) if o.get("name") == ANCHOR_NAME)
            if item["key"].startswith(prefix):
                found.append(json.loads((manifest_path.parent / ANCHOR_NAME).read_text("utf-8")))
        except (OSError, ValueError, StopIteration, KeyError):
            continue
    return found


@dataclass(frozen=True)
class NewestAnchor:
    document: dict[str, Any] | None
    source: str
    problems: tuple[str, ...] = ()


def newest_anchor(ledger: Ledger, settings: Settings) -> NewestAnchor:
    """The anchor with the highest seq for this ledger, from the archive and the local spool."""
    url = archive_url(settings)
    problems: list[str] = []
    candidates: list[tuple[int, dict[str, Any], str]] = []
    try:
        store = _store(url, settings)
        keys = [o.key for o in store.list(f"{ANCHOR_PREFIX}/{ledger.ledger_id}/") if o.key.endswith(".json")]
        if keys:
            newest = max(keys)
            doc = json.loads(store.get(newest, verify=False))
            candidates.append((int(doc.get("seq", 0)), doc, store.url_for(newest)))
    except (StoreError, ValueError) as err:
        problems.append(f"cannot read anchors from {url}: {str(err).splitlines()[0]}")
    for doc in spooled_anchors(settings, ledger.ledger_id):
        candidates.append((int(doc.get("seq", 0)), doc, "the local spool"))
    if not candidates:
        return NewestAnchor(None, url, tuple(problems))
    seq, doc, source = max(candidates, key=lambda c: c[0])
    return NewestAnchor(doc, source, tuple(problems))
