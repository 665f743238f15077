"""``gs://BUCKET/PREFIX``: Google Cloud Storage through ``google-cloud-storage`` (what sbc-pay itself uses).

Credentials are Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS`` names a key file, or
the metadata server / ``gcloud auth application-default login``); paynb never reads, prints or passes them
on. ``PAYNB_GCS_PROJECT`` names the project; with ``STORAGE_EMULATOR_HOST`` set, the client talks to that
emulator with anonymous credentials (the sandbox).

Every object is written once (generation precondition ``ifGenerationMatch=0``), the server checks the
crc32c paynb sends, paynb compares the md5/crc32c the server reports, and paynb's own sha256 goes into the
object metadata and is checked on every read, as with the other back ends. When the bucket makes new
objects carry an event-based hold (``default_event_based_hold``), paynb sets it explicitly as well, so the
emulator behaves like GCS; a retention policy applies server-side by itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

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

if TYPE_CHECKING:
    from google.cloud import storage

T = TypeVar("T")
# the same budget as the S3 back end (paynb.store.s3): an outage is noticed in seconds
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
# like urllib3.Retry(total=2, backoff_factor=0.2) in the S3 back end: three tries at most, 0.2 s then
# 0.4 s apart (the client's own retry is switched off; its jittered back-off has no bound on tries)
ATTEMPTS = 3
BACKOFF_S = 0.2
_SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
_CRED_HINT = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a readable service-account key file (or run "
    "`gcloud auth application-default login`), and PAYNB_GCS_PROJECT; for the sandbox set STORAGE_EMULATOR_HOST"
)


def _transient(exc: BaseException) -> bool:
    """Worth another try: the server was busy or failing (429/5xx), or the connection dropped."""
    import requests
    from google.api_core import exceptions as gexc

    return isinstance(
        exc,
        gexc.TooManyRequests
        | gexc.InternalServerError
        | gexc.BadGateway
        | gexc.ServiceUnavailable
        | gexc.GatewayTimeout
        | requests.ConnectionError
        | requests.Timeout
        | ConnectionError,
    )


def make_client(*, project: str = "", emulator_host: str = "", credentials_file: str = "") -> storage.Client:
    """A storage client. With ``emulator_host`` it uses anonymous credentials; otherwise ADC."""
    try:
        from google.auth import exceptions as auth_exc
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
    except ImportError:  # pragma: no cover - a declared dependency
        raise StoreError("gs:// needs google-cloud-storage: pip install google-cloud-storage") from None
    if emulator_host:
        endpoint = emulator_host if "://" in emulator_host else f"http://{emulator_host}"
        return storage.Client(
            project=project or "paynb-emulator",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint.rstrip("/")},
        )
    try:
        if credentials_file and credentials_file != os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            # named in a .env file only: a service-account key (the ADC lookup below reads any kind of
            # credential file, but only from the process environment)
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_file(
                credentials_file, scopes=_SCOPES
            )
            found_project = credentials.project_id
        else:
            import google.auth

            credentials, found_project = google.auth.default(scopes=_SCOPES)
    except (auth_exc.GoogleAuthError, OSError, ValueError, KeyError) as exc:
        # the message of a key-file error can quote the file; say only what kind of failure it was
        what = "unreadable" if credentials_file else "missing"
        raise StoreError(
            f"Google Cloud credentials are {what} ({type(exc).__name__}): GOOGLE_APPLICATION_CREDENTIALS",
            hint=_CRED_HINT,
        ) from None
    return storage.Client(project=project or found_project or None, credentials=credentials)


@dataclass(frozen=True)
class BucketPolicy:
    """What makes a bucket write-once: a (locked) retention policy, or holds on new objects."""

    retention_s: int | None
    retention_locked: bool
    default_event_based_hold: bool

    @property
    def write_once(self) -> bool:
        return self.retention_locked or self.default_event_based_hold

    def describe(self) -> str:
        if self.retention_locked:
            return f"locked retention policy of {self.retention_s} s"
        if self.default_event_based_hold:
            return "every new object carries an event-based hold"
        if self.retention_s:
            return f"retention policy of {self.retention_s} s, NOT locked (an admin can remove it)"
        return "no retention policy and no default hold: archived runs can be deleted"


class GcsStore(BucketStore):
    scheme = "gs"

    def __init__(self, bucket: str, prefix: str = "", *, client: storage.Client, endpoint: str = "") -> None:
        if not bucket:
            raise StoreError(
                "a gs:// store URL needs a bucket, e.g. gs://ftp-poller-prod",
                hint="fix PAYNB_BUCKET_URL / PAYNB_ARCHIVE_URL",
            )
        super().__init__(bucket, prefix, client=client, endpoint=endpoint)
        self._policy: BucketPolicy | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> GcsStore:
        settings = settings or get_settings()
        rest = url.partition("://")[2]
        bucket, _, prefix = rest.partition("/")
        if "@" in bucket:
            raise StoreError("gs:// URLs carry no credentials; use GOOGLE_APPLICATION_CREDENTIALS")
        if not bucket:
            raise StoreError(
                f"{url!r} names no bucket; write gs://BUCKET or gs://BUCKET/PREFIX",
                hint="fix PAYNB_BUCKET_URL / PAYNB_ARCHIVE_URL",
            )
        client = make_client(
            project=settings.gcs_project,
            emulator_host=settings.gcs_emulator_host,
            credentials_file=settings.google_credentials_file,
        )
        return cls(bucket, prefix, client=client, endpoint=settings.gcs_emulator_host)

    # -- helpers -------------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run a client call; turn every failure into a StoreError that names no credential."""
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc
        from google.resumable_media import common as rm_common

        try:
            for attempt in range(ATTEMPTS):
                try:
                    return fn()
                except Exception as exc:
                    if attempt + 1 == ATTEMPTS or not _transient(exc):
                        raise
                    time.sleep(BACKOFF_S * 2**attempt)
            raise AssertionError("unreachable")  # pragma: no cover
        except gexc.NotFound:
            raise StoreError(
                f"bucket {self.bucket} does not exist (or this account cannot see it) while trying to {what}",
                hint="check the bucket in PAYNB_BUCKET_URL / PAYNB_ARCHIVE_URL, or run `paynb sandbox up`",
            ) from None
        except gexc.PreconditionFailed:
            raise StoreError(
                f"cannot {what} in {self.url}: it already exists and is never replaced"
            ) from None
        except (gexc.Unauthorized, gexc.Forbidden) as exc:
            raise StoreError(
                f"GCS refused to {what} in {self.url} ({exc.code}): check the account's permissions",
                hint=_CRED_HINT,
            ) from None
        except auth_exc.GoogleAuthError as exc:
            raise StoreError(
                f"Google Cloud credentials did not work ({type(exc).__name__}) while trying to {what}",
                hint=_CRED_HINT,
            ) from None
        except gexc.GoogleAPICallError as exc:
            if _transient(exc):
                where = f" at {self.endpoint}" if self.endpoint else ""
                raise StoreError(
                    f"Google Cloud Storage{where} is failing (HTTP {exc.code}, {ATTEMPTS} tries) while trying to {what}",
                    hint="check STORAGE_EMULATOR_HOST (sandbox) or the GCS status page, then retry",
                ) from None
            raise StoreError(f"GCS refused to {what} in {self.url}: HTTP {exc.code}") from None
        except rm_common.DataCorruption:
            raise StoreError(f"the bytes read for {what} in {self.url} fail the server's checksum") from None
        except (OSError, ValueError) as exc:
            import requests

            if isinstance(exc, ValueError) and not isinstance(exc, requests.RequestException):
                raise StoreError(f"cannot {what} in {self.url}: {exc}") from None
            where = f" at {self.endpoint}" if self.endpoint else ""
            raise StoreError(
                f"Google Cloud Storage{where} is unreachable ({type(exc).__name__}) while trying to {what}",
                hint="check STORAGE_EMULATOR_HOST (sandbox) or the network route to storage.googleapis.com",
            ) from None

    def _timeouts(self) -> dict:
        return {"timeout": (CONNECT_TIMEOUT_S, READ_TIMEOUT_S), "retry": None}

    @property
    def policy(self) -> BucketPolicy:
        """The bucket's retention policy and default hold (asked once, then cached)."""
        with self._lock:
            if self._policy is None:
                bucket = self._call(
                    "read the bucket settings",
                    lambda: self.client.get_bucket(self.bucket, **self._timeouts()),
                )
                self._policy = BucketPolicy(
                    retention_s=bucket.retention_period,
                    retention_locked=bool(bucket.retention_policy_locked),
                    default_event_based_hold=bool(bucket.default_event_based_hold),
                )
            return self._policy

    # -- Store API -----------------------------------------------------------------------------------
    def list(
        self, prefix: str = "", recursive: bool = True, *, start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        offset = self._key(start_after) if start_after else None

        def fetch():
            it = self.client.list_blobs(
                self.bucket,
                prefix=full or None,
                delimiter=None if recursive else "/",
                start_offset=offset,
                **self._timeouts(),
            )
            blobs = list(it)
            return blobs, sorted(it.prefixes) if not recursive else []

        blobs, prefixes = self._call("list objects", fetch)
        items = [self._info(self._rel(b.name), b) for b in blobs if offset is None or b.name > offset]
        items += [
            ObjectInfo(key=self._rel(p), size=None, etag=None, last_modified=None, is_prefix=True)
            for p in prefixes
            if offset is None or p > offset
        ]
        yield from sorted(items, key=lambda o: o.key)

    @staticmethod
    def _info(key: str, blob) -> ObjectInfo:
        meta = dict(blob.metadata or {})
        return ObjectInfo(
            key=key,
            size=blob.size,
            etag=blob.etag or blob.md5_hash,
            last_modified=blob.updated,
            version_id=str(blob.generation) if blob.generation is not None else None,
            sha256=meta.get("sha256"),
            metadata=meta,
            content_type=blob.content_type,
        )

    def _blob(self, key: str, version_id: str | None):
        name = self._key(key)
        generation = None
        if version_id is not None:
            if not str(version_id).isdigit():
                raise StoreError(f"{version_id!r} is not a GCS generation number (for {key} in {self.url})")
            generation = int(version_id)
        return self._call(
            f"stat {key}",
            lambda: self.client.bucket(self.bucket).get_blob(name, generation=generation, **self._timeouts()),
        )

    def stat(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        blob = self._blob(key, version_id)
        return None if blob is None else self._info(key, blob)

    def get(self, key: str, *, version_id: str | None = None, verify: bool = True) -> bytes:
        blob = self._blob(key, version_id)
        if blob is None:
            raise StoreError(f"no object {key} in {self.url}")
        # the blob names its generation, so the bytes read are the ones stat described; the client
        # checks them against the server's crc32c/md5 ("auto")
        data = self._call(f"read {key}", lambda: blob.download_as_bytes(checksum="auto", **self._timeouts()))
        if verify:
            verify_sha256(self.url, key, data, (blob.metadata or {}).get("sha256"))
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
        from google.api_core import exceptions as gexc

        name = self._key(key)
        policy = self.policy  # fail early (missing bucket, outage) before any upload
        digest = sha256_bytes(data)
        blob = self.client.bucket(self.bucket).blob(name)
        blob.metadata = {**{str(k): str(v) for k, v in (metadata or {}).items()}, "sha256": digest}
        if policy.default_event_based_hold:
            blob.event_based_hold = True
        tries = 0

        def upload() -> None:
            nonlocal tries
            tries += 1
            try:
                blob.upload_from_string(
                    data,
                    content_type=content_type or "application/octet-stream",
                    if_generation_match=None if overwrite else 0,
                    checksum="crc32c",  # the server refuses the upload if the bytes it got differ
                    **self._timeouts(),
                )
            except gexc.PreconditionFailed:
                # a retried upload whose first try landed after all finds its own bytes there
                landed = (
                    self.client.bucket(self.bucket).get_blob(name, **self._timeouts()) if tries > 1 else None
                )
                if landed is None or (landed.metadata or {}).get("sha256") != digest:
                    raise
                blob._set_properties(landed._properties)

        self._call(f"write {key}", upload)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        if blob.md5_hash and blob.md5_hash != md5:
            raise StoreError(f"{key} in {self.url}: the md5 the server reports differs from the bytes sent")
        return PutResult(key=key, version_id=str(blob.generation) if blob.generation else None, sha256=digest)


register_store("gs", GcsStore.from_url)
