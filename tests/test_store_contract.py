"""One contract every store back end keeps, run over real HTTP against ``file://``, ``s3://`` (moto) and
``gs://`` (fake-gcs-server): put / get / stat, listing by prefix and after a key, never overwriting,
the sha256 check on read, and an outage giving a clear StoreError (after three tries at most: paynb.store.gcs.ATTEMPTS, paynb.store.s3.http_pool)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from paynb.errors import StoreError
from paynb.sandbox.gcs import start_gcs_emulator
from paynb.sandbox.s3 import start_s3_server
from paynb.settings import Settings
from paynb.store import GcsStore, LocalStore, S3Store, Store, open_store

BACKENDS = ["file", "s3", "gs"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "file":
        return open_store(f"file://{tmp_path / 'store'}")
    if request.param == "s3":
        return open_store(request.getfixturevalue("s3_store_url"), request.getfixturevalue("s3_settings"))
    return open_store(request.getfixturevalue("gcs_store_url"), request.getfixturevalue("gcs_settings"))


def _tamper(store: Store, key: str, data: bytes, request: pytest.FixtureRequest) -> None:
    """Rewrite an object behind paynb's back, keeping the sha256 recorded for the old bytes."""
    old = store.stat(key)
    assert old is not None and old.sha256
    if isinstance(store, LocalStore):
        (store.root / key).write_bytes(data)
    elif isinstance(store, S3Store):
        request.getfixturevalue("s3_server").client().put_object(
            store.bucket, store._key(key), io.BytesIO(data), len(data), metadata={"sha256": old.sha256}
        )
    else:
        assert isinstance(store, GcsStore)
        blob = request.getfixturevalue("gcs_server").client().bucket(store.bucket).blob(store._key(key))
        blob.metadata = {"sha256": old.sha256}
        blob.upload_from_string(data)


def test_put_get_stat(store: Store) -> None:
    data = b"FEEDBACK line\n"
    result = store.put("cgi_feedback/F1.TXT", data, metadata={"run-id": "r1"}, content_type="text/plain")
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get("cgi_feedback/F1.TXT") == data
    info = store.stat("cgi_feedback/F1.TXT")
    assert info is not None
    assert (info.key, info.size, info.sha256, info.content_type) == (
        "cgi_feedback/F1.TXT",
        len(data),
        result.sha256,
        "text/plain",
    )
    assert info.metadata["run-id"] == "r1"
    assert store.stat("cgi_feedback/nope.TXT") is None
    with pytest.raises(StoreError):
        store.get("cgi_feedback/nope.TXT")
    assert store.url_for("cgi_feedback/F1.TXT").endswith("/cgi_feedback/F1.TXT")


def test_list_by_prefix_and_after_a_key(store: Store) -> None:
    keys = [f"cgi_feedback/FEEDBACK.2026010{i}" for i in range(1, 6)] + ["cgi_processed/INBOX.1", "ar/x.csv"]
    for key in keys:
        store.put(key, key.encode())
    assert [o.key for o in store.list("cgi_feedback/")] == keys[:5]
    after = list(store.list("cgi_feedback/", start_after="cgi_feedback/FEEDBACK.20260103"))
    assert [o.key for o in after] == keys[3:5]
    assert list(store.list("cgi_feedback/", start_after="cgi_feedback/FEEDBACK.20260105")) == []
    # a start key before the prefix lists the whole prefix
    assert [o.key for o in store.list("cgi_feedback/", start_after="ar/x.csv")] == keys[:5]
    shallow = [(o.key, o.is_prefix) for o in store.list("", recursive=False)]
    assert shallow == [("ar/", True), ("cgi_feedback/", True), ("cgi_processed/", True)]
    # a prefix that ends inside a name (a family), one inside a missing folder, one no key can start with
    family = [
        o.key for o in store.list("cgi_feedback/FEEDBACK", start_after="cgi_feedback/FEEDBACK.20260104")
    ]
    assert family == keys[4:5]
    assert list(store.list("cgi_feedback/none/")) == [] and list(store.list("nowhere/x")) == []
    assert list(store.list("cgi_feedback//x")) == []


def test_never_overwrites(store: Store) -> None:
    store.put("runs/r1/record.json", b"one")
    with pytest.raises(StoreError, match="already exists"):
        store.put("runs/r1/record.json", b"two")
    assert store.get("runs/r1/record.json") == b"one"


def test_sha256_checked_on_read(store: Store, request: pytest.FixtureRequest) -> None:
    store.put("runs/r1/notebook.ipynb", b"evidence")
    _tamper(store, "runs/r1/notebook.ipynb", b"edited!!", request)
    with pytest.raises(StoreError, match="does not match the sha256"):
        store.get("runs/r1/notebook.ipynb")
    assert store.get("runs/r1/notebook.ipynb", verify=False) == b"edited!!"


@pytest.mark.parametrize("backend", BACKENDS)
def test_outage_is_a_clear_store_error_quickly(backend: str, tmp_path: Path) -> None:
    if backend == "file":
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        store = open_store(f"file://{blocker}/store")
        hint = "cannot"
    elif backend == "s3":
        dead = start_s3_server()
        settings = Settings.load(env=dead.env(), dotenv=None)
        dead.stop()
        store = open_store("s3://bucket/archive", settings)
        hint = "PAYNB_S3_ENDPOINT"
    else:
        dead = start_gcs_emulator(tmp_path / "gcs")
        settings = Settings.load(env=dead.env(), dotenv=None)
        dead.stop()
        store = open_store("gs://bucket/archive", settings)
        hint = "STORAGE_EMULATOR_HOST"
    with pytest.raises(StoreError) as info:
        store.put("runs/r1/record.json", b"{}")
    assert hint in str(info.value)
    if backend != "file":
        assert "unreachable" in str(info.value)
        with pytest.raises(StoreError, match="unreachable"):
            list(store.list("runs/"))
