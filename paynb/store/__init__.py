"""Object stores chosen by URL: ``file://DIR`` (a local folder), ``s3://BUCKET/PREFIX`` (S3/MinIO) and
``gs://BUCKET/PREFIX`` (Google Cloud Storage). The pay bucket and the legacy MinIO store are opened with
:func:`pay_bucket` / :func:`legacy_bucket` (see :mod:`paynb.store.buckets`).

Example::

    from paynb.store import open_store
    store = open_store("file:///tmp/archive")
    store.put("runs/x/record.json", b"{}", content_type="application/json")
    store.get("runs/x/record.json")          # checks the sha256 recorded at write time

Register another back end with ``register_store("scheme", factory)``; ``factory(url, settings)``
returns a :class:`Store`.
"""

from __future__ import annotations

from paynb.store import gcs as _gcs  # noqa: F401  registers gs://
from paynb.store import local as _local  # noqa: F401  registers file://
from paynb.store import s3 as _s3  # noqa: F401  registers s3://
from paynb.store.base import ObjectInfo, PutResult, Store, open_store, register_store, sha256_bytes
from paynb.store.buckets import legacy_bucket, pay_bucket, pay_bucket_url
from paynb.store.gcs import GcsStore
from paynb.store.local import LocalStore
from paynb.store.s3 import S3Store

__all__ = [
    "GcsStore",
    "LocalStore",
    "ObjectInfo",
    "PutResult",
    "S3Store",
    "Store",
    "legacy_bucket",
    "open_store",
    "pay_bucket",
    "pay_bucket_url",
    "register_store",
    "sha256_bytes",
]
