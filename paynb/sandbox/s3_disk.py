"""The sandbox S3 server's objects on disk, so the legacy store survives ``sandbox down`` / ``up``.

moto keeps objects in memory only. :class:`DiskMirror` wraps moto's WSGI application: after every
successful PUT, POST or DELETE it writes the current state of what the request touched to ``root``
(an object's bytes and metadata, or a whole bucket after a bucket-level change such as a multi-object
delete). :func:`restore` loads ``root`` back into moto before the server takes requests.

Layout, one folder per bucket::

    root/<bucket>/bucket.json            {"schema_version": 1, "versioning": "Enabled"|null, "object_lock": bool}
    root/<bucket>/objects/<key%>.data    the object's bytes (key percent-encoded, so "a" and "a/b" can coexist)
    root/<bucket>/objects/<key%>.json    {"schema_version": 1, "key": ..., "metadata": {...}, "last_modified": ...}

Only each key's newest version is kept: older versions, delete markers, retention dates and legal holds
are not (the sandbox's legacy buckets are unversioned; the run archive lives on the GCS emulator).
It reads moto's own backend (``moto.s3.models.s3_backends``); ``tests/test_sandbox_s3_disk.py`` checks
that against the installed moto.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

SCHEMA_VERSION = 1
_ACCOUNT = "123456789012"  # moto's default account: what any access key without an account maps to
_PARTITION = "aws"
_REGION = "us-east-1"


def _backend() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[_ACCOUNT][_PARTITION]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode()


class DiskMirror:
    """WSGI middleware: moto's S3 app, with every change written through to ``root``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], root: str | os.PathLike[str]) -> None:
        self.app = app
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # werkzeug serves requests on threads

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("PUT", "POST", "DELETE"):
            return self.app(environ, start_response)
        seen: dict[str, int] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        try:
            body = b"".join(result)  # the status is known once the body is produced
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if 200 <= seen.get("status", 500) < 300:
            bucket, key = _bucket_and_key(environ.get("PATH_INFO", ""))
            if bucket:
                with self._lock:
                    if key:
                        self.save_key(bucket, key)
                    else:
                        self.save_bucket(bucket)
        return [body]

    # -- writing ------------------------------------------------------------------------------------
    def _objects(self, bucket: str) -> Path:
        return self.root / bucket / "objects"

    def save_bucket(self, bucket: str) -> None:
        """The bucket's settings and every current object (after a bucket-level change), or its removal."""
        backend = _backend()
        found = backend.buckets.get(bucket)
        if found is None:
            shutil.rmtree(self.root / bucket, ignore_errors=True)
            return
        objects = self._objects(bucket)
        objects.mkdir(parents=True, exist_ok=True)
        doc = {
            "schema_version": SCHEMA_VERSION,
            "versioning": found.versioning_status,
            "object_lock": bool(found.object_lock_enabled),
        }
        _write_atomic(self.root / bucket / "bucket.json", _json_bytes(doc))
        # a bucket-level request (a multi-object delete, a setting) changes no object's bytes: remove what
        # is gone, add what is missing, leave the rest
        current = set(found.keys.keys())
        on_disk: set[str] = set()
        for meta_path in objects.glob("*.json"):
            key = _saved_key(meta_path)
            if key in current:
                on_disk.add(key)
                continue
            meta_path.unlink(missing_ok=True)
            meta_path.with_name(meta_path.name[: -len(".json")] + ".data").unlink(missing_ok=True)
        for name in current - on_disk:
            self.save_key(bucket, name)

    def save_key(self, bucket: str, key: str) -> None:
        """The key's newest version as moto now holds it; a deleted key's files are removed."""
        backend = _backend()
        if bucket not in backend.buckets:
            return
        if not (self.root / bucket / "bucket.json").exists():
            self.save_bucket(bucket)
            return
        found = backend.get_object(bucket, key)
        data, meta_path = _files(self._objects(bucket), key)
        if found is None:
            meta_path.unlink(missing_ok=True)
            data.unlink(missing_ok=True)
            return
        data.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(data, bytes(found.value))  # bytes first: metadata without bytes is never restored
        meta = {
            "schema_version": SCHEMA_VERSION,
            "key": key,
            "metadata": dict(found.metadata),
            "last_modified": found.last_modified.isoformat(),
        }
        _write_atomic(meta_path, _json_bytes(meta))


def restore(root: str | os.PathLike[str]) -> int:
    """Load every bucket and object under ``root`` into moto (before serving); returns the object count."""
    backend = _backend()
    count = 0
    base = Path(root)
    if not base.is_dir():
        return 0
    for bucket_doc in sorted(base.glob("*/bucket.json")):
        doc = json.loads(bucket_doc.read_text())
        name = bucket_doc.parent.name
        bucket = backend.buckets.get(name) or backend.create_bucket(name, _REGION)
        bucket.object_lock_enabled = bool(doc.get("object_lock"))
        bucket.versioning_status = doc.get("versioning") or (
            "Enabled" if bucket.object_lock_enabled else None
        )
        for meta_path in sorted((bucket_doc.parent / "objects").glob("*.json")):
            meta = json.loads(meta_path.read_text())
            data_path, _ = _files(meta_path.parent, meta["key"])
            if not data_path.exists():
                continue  # a write that died between its two files: the object was never confirmed
            key = backend.put_object(name, meta["key"], data_path.read_bytes(), disable_notification=True)
            key.set_metadata(meta.get("metadata") or {})
            if meta.get("last_modified"):  # listings keep their dates across a restart
                key.last_modified = datetime.fromisoformat(meta["last_modified"])
            count += 1
    return count


def _saved_key(meta_path: Path) -> str | None:
    """The key a metadata file was written for (its name may be a hash of a long key)."""
    try:
        return str(json.loads(meta_path.read_text())["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _files(objects: Path, key: str) -> tuple[Path, Path]:
    """(bytes, metadata) files of ``key``; names are appended to, never suffix-swapped ("a.txt" has one)."""
    name = quote(key, safe="")
    if len(name) > 200:  # file names stop at 255 bytes; S3 keys may be 1,024 (the .json keeps the key)
        name = "sha256-" + hashlib.sha256(key.encode()).hexdigest()
    return objects / f"{name}.data", objects / f"{name}.json"


def _bucket_and_key(path_info: str) -> tuple[str, str]:
    """``/bucket/some/key`` -> ("bucket", "some/key"); werkzeug hands PATH_INFO over as latin-1."""
    try:
        path = path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        path = path_info
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


__all__ = ["DiskMirror", "SCHEMA_VERSION", "restore"]
