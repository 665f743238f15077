"""The archive: each finished run written once to ``runs/YYYY/MM/DD/<notebook>/<run_id>/``.

Objects: ``notebook.ipynb`` (redacted, canonical JSON), ``notebook.html`` (nbconvert render of the
same notebook) and ``record.json`` (the complete run record). The archive URL is ``--archive``, else
``PAYNB_ARCHIVE_URL``, else ``file://<data_dir>/archive``.

When the store cannot be reached (or refuses), nothing is lost: the objects go to the local spool
``<data_dir>/spool/<run_id>/`` with a manifest naming the store URL and keys, and ``paynb archive
flush`` delivers them later. A flush is resumable: each delivered object is ticked off in the manifest
and recorded in the ledger.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from paynb.errors import StoreError
from paynb.files import private_dir, write_private
from paynb.ledger import Ledger, archive_url
from paynb.settings import Settings
from paynb.store import Store, open_store, sha256_bytes

RUNS_PREFIX = "runs"
NOTEBOOK = "notebook.ipynb"
HTML = "notebook.html"
RECORD = "record.json"
CONTENT_TYPES = {
    NOTEBOOK: "application/x-ipynb+json",
    HTML: "text/html; charset=utf-8",
    RECORD: "application/json",
}
SPOOL_DIR = "spool"
MANIFEST = "manifest.json"
FLUSH_LOCK = ".flush.lock"
BROKEN_DIR = ".broken"
FLUSH_LOCK_WAIT_S = 120.0


@dataclass
class ArchiveObject:
    name: str
    key: str
    data: bytes
    sha256: str = ""

    def __post_init__(self) -> None:
        self.sha256 = self.sha256 or sha256_bytes(self.data)


@dataclass
class FlushResult:
    run_id: str
    store_url: str
    delivered: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def done(self) -> bool:
        return not self.remaining


def default_archive_url(settings: Settings) -> str:
    return archive_url(settings)


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return cleaned or "notebook"


def run_prefix(started_at: datetime, notebook_name: str, run_id: str) -> str:
    """``runs/2026/03/14/stale_invoices/<run_id>`` (the date is the run's UTC start date)."""
    return f"{RUNS_PREFIX}/{started_at:%Y/%m/%d}/{safe_name(notebook_name)}/{run_id}"


def notebook_bytes(nb: nbformat.NotebookNode) -> bytes:
    """Canonical bytes: nbformat's writer sorts keys, so the same notebook always hashes the same."""
    return (nbformat.writes(nb, version=4) + "\n").encode("utf-8")


@functools.lru_cache(maxsize=1)
def _exporter():  # type: ignore[no-untyped-def]
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab")


def render_html(nb: nbformat.NotebookNode) -> bytes:
    body, _ = _exporter().from_notebook_node(nb)
    return body.encode("utf-8")


def upload(store: Store, objects: list[ArchiveObject], *, run_id: str) -> dict[str, str | None]:
    """Write each object once; returns name -> version id. StoreError on the first failure."""
    versions: dict[str, str | None] = {}
    for obj in objects:
        result = store.put(
            obj.key, obj.data, metadata={"paynb-run-id": run_id}, content_type=CONTENT_TYPES.get(obj.name)
        )
        if result.sha256 != obj.sha256:  # pragma: no cover - the store hashed different bytes
            raise StoreError(f"{obj.key} was stored with a different sha256 than sent")
        versions[obj.name] = result.version_id
    return versions


# -- the spool -----------------------------------------------------------------------------------------
def spool_root(settings: Settings) -> Path:
    return Path(settings.data_dir).expanduser() / SPOOL_DIR


def spool_objects(
    settings: Settings, *, run_id: str, store_url: str, objects: list[ArchiveObject], reason: str
) -> Path:
    """Keep the objects locally until ``flush_spool`` can deliver them. Adds to an existing spool entry."""
    private_dir(spool_root(settings))
    folder = private_dir(spool_root(settings) / run_id)
    manifest = _read_manifest(folder) or {
        "run_id": run_id,
        "store_url": store_url,
        "objects": [],
        "delivered": {},
    }
    known = {o["name"] for o in manifest["objects"]}
    for obj in objects:
        write_private(folder / obj.name, obj.data)
        if obj.name not in known:
            manifest["objects"].append({"name": obj.name, "key": obj.key, "sha256": obj.sha256})
    manifest["reason"] = reason
    _write_manifest(folder, manifest)
    return folder


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:  # unreadable: flush moves the entry aside instead of tripping on it every time
        return {"run_id": folder.name, "store_url": "", "objects": [], "delivered": {}, "broken": True}
    return manifest if isinstance(manifest, dict) and "run_id" in manifest else None


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest-")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
    os.replace(tmp, folder / MANIFEST)


def spooled_runs(settings: Settings) -> list[dict[str, Any]]:
    root = spool_root(settings)
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = _read_manifest(folder)
        if manifest:
            out.append(manifest)
    return out


def flush_spool(
    settings: Settings, ledger: Ledger, *, lock_wait_s: float = FLUSH_LOCK_WAIT_S
) -> list[FlushResult]:
    """Deliver every spooled run. A key already holding the same bytes counts as delivered; one holding
    other bytes is an error left in the spool for a person to look at.

    One flush at a time: a second one waits up to ``lock_wait_s`` for the lock file in the spool folder,
    then finds what the first left. A half-flushed entry (its manifest lists an object whose spooled file
    is gone) is completed when the store already holds that object, else moved to ``spool/.broken/``.
    """
    root = spool_root(settings)
    if not root.is_dir():
        return []
    with _flush_lock(root, lock_wait_s):
        return [_flush_one(settings, ledger, manifest) for manifest in spooled_runs(settings)]


@contextlib.contextmanager
def _flush_lock(root: Path, wait_s: float) -> Iterator[None]:
    """An exclusive flock on ``spool/.flush.lock``, waited for in slices up to ``wait_s``."""
    private_dir(root)
    fd = os.open(root / FLUSH_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"another `paynb archive flush` has held {root / FLUSH_LOCK} for {wait_s:g} s",
                        hint="let it finish and run the flush again",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _set_aside(folder: Path, why: str) -> str:
    """Move a spool entry that cannot be delivered out of the way, so later flushes do not trip on it."""
    broken = private_dir(folder.parent / BROKEN_DIR)
    target = broken / folder.name
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    os.replace(folder, target)
    return f"{why}; moved to {target} for a person to look at"


def _flush_one(settings: Settings, ledger: Ledger, manifest: dict[str, Any]) -> FlushResult:
    run_id = manifest["run_id"]
    folder = spool_root(settings) / run_id
    result = FlushResult(run_id=run_id, store_url=manifest["store_url"])
    delivered: dict[str, str | None] = manifest.setdefault("delivered", {})
    if manifest.get("broken"):
        result.error = _set_aside(folder, "its manifest.json is not readable")
        return result
    try:
        store = open_store(manifest["store_url"], settings)
        for item in manifest["objects"]:
            name, key, digest = item["name"], item["key"], item["sha256"]
            if name in delivered:
                continue
            if not (folder / name).is_file():  # half-flushed: the file went, the manifest stayed
                existing = store.stat(key)
                if existing is None or existing.sha256 != digest:
                    result.error = _set_aside(
                        folder, f"the spooled {name} is gone and {key} is not in the store"
                    )
                    result.remaining = [o["name"] for o in manifest["objects"] if o["name"] not in delivered]
                    return result
                ledger.add_object(
                    run_id, name, store_url=store.url, key=key, sha256=digest, version_id=existing.version_id
                )
                delivered[name] = existing.version_id
                result.delivered.append(name)
                continue
            data = (folder / name).read_bytes()
            if sha256_bytes(data) != digest:
                raise StoreError(f"the spooled {name} of run {run_id} changed since it was spooled")
            existing = store.stat(key)
            if existing is not None:
                if existing.sha256 != digest:
                    raise StoreError(f"{key} already exists in {store.url} with other content")
                version = existing.version_id
            else:
                version = upload(store, [ArchiveObject(name, key, data, digest)], run_id=run_id)[name]
            ledger.add_object(run_id, name, store_url=store.url, key=key, sha256=digest, version_id=version)
            delivered[name] = version
            result.delivered.append(name)
            _write_manifest(folder, manifest)
    except (StoreError, OSError) as err:
        result.error = str(err).splitlines()[0]
    result.remaining = [o["name"] for o in manifest["objects"] if o["name"] not in delivered]
    if not result.remaining:
        shutil.rmtree(folder, ignore_errors=True)
    return result
