"""``s3://BUCKET/PREFIX``: S3 or MinIO through the ``minio`` client.

The endpoint and keys come from :class:`~paynb.settings.Settings` (``PAYNB_S3_*`` / ``MINIO_*``), never
from the URL. Each object carries its sha256 twice: as user metadata (``x-amz-meta-sha256``, checked on
every read) and as S3's own additional checksum (``x-amz-checksum-sha256``). The checksum header is also
what an Object Lock bucket demands of a PUT when no Content-MD5 is sent (minio sends Content-MD5 only over
HTTPS). When the bucket keeps versions, ``put`` returns the version id.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from paynb.errors import StoreError
from paynb.settings import Settings, get_settings
from paynb.store.base import (
    BucketStore,
    ObjectInfo,
    PutResult,
    register_store,
    sha256_bytes,
    verify_sha256,
)

T = TypeVar("T")
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchObject"})
_NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"})
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0


def parse_endpoint(endpoint: str, secure_default: bool) -> tuple[str, bool]:
    """``http://host:port`` or ``host:port`` -> (``host:port``, secure)."""
    endpoint = endpoint.strip().rstrip("/")
    if endpoint.startswith("https://"):
        return endpoint[len("https://") :], True
    if endpoint.startswith("http://"):
        return endpoint[len("http://") :], False
    return endpoint, secure_default


def make_client(settings: Settings) -> Minio:
    """A minio client for the configured endpoint, with short connect timeouts and few retries so an
    outage is noticed in seconds (the archive step then spools instead of hanging)."""
    if not settings.s3_endpoint:
        raise StoreError(
            "no S3 endpoint is configured",
            hint="set PAYNB_S3_ENDPOINT (or MINIO_ENDPOINT), PAYNB_S3_ACCESS_KEY and PAYNB_S3_SECRET_KEY, "
            "or start the sandbox: `paynb sandbox up --dir .sandbox`",
        )
    host, secure = parse_endpoint(settings.s3_endpoint, settings.s3_secure)
    return Minio(
        host,
        access_key=settings.s3_access_key or None,
        secret_key=settings.s3_secret_key.reveal() or None,
        secure=secure,
        region=settings.s3_region or None,
        http_client=http_pool(),
    )


def http_pool() -> urllib3.PoolManager:
    """The HTTP pool every paynb minio client uses. minio's own default waits five minutes per try."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
        maxsize=10,
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


class S3Store(BucketStore):
    scheme = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, client: Minio, endpoint: str = "") -> None:
        if not bucket:
            raise StoreError("an s3:// store URL needs a bucket, e.g. s3://pay-archive/paynb")
        super().__init__(bucket, prefix, client=client, endpoint=endpoint)
        self._features: dict[str, bool] | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> S3Store:
        settings = settings or get_settings()
        rest = url.partition("://")[2]
        bucket, _, prefix = rest.partition("/")
        if "@" in bucket:
            raise StoreError("put S3 credentials in PAYNB_S3_ACCESS_KEY/PAYNB_S3_SECRET_KEY, not in the URL")
        return cls(bucket, prefix, client=make_client(settings), endpoint=settings.s3_endpoint)

    # -- helpers -------------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run a client call; turn every failure into a StoreError that names no credential."""
        try:
            return fn()
        except S3Error as exc:
            raise StoreError(f"S3 refused to {what} in {self.url}: {exc.code}") from None
        except ValueError as exc:  # minio validates names client-side
            raise StoreError(f"cannot {what} in {self.url}: {exc}") from None
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            where = f" at {self.endpoint}" if self.endpoint else ""
            raise StoreError(
                f"the object store{where} is unreachable ({type(exc).__name__}) while trying to {what}",
                hint="check PAYNB_S3_ENDPOINT and that the S3/MinIO server is up",
            ) from None

    @property
    def features(self) -> dict[str, bool]:
        """Whether the bucket keeps versions and has Object Lock (asked once, then cached)."""
        with self._lock:
            if self._features is None:
                self._features = self._call("read the bucket settings", self._read_features)
            return self._features

    def _read_features(self) -> dict[str, bool]:
        if not self.client.bucket_exists(self.bucket):
            raise StoreError(
                f"bucket {self.bucket} does not exist", hint="create it, or use `paynb sandbox up`"
            )
        versioning = self.client.get_bucket_versioning(self.bucket).status == "Enabled"
        try:
            self.client.get_object_lock_config(self.bucket)
            locked = True
        except S3Error as exc:
            if exc.code not in _NO_LOCK_CODES:
                raise
            locked = False
        return {"versioning": versioning or locked, "object_lock": locked}

    # -- Store API -----------------------------------------------------------------------------------
    def list(
        self, prefix: str = "", recursive: bool = True, *, start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        after = self._key(start_after) if start_after else None
        items = self._call(
            "list objects",
            lambda: list(
                self.client.list_objects(
                    self.bucket, prefix=full or None, recursive=recursive, start_after=after
                )
            ),
        )
        for item in sorted(items, key=lambda o: o.object_name):
            if after is not None and item.object_name <= after:
                continue
            yield ObjectInfo(
                key=self._rel(item.object_name),
                size=item.size,
                etag=item.etag,
                last_modified=item.last_modified,
                version_id=item.version_id,
                is_prefix=bool(item.is_dir),
            )

    def stat(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        name = self._key(key)

        def fetch():
            try:
                return self.client.stat_object(self.bucket, name, version_id=version_id)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
                    return None
                raise

        st = self._call(f"stat {key}", fetch)
        if st is None:
            return None
        meta = _user_metadata(st.metadata)
        return ObjectInfo(
            key=key,
            size=st.size,
            etag=st.etag,
            last_modified=st.last_modified,
            version_id=st.version_id,
            sha256=meta.get("sha256"),
            metadata=meta,
            content_type=st.content_type,
        )

    def get(self, key: str, *, version_id: str | None = None, verify: bool = True) -> bytes:
        name = self._key(key)

        def fetch() -> tuple[bytes, dict[str, str]]:
            resp = self.client.get_object(self.bucket, name, version_id=version_id)
            try:
                return resp.read(), _user_metadata(resp.headers)
            finally:
                resp.close()
                resp.release_conn()

        data, meta = self._call(f"read {key}", fetch)
        if verify:
            verify_sha256(self.url, key, data, meta.get("sha256"))
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
        name = self._key(key)
        self.features  # noqa: B018 - fail early (missing bucket, outage) before any upload
        if not overwrite and self.stat(key) is not None:
            raise StoreError(f"{key} already exists in {self.url}; archived objects are never replaced")
        digest = sha256_bytes(data)
        headers: dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}
        headers["sha256"] = digest
        headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
        headers["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(digest)).decode()
        result = self._call(
            f"write {key}",
            lambda: self.client.put_object(
                self.bucket,
                name,
                io.BytesIO(data),
                len(data),
                content_type=content_type or "application/octet-stream",
                metadata=headers,
            ),
        )
        return PutResult(key=key, version_id=result.version_id, sha256=digest)


def _user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk.startswith("x-amz-meta-"):
            out[lk[len("x-amz-meta-") :]] = v
    return out


register_store("s3", S3Store.from_url)
