"""Object stores chosen by URL: ``file://DIR`` (a local folder) and ``s3://BUCKET/PREFIX`` (S3/MinIO).

Example::

    from paynb.store import open_store
    store = open_store("file:///tmp/archive")
    store.put("runs/x/record.json", b"{}", content_type="application/json")
    store.get("runs/x/record.json")          # checks the sha256 recorded at write time

Register another back end with ``register_store("scheme", factory)``; ``factory(url, settings)``
returns a :class:`Store`.
"""

from __future__ import annotations

from paynb.store import local as _local  # noqa: F401  registers file://
from paynb.store import s3 as _s3  # noqa: F401  registers s3://
from paynb.store.base import ObjectInfo, PutResult, Store, open_store, register_store, sha256_bytes
from paynb.store.local import LocalStore
from paynb.store.s3 import S3Store

__all__ = [
    "LocalStore",
    "ObjectInfo",
    "PutResult",
    "S3Store",
    "Store",
    "open_store",
    "register_store",
    "sha256_bytes",
]
