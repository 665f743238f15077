"""``file://DIR``: a folder as an object store.

Each object is written atomically (temp file, fsync, hard link so an existing key is never replaced)
and gets a sidecar ``.paynb-meta/<key>.json`` holding its sha256, size, content type and metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from paynb.errors import StoreError
from paynb.files import make_private_dirs
from paynb.settings import Settings
from paynb.store.base import (
    ObjectInfo,
    PutResult,
    Store,
    check_key,
    register_store,
    sha256_bytes,
    verify_sha256,
)

META_DIR = ".paynb-meta"
_TMP_PREFIX = ".paynb-tmp-"


class LocalStore(Store):
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = f"file://{self.root}"

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> LocalStore:
        path = unquote(url.partition("://")[2])
        if not path:
            raise StoreError("a file:// store URL needs a folder, e.g. file:///var/lib/paynb/archive")
        return cls(path)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / (check_key(key) + ".json")

    def _read_meta(self, key: str) -> dict:
        try:
            return json.loads(self._meta_path(key).read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise StoreError(f"the metadata of {key} in {self.url} is unreadable") from None

    def list(
        self, prefix: str = "", recursive: bool = True, *, start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        seen_prefixes: set[str] = set()
        # only the folder the prefix names can hold its keys ("cgi_feedback/FEEDBACK" -> cgi_feedback/)
        for key in sorted(self._walk(prefix.rpartition("/")[0])):
            if not key.startswith(prefix) or (start_after is not None and key <= start_after):
                continue
            rest = key[len(prefix) :]
            if not recursive and "/" in rest:
                sub = prefix + rest.split("/", 1)[0] + "/"
                if sub not in seen_prefixes:
                    seen_prefixes.add(sub)
                    yield ObjectInfo(key=sub, size=None, etag=None, last_modified=None, is_prefix=True)
                continue
            info = self.stat(key)
            if info is not None:
                yield info

    def _walk(self, folder: str = "") -> Iterator[str]:
        """Every key under ``folder`` (a key prefix ending at a "/"), in no particular order."""
        try:
            top = self._path(folder) if folder else self.root
        except StoreError:  # "a//b" and the like: no valid key starts with it
            return
        if folder.split("/", 1)[0] == META_DIR or not top.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != META_DIR]
            rel = Path(dirpath).relative_to(self.root)
            for name in filenames:
                if not name.startswith(_TMP_PREFIX):
                    yield (rel / name).as_posix() if rel.parts else name

    def stat(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        if version_id is not None:
            return None  # a folder keeps one version only
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        meta = self._read_meta(key)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=meta.get("sha256"),
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
            sha256=meta.get("sha256"),
            metadata=meta.get("metadata", {}),
            content_type=meta.get("content_type"),
        )

    def get(self, key: str, *, version_id: str | None = None, verify: bool = True) -> bytes:
        if version_id is not None:
            raise StoreError(f"{self.url} keeps no versions; ask for {key} without a version id")
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise StoreError(f"no object {key} in {self.url}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {key} from {self.url}: {exc.strerror}") from None
        if verify:
            verify_sha256(self.url, key, data, self._read_meta(key).get("sha256"))
        return data

    def put(
        self,
        key: str,
        data: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = False,
    ) -> PutResult:
        path = self._path(key)
        digest = sha256_bytes(data)
        meta = {
            "sha256": digest,
            "size": len(data),
            "content_type": content_type,
            "metadata": dict(metadata or {}),
            "written_at": datetime.now(UTC).isoformat(),
        }
        try:
            make_private_dirs(path.parent)  # archived runs are private: 0700 folders, 0600 files
            if path.exists() and not overwrite:
                raise StoreError(f"{key} already exists in {self.url}; archived objects are never replaced")
            # the data file claims the key (os.link fails if another writer got there first); only the
            # winner then writes the sidecar, so a sidecar never describes someone else's bytes
            _atomic_write(path, data, replace=overwrite)
            _atomic_write(self._meta_path(key), json.dumps(meta, sort_keys=True).encode(), replace=True)
        except FileExistsError:
            raise StoreError(
                f"{key} already exists in {self.url}; archived objects are never replaced"
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot write {key} to {self.url}: {exc.strerror}") from None
        return PutResult(key=key, version_id=None, sha256=digest)

    def url_for(self, key: str) -> str:
        return f"{self.url}/{check_key(key)}"


def _atomic_write(path: Path, data: bytes, *, replace: bool) -> None:
    """Write via a temp file in the same folder; without ``replace`` an existing file raises
    FileExistsError (``os.link`` refuses to replace, so two writers cannot both win). The file is 0600."""
    make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


register_store("file", LocalStore.from_url)
