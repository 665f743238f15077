"""The gs:// back end beyond the shared contract: bad input (no bucket, unknown bucket, missing or
unreadable credentials, the emulator down or failing) gives one clear StoreError naming the setting, with
a bounded number of tries; holds and the doctor's write-once check; generations as version ids."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from paynb.errors import StoreError
from paynb.jobs.patterns import iter_findings, name_looks_secret
from paynb.ops.doctor import check_archive, check_store
from paynb.settings import Settings
from paynb.store import GcsStore, open_store, pay_bucket
from paynb.store.gcs import ATTEMPTS

FAKE_KEY_ID = "0123456789abcdef0123456789abcdef01234567"


def test_a_gs_url_without_a_bucket_names_the_setting() -> None:
    settings = Settings.load(
        env={"PAYNB_BUCKET_URL": "gs://", "STORAGE_EMULATOR_HOST": "127.0.0.1:9"}, dotenv=None
    )
    with pytest.raises(StoreError, match=r"PAYNB_BUCKET_URL: 'gs://' names no bucket"):
        pay_bucket(settings)
    with pytest.raises(StoreError, match="names no bucket"):
        open_store("gs:///runs", settings)
    with pytest.raises(StoreError, match="no credentials"):
        open_store("gs://user:pw@bucket/x", settings)


def test_an_unknown_bucket_is_one_clear_error(gcs_settings: Settings) -> None:
    store = open_store("gs://no-such-bucket-here/x", gcs_settings)
    with pytest.raises(StoreError) as info:
        list(store.list("cgi_feedback/"))
    text = str(info.value)
    assert "bucket no-such-bucket-here does not exist" in text and "PAYNB_BUCKET_URL" in text
    with pytest.raises(StoreError, match="does not exist"):
        store.put("a.txt", b"x")
    settings = Settings.load(
        env={**_env(gcs_settings), "PAYNB_BUCKET_URL": "gs://no-such-bucket-here"}, dotenv=None
    )
    (check,) = check_store(settings)
    assert check.status == "fail" and "gs://no-such-bucket-here" in check.detail


def _env(settings: Settings) -> dict[str, str]:
    return {"STORAGE_EMULATOR_HOST": settings.gcs_emulator_host, "PAYNB_GCS_PROJECT": settings.gcs_project}


@pytest.fixture
def no_adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Application Default Credentials anywhere this process could find them."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_missing_credentials_name_the_setting(no_adc: None) -> None:
    with pytest.raises(StoreError) as info:
        open_store("gs://ftp-poller-prod", Settings.load(env={}, dotenv=None))
    assert "credentials are missing" in str(info.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(info.value)


def test_unreadable_credentials_name_the_setting_and_never_the_key(no_adc: None, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(StoreError, match="credentials are unreadable.*GOOGLE_APPLICATION_CREDENTIALS"):
        open_store("gs://b", Settings.load(env={"GOOGLE_APPLICATION_CREDENTIALS": str(missing)}, dotenv=None))
    broken = tmp_path / "key.json"
    broken.write_text(
        '{"type": "service_account", "private_key_id": "'
        + FAKE_KEY_ID
        + '", "private_key": "not-a-key-s3cr3t"}'
    )
    with pytest.raises(StoreError) as info:
        open_store("gs://b", Settings.load(env={"GOOGLE_APPLICATION_CREDENTIALS": str(broken)}, dotenv=None))
    text = str(info.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in text
    assert "s3cr3t" not in text and FAKE_KEY_ID not in text


def test_credentials_are_refused_as_notebook_parameters() -> None:
    assert name_looks_secret("google_application_credentials")
    assert name_looks_secret("gcs_key_file")
    key = '{"type": "service_account", "private_key_id": "' + FAKE_KEY_ID + '"}'
    assert "Google service-account key" in list(iter_findings(key))


class _Failing(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_emulator() -> Iterator[str]:
    _Failing.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_failing_emulator_gets_a_bounded_number_of_tries(failing_emulator: str) -> None:
    settings = Settings.load(env={"STORAGE_EMULATOR_HOST": failing_emulator}, dotenv=None)
    store = open_store("gs://bucket/x", settings)
    with pytest.raises(StoreError) as info:
        list(store.list("cgi_feedback/"))
    assert "HTTP 503" in str(info.value) and "STORAGE_EMULATOR_HOST" in str(info.value)
    # three tries, as the S3 back end (the client may look at the bucket in between): no storm
    assert ATTEMPTS <= _Failing.hits <= 2 * ATTEMPTS


def test_the_emulator_down_names_the_setting(gcs_server, tmp_path: Path) -> None:
    from paynb.sandbox.gcs import start_gcs_emulator

    dead = start_gcs_emulator(tmp_path / "dead")
    settings = Settings.load(env={**dead.env(), "PAYNB_BUCKET_URL": "gs://pay"}, dotenv=None)
    dead.stop()
    with pytest.raises(StoreError) as info:
        pay_bucket(settings).stat("ar/x.csv")
    assert "unreachable" in str(info.value) and "STORAGE_EMULATOR_HOST" in str(info.value)
    (check,) = check_store(settings)
    assert check.status == "fail" and "unreachable" in check.detail


def test_held_archive_is_write_once_and_the_doctor_says_so(
    gcs_settings: Settings, gcs_store_url: str, gcs_held_store_url: str
) -> None:
    env = _env(gcs_settings)
    # (asked before any write: fake-gcs-server forgets a bucket's default hold once an object is written)
    (ok,) = check_archive(Settings.load(env={**env, "PAYNB_ARCHIVE_URL": gcs_held_store_url}, dotenv=None))
    assert ok.status == "ok" and "is write-once" in ok.detail and "hold" in ok.detail
    (warn,) = check_archive(Settings.load(env={**env, "PAYNB_ARCHIVE_URL": gcs_store_url}, dotenv=None))
    assert warn.status == "warn" and "NOT write-once" in warn.detail
    assert check_archive(Settings.load(env={"PAYNB_ARCHIVE_URL": "file:///tmp/x"}, dotenv=None)) == []
    held = open_store(gcs_held_store_url, gcs_settings)
    assert isinstance(held, GcsStore) and held.policy.write_once
    # paynb asks for the hold on every object it writes there; GCS enforces it (the emulator does not
    # keep holds, so the hold on the object itself is not visible here)
    assert held.put("runs/r1/record.json", b"{}").version_id


def test_generations_are_version_ids(gcs_settings: Settings, gcs_store_url: str) -> None:
    store = open_store(gcs_store_url, gcs_settings)
    first = store.put("a/b.txt", b"one")
    second = store.put("a/b.txt", b"two", overwrite=True)
    assert first.version_id and second.version_id and first.version_id != second.version_id
    assert store.get("a/b.txt") == b"two"
    info = store.stat("a/b.txt", version_id=second.version_id)
    assert info is not None and info.version_id == second.version_id
    with pytest.raises(StoreError, match="not a GCS generation"):
        store.stat("a/b.txt", version_id="v1")
