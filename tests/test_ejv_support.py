"""Shared helpers for the EJV tests: the sandbox database with its INBOX/FEEDBACK files rendered, and a
fresh pay bucket (GCS, as in production, or S3) plus its legacy S3 ``cgi-ejv`` bucket holding those files.

Each ``test_ejv_*`` module wraps them in its own small fixtures.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.sandbox.ejv_files import LEGACY_BUCKET, ejv_object_keys, seed_ejv_files
from paynb.sandbox.s3 import ensure_bucket
from paynb.settings import Settings
from paynb.store import ObjectInfo, Store, open_store, pay_bucket

_counter = itertools.count()


def seed(db_url: str) -> None:
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            seed_ejv_files(conn)
    finally:
        eng.dispose()


def store_objects(db_url: str) -> dict[str, bytes]:
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT key, content FROM paynb_sandbox.store_objects ORDER BY key")
            ).all()
    finally:
        eng.dispose()
    return {key: bytes(content) for key, content in rows}


def scenario(db_url: str, name: str, table: str) -> list[int]:
    from paynb.sandbox.scenarios import scenario_ids

    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return scenario_ids(conn, name, table)
    finally:
        eng.dispose()


def query(db_url: str, sql: str, **params: object) -> list[tuple]:
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        eng.dispose()


def execute(db_url: str, sql: str, **params: object) -> None:
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        eng.dispose()


@dataclass
class EjvSandbox:
    db_url: str
    settings: Settings
    env: dict[str, str]
    bucket: str
    legacy_bucket: str
    objects: dict[str, bytes]
    gcs: object = None  # the emulator's client when the pay bucket is on GCS

    @property
    def store(self) -> Store:
        return pay_bucket(self.settings)

    @property
    def legacy_store(self) -> Store:
        return open_store(f"s3://{self.legacy_bucket}", self.settings)

    def put(self, key: str, data: bytes) -> None:
        """Add an object the way an outside writer would (no paynb sha256 metadata)."""
        bucket, name = self.bucket, key
        if key.startswith(f"{LEGACY_BUCKET}/"):
            bucket, name = self.legacy_bucket, key.split("/", 1)[1]
        elif self.gcs is not None:
            self.gcs.bucket(bucket).blob(name).upload_from_string(data)
            return
        client = _client(self.settings)
        client.put_object(bucket, name, io.BytesIO(data), len(data))


def _client(settings: Settings):
    from paynb.store.s3 import make_client

    return make_client(settings)


def make_ejv_sandbox(
    ejv_db_url: str, s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gcs_server=None
) -> EjvSandbox:
    """A fresh bucket (and legacy bucket) holding only the sandbox's EJV files; env applied to this process.
    With ``gcs_server`` the pay bucket is on GCS (``PAYNB_BUCKET_URL``), else on S3 (``PAYNB_BUCKET``).

    Test modules wrap it in a fixture (after ``seed(sandbox_db_url)``)."""
    bucket = f"ejv-{os.getpid()}-{next(_counter)}"
    legacy = f"{bucket}-cgi-ejv"
    client = s3_server.client()
    gcs = gcs_server.client() if gcs_server is not None else None
    if gcs is None:
        ensure_bucket(client, bucket, versioning=False)
    else:
        gcs.create_bucket(bucket)
    ensure_bucket(client, legacy, versioning=False)
    every = store_objects(ejv_db_url)
    objects = {k: every[k] for k in ejv_object_keys(every)}
    for key, data in objects.items():
        target, name = (
            (legacy, key.split("/", 1)[1]) if key.startswith(f"{LEGACY_BUCKET}/") else (bucket, key)
        )
        if gcs is not None and target == bucket:
            gcs.bucket(bucket).blob(name).upload_from_string(data, content_type="text/plain")
            continue
        client.put_object(target, name, io.BytesIO(data), len(data), content_type="text/plain")
    pay = {"PAYNB_BUCKET": bucket}
    if gcs_server is not None:
        pay = {**gcs_server.env(), "PAYNB_BUCKET_URL": f"gs://{bucket}", "PAYNB_LEGACY_BUCKET_URL": "s3://"}
    env = {
        "PAYNB_ENVIRONMENT": "test",
        "PAYNB_DATABASE_URL": ejv_db_url,
        **s3_server.env(),
        **pay,
        "PAYNB_LEGACY_EJV_BUCKET": legacy,
        "PAYNB_DATA_DIR": str(tmp_path / "paynb-data"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return EjvSandbox(ejv_db_url, Settings.load(env=env, dotenv=None), env, bucket, legacy, objects, gcs)


class CountingStore(Store):
    """Wraps a store and counts ``get`` calls (to prove the index avoids reading unchanged files)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.gets: list[str] = []

    def list(
        self, prefix: str = "", recursive: bool = True, *, start_after: str | None = None
    ) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix, recursive, start_after=start_after)

    def get(self, key: str, *, version_id: str | None = None, verify: bool = True) -> bytes:
        self.gets.append(key)
        return self.inner.get(key, version_id=version_id, verify=verify)

    def stat(self, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        return self.inner.stat(key, version_id=version_id)

    def put(self, key, data, *, metadata=None, content_type=None, overwrite=False):  # type: ignore[no-untyped-def]
        return self.inner.put(key, data, metadata=metadata, content_type=content_type, overwrite=overwrite)

    def url_for(self, key: str) -> str:
        return self.inner.url_for(key)
