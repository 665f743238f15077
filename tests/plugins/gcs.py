"""GCS fixtures: one real fake-gcs-server emulator over HTTP per test process (objects on disk under
pytest's temporary folder), a fresh bucket per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from paynb.sandbox.gcs import RunningGcs, start_gcs_emulator
from paynb.settings import Settings

_counter = itertools.count()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGcs]:
    running = start_gcs_emulator(tmp_path_factory.mktemp("gcs-emulator"))
    yield running
    running.stop()


def new_gcs_bucket(server: RunningGcs, *, hold: bool = False, retention_s: int | None = None) -> str:
    """Create a fresh bucket; ``hold`` makes new objects carry an event-based hold by default."""
    name = f"paynb-test-{os.getpid()}-{next(_counter)}"
    bucket = server.client().bucket(name)
    if hold:
        bucket.default_event_based_hold = True
    if retention_s:
        bucket.retention_period = retention_s
    server.client().create_bucket(bucket)
    return name


@pytest.fixture
def gcs_env(gcs_server: RunningGcs, tmp_path: Path) -> dict[str, str]:
    """Environment for a paynb process that reaches the test emulator (data dir under tmp_path)."""
    return {**gcs_server.env(), "PAYNB_DATA_DIR": str(tmp_path / "paynb-data")}


@pytest.fixture
def gcs_settings(gcs_env: dict[str, str]) -> Settings:
    return Settings.load(env=gcs_env, dotenv=None)


@pytest.fixture
def gcs_store_url(gcs_server: RunningGcs) -> str:
    """``gs://<fresh bucket>/archive``; reach it with ``gcs_settings`` / ``gcs_env``."""
    return f"gs://{new_gcs_bucket(gcs_server)}/archive"


@pytest.fixture
def gcs_held_store_url(gcs_server: RunningGcs) -> str:
    """Like ``gcs_store_url`` but every new object carries an event-based hold (a write-once archive)."""
    return f"gs://{new_gcs_bucket(gcs_server, hold=True)}/archive"
