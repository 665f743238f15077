"""The object store: the same behaviour from the local folder and the real S3 server over HTTP."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from paynb.errors import StoreError
from paynb.sandbox.s3 import start_s3_server
from paynb.settings import Settings
from paynb.store import LocalStore, S3Store, Store, open_store


@pytest.fixture(params=["file", "s3", "s3-locked"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "file":
        return open_store(f"file://{tmp_path / 'archive'}")
    settings = request.getfixturevalue("s3_settings")
    fixture = "s3_store_url" if request.param == "s3" else "s3_locked_store_url"
    return open_store(request.getfixturevalue(fixture), settings)


def test_put_get_stat_round_trip(store: Store) -> None:
    data = b'{"run": 1}'
    result = store.put(
        "runs/2026/01/02/nb/r1/record.json", data, metadata={"run-id": "r1"}, content_type="application/json"
    )
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get("runs/2026/01/02/nb/r1/record.json") == data
    info = store.stat("runs/2026/01/02/nb/r1/record.json")
    assert info is not None
    assert (info.size, info.sha256, info.content_type) == (len(data), result.sha256, "application/json")
    assert info.metadata["run-id"] == "r1"
    assert store.exists("runs/2026/01/02/nb/r1/record.json")
    assert store.stat("runs/nope.json") is None
    assert not store.exists("runs/nope.json")
    assert store.url_for("runs/x").endswith("/runs/x")


def test_never_overwrites_unless_asked(store: Store) -> None:
    first = store.put("a/b.txt", b"one")
    with pytest.raises(StoreError, match="already exists"):
        store.put("a/b.txt", b"two")
    assert store.get("a/b.txt") == b"one"
    second = store.put("a/b.txt", b"two", overwrite=True)
    assert store.get("a/b.txt") == b"two"
    if isinstance(store, S3Store):  # versioned bucket: both versions stay readable
        assert first.version_id and second.version_id and first.version_id != second.version_id
        assert store.get("a/b.txt", version_id=first.version_id) == b"one"
    else:
        assert first.version_id is None


def test_list_recursive_and_by_folder(store: Store) -> None:
    for key in ("runs/2026/01/a.json", "runs/2026/02/b.json", "runs/c.json", "other/d.json"):
        store.put(key, key.encode())
    assert [o.key for o in store.list("runs/")] == [
        "runs/2026/01/a.json",
        "runs/2026/02/b.json",
        "runs/c.json",
    ]
    shallow = list(store.list("runs/", recursive=False))
    assert [(o.key, o.is_prefix) for o in shallow] == [("runs/2026/", True), ("runs/c.json", False)]
    assert len(list(store.list())) == 4


def test_bad_keys_are_refused(store: Store) -> None:
    for key in ("", "/abs", "a/../b", "a//b"):
        with pytest.raises(StoreError, match="invalid object key"):
            store.put(key, b"x")


def test_local_read_detects_changed_bytes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("x/y.txt", b"evidence")
    (tmp_path / "x" / "y.txt").write_bytes(b"edited")
    with pytest.raises(StoreError, match="does not match the sha256"):
        store.get("x/y.txt")
    assert store.get("x/y.txt", verify=False) == b"edited"
    assert [o.key for o in store.list()] == ["x/y.txt"]  # the metadata folder is not listed


def test_s3_read_detects_changed_bytes(s3_server, s3_settings: Settings, s3_store_url: str) -> None:
    store = open_store(s3_store_url, s3_settings)
    store.put("x/y.txt", b"evidence")
    # somebody rewrites the object keeping the old sha256 metadata
    assert isinstance(store, S3Store)
    s3_server.client().put_object(
        store.bucket,
        store._key("x/y.txt"),
        __import__("io").BytesIO(b"edited"),
        6,
        metadata={"sha256": hashlib.sha256(b"evidence").hexdigest()},
    )
    with pytest.raises(StoreError, match="does not match the sha256"):
        store.get("x/y.txt")


def test_s3_sends_sha256_checksum_and_knows_bucket_features(
    s3_settings: Settings, s3_store_url: str, s3_locked_store_url: str
) -> None:
    plain = open_store(s3_store_url, s3_settings)
    locked = open_store(s3_locked_store_url, s3_settings)
    assert plain.features == {"versioning": True, "object_lock": False}
    assert locked.features == {"versioning": True, "object_lock": True}
    # an Object Lock bucket refuses a PUT without a checksum; ours goes through and gets a version
    result = locked.put("k.txt", b"locked evidence")
    assert result.version_id
    digest = hashlib.sha256(b"locked evidence").digest()
    assert base64.b64encode(digest).decode()  # the header value paynb sends


def test_s3_errors_name_no_credentials(s3_settings: Settings, s3_store_url: str) -> None:
    dead = start_s3_server()
    endpoint = dead.endpoint
    dead.stop()
    settings = Settings.load(
        env={
            "PAYNB_S3_ENDPOINT": endpoint,
            "PAYNB_S3_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLE",
            "PAYNB_S3_SECRET_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
        },
        dotenv=None,
    )
    with pytest.raises(StoreError) as info:
        open_store(s3_store_url, settings).put("a.txt", b"x")
    text = str(info.value)
    assert "unreachable" in text
    assert "wJalrXUtnFEMI" not in text and "AKIAIOSFODNN7EXAMPLE" not in text
    with pytest.raises(StoreError, match="not in the URL"):
        open_store("s3://user:pass@bucket/x", s3_settings)
    with pytest.raises(StoreError, match="does not exist"):
        open_store("s3://no-such-bucket-here/x", s3_settings).put("a.txt", b"x")


def test_open_store_rejects_unknown_schemes_without_echoing_userinfo() -> None:
    with pytest.raises(StoreError) as info:
        open_store("ftp://user:hunter2@host/x")
    assert "hunter2" not in str(info.value)
    assert "file://" in str(info.value) and "s3://" in str(info.value)


def test_s3_without_endpoint_says_what_to_set() -> None:
    with pytest.raises(StoreError, match="PAYNB_S3_ENDPOINT"):
        open_store("s3://bucket/x", Settings.load(env={}, dotenv=None))


def test_local_store_concurrent_writers_of_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = LocalStore(tmp_path)

    def write(n: int) -> bool:
        try:
            store.put("race/key.txt", f"writer {n}".encode())
            return True
        except StoreError:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(write, range(16)))
    assert won.count(True) == 1
    assert store.get("race/key.txt").startswith(b"writer ")  # the sidecar matches the winner's bytes
