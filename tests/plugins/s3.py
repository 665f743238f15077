"""S3 fixtures: one real moto S3 server over HTTP per test process, a fresh bucket per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from paynb.sandbox.s3 import RunningS3, ensure_bucket, start_s3_server
from paynb.settings import Settings

_counter = itertools.count()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[RunningS3]:
    running = start_s3_server()
    yield running
    running.stop()


def _new_bucket(server: RunningS3, *, object_lock: bool = False) -> str:
    name = f"paynb-test-{os.getpid()}-{next(_counter)}"
    ensure_bucket(server.client(), name, versioning=True, object_lock=object_lock)
    return name


@pytest.fixture
def s3_env(s3_server: RunningS3, tmp_path: Path) -> dict[str, str]:
    """Environment for a paynb process that archives to the test server (data dir under tmp_path)."""
    return {**s3_server.env(), "PAYNB_DATA_DIR": str(tmp_path / "paynb-data")}


@pytest.fixture
def s3_settings(s3_env: dict[str, str]) -> Settings:
    return Settings.load(env=s3_env, dotenv=None)


@pytest.fixture
def s3_store_url(s3_server: RunningS3) -> str:
    """``s3://<fresh versioned bucket>/archive``; reach it with ``s3_settings`` / ``s3_env``."""
    return f"s3://{_new_bucket(s3_server)}/archive"


@pytest.fixture
def s3_locked_store_url(s3_server: RunningS3) -> str:
    """Like ``s3_store_url`` but the bucket was created with Object Lock (which implies versioning)."""
    return f"s3://{_new_bucket(s3_server, object_lock=True)}/archive"
