"""The whole sandbox for one test: a fresh seeded pay-db, the files the generator produced
(``paynb_sandbox.store_objects``) in a GCS pay bucket (recent) and S3 legacy buckets (pre-2025-08), as in
production, and a CFS server loaded from that database.

``sandbox_env`` is the environment a paynb process (or a notebook kernel) needs; ``sandbox_settings``
is the same as a Settings object.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.sandbox.postgres import READER, WRITER
from paynb.settings import Settings
from tests.plugins.db import as_role

_counter = itertools.count()
SANDBOX_CFS_ID = "paynb-sandbox-test"
SANDBOX_CFS_SECRET = "sandbox-cfs-secret-5b7e19c2"
SANDBOX_FAS_ID = "paynb-sandbox-test-fas"
SANDBOX_FAS_SECRET = "sandbox-fas-secret-0c4d8e31"
SANDBOX_CONNECTOR = "sandbox-connector-9a1f"


def upload_store_objects(db_url: str, client, bucket: str, gcs_client=None) -> int:
    """Copy paynb_sandbox.store_objects into ``bucket`` (keys prefixed by a legacy bucket name go to the
    S3 bucket ``<bucket>-<legacy>``). With ``gcs_client``, ``bucket`` is a GCS bucket (the pay bucket)."""
    from paynb.sandbox.manager import LEGACY_BUCKETS
    from paynb.sandbox.s3 import ensure_bucket

    if gcs_client is None:
        ensure_bucket(client, bucket, versioning=False)
    else:
        gcs_client.create_bucket(bucket)
    for legacy in LEGACY_BUCKETS:
        ensure_bucket(client, f"{bucket}-{legacy}", versioning=False)
    eng = sa.create_engine(db_url, poolclass=NullPool)
    n = 0
    try:
        with eng.connect() as c:
            rows = c.execute(
                sa.text("SELECT key, content, content_type FROM paynb_sandbox.store_objects ORDER BY key")
            )
            for key, content, ctype in rows:
                target, obj = bucket, key
                head = key.split("/", 1)[0]
                if head in LEGACY_BUCKETS:
                    target, obj = f"{bucket}-{head}", key.split("/", 1)[1]
                data = bytes(content)
                if gcs_client is not None and target == bucket:
                    gcs_client.bucket(bucket).blob(obj).upload_from_string(
                        data, content_type=ctype or "application/octet-stream", if_generation_match=0
                    )
                    n += 1
                    continue
                client.put_object(
                    target, obj, io.BytesIO(data), len(data), content_type=ctype or "application/octet-stream"
                )
                n += 1
    finally:
        eng.dispose()
    return n


@pytest.fixture
def sandbox_bucket(sandbox_db_url: str, s3_server, gcs_server) -> str:
    """A fresh GCS pay bucket holding the sandbox's recent files (settlement CSVs, FEEDBACK/INBOX files);
    the older ones are in the S3 buckets ``<name>-payment-sftp`` / ``<name>-cgi-ejv``."""
    name = f"sbx-{os.getpid()}-{next(_counter)}"
    upload_store_objects(sandbox_db_url, s3_server.client(), name, gcs_server.client())
    return name


@pytest.fixture
def sandbox_cfs(sandbox_db_url: str) -> Iterator:
    from paynb.sandbox.cfs_server import CfsState, start_cfs_server

    server = start_cfs_server(
        CfsState.from_database(sandbox_db_url),
        credentials={SANDBOX_CFS_ID: SANDBOX_CFS_SECRET, SANDBOX_FAS_ID: SANDBOX_FAS_SECRET},
        pay_connector=SANDBOX_CONNECTOR,
    )
    yield server
    server.stop()


@pytest.fixture
def sandbox_env(
    sandbox_db_url: str,
    s3_server,
    gcs_server,
    sandbox_bucket: str,
    sandbox_cfs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Environment for paynb against the full sandbox; also applied to this process for the test."""
    env = {
        "PAYNB_ENVIRONMENT": "test",
        "PAYNB_DATABASE_URL": as_role(sandbox_db_url, READER),
        "PAYNB_DATABASE_WRITE_URL": as_role(sandbox_db_url, WRITER),
        **s3_server.env(),
        **gcs_server.env(),
        "PAYNB_BUCKET_URL": f"gs://{sandbox_bucket}",
        "PAYNB_LEGACY_BUCKET_URL": "s3://",
        # the pre-2025 MinIO buckets, named per test so tests stay independent
        "PAYNB_LEGACY_SETTLEMENT_BUCKET": f"{sandbox_bucket}-payment-sftp",
        "PAYNB_LEGACY_EJV_BUCKET": f"{sandbox_bucket}-cgi-ejv",
        "PAYNB_CFS_BASE_URL": sandbox_cfs.url,
        "PAYNB_CFS_CLIENT_ID": SANDBOX_CFS_ID,
        "PAYNB_CFS_CLIENT_SECRET": SANDBOX_CFS_SECRET,
        "PAYNB_CFS_FAS_CLIENT_ID": SANDBOX_FAS_ID,
        "PAYNB_CFS_FAS_CLIENT_SECRET": SANDBOX_FAS_SECRET,
        "PAYNB_PAY_CONNECTOR_AUTH": SANDBOX_CONNECTOR,
        "PAYNB_DATA_DIR": str(tmp_path / "paynb-data"),
        "PAYNB_HMAC_KEY": "test-hmac-key-7f3e",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def sandbox_settings(sandbox_env: dict[str, str]) -> Settings:
    return Settings.load(env=sandbox_env, dotenv=None)
