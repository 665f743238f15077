"""The object-store interface and the URL-scheme registry of its back ends.

A store holds immutable evidence: ``put`` never replaces an existing key unless asked, and every
object carries the sha256 of its bytes so a reader can check it.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from paynb.canonical import sha256_hex
from paynb.errors import StoreError

if TYPE_CHECKING:
    from paynb.settings import Settings


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or ``stat`` knows about one object (or, with ``is_prefix``, one folder)."""

    key: str
    size: int | None
    etag: str | None
    last_modified: datetime | None
    version_id: str | None = None
    sha256: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    is_prefix: bool = False


@dataclass(frozen=True)
class PutResult:
    key: str
    version_id: str | None
    sha256: str


def sha256_bytes(data: bytes) -> str:
    return sha256_hex(data)


def verify_sha256(store_url: str, key: str, data: bytes, expected: str | None) -> bytes:
    """Return ``data`` when it matches the sha256 recorded at write time (or none was recorded)."""
    if expected and sha256_bytes(data) != expected:
        raise StoreError(f"{key} in {store_url} does not match the sha256 recorded when it was written")
    return data


def check_key(key: str) -> str:
    """Keys are relative, slash-separated, with no empty, ``.`` or ``..`` parts."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(
            f"invalid object key {key!r}: a key is the object's path inside its bucket, without a leading"
            " '/' and without empty, '.' or '..' parts (e.g. cgi_processed/INBOX.F3505.20260730190100)"
        )
    return key


class Store(abc.ABC):
    """One place to keep objects. Back ends: :class:`~paynb.store.local.LocalStore` (``file://``),
    :class:`~paynb.store.s3.S3Store` (``s3://``) and :class:`~paynb.store.gcs.GcsStore` (``gs://``)."""

    #: the URL this store was opened with (never holds credentials)
    url: str

    @abc.abstractmethod
    def list(
        self, prefix: str = "", recursive: bool = True, *, start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order; without ``recursive``, sub-folders come back
        once each as ``ObjectInfo(is_prefix=True)``. With ``start_after`` (a key), only keys after it
        are listed, and the server is asked for only those (S3 ``StartAfter``, GCS ``startOffset``)."""

    @abc.abstractmethod
    def get(self, key: str, *, version_id: str | None = None, verify: bool = True) -> bytes:
        """The object's bytes. With ``verify``, a sha256 recorded at write time must match."""

    @abc.abstractmethod
    def stat(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        """The object's info, or None when there is no such key (or version)."""

    @abc.abstractmethod
    def put(
        self,
        key: str,
        data: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = False,
    ) -> PutResult:
        """Write ``data`` under ``key`` once. An existing key raises StoreError unless ``overwrite``."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    @abc.abstractmethod
    def url_for(self, key: str) -> str:
        """A URL naming the object, e.g. ``s3://bucket/prefix/key`` (no credentials)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class BucketStore(Store):
    """What the two cloud back ends share: a bucket, an optional key prefix inside it, a client, and the
    mapping between paynb's keys and the bucket's object names."""

    scheme: str  # "s3" or "gs"

    def __init__(self, bucket: str, prefix: str, *, client: Any, endpoint: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.endpoint = endpoint
        self.url = f"{self.scheme}://{bucket}/{self.prefix}" if self.prefix else f"{self.scheme}://{bucket}"
        self._lock = threading.Lock()

    def _key(self, key: str) -> str:
        """The bucket's object name for ``key`` (checked)."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, name: str) -> str:
        """``key`` for the bucket's object name ``name``."""
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def url_for(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{self._key(key)}"


StoreFactory = Callable[[str, "Settings | None"], Store]
_BACKENDS: dict[str, StoreFactory] = {}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make ``open_store`` hand URLs starting with ``scheme://`` to ``factory(url, settings)``."""
    _BACKENDS[scheme.lower()] = factory


def open_store(url: str, settings: Settings | None = None) -> Store:
    """Open the store a URL names: ``file:///abs/dir``, ``file://rel/dir``, ``s3://bucket/prefix``
    or ``gs://bucket/prefix``."""
    scheme, sep, _ = url.partition("://")
    factory = _BACKENDS.get(scheme.lower()) if sep else None
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(_BACKENDS))
        raise StoreError(f"unsupported store URL scheme in {_safe_url(url)!r}; use one of: {known}")
    return factory(url, settings)


def _safe_url(url: str) -> str:
    """Drop any userinfo so an error message cannot carry a credential."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.split("@")[-1]
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"
