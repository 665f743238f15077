"""The sandbox's legacy S3 store keeps its objects on disk: what was written before a restart of the server
process (as `sandbox down` / `up` does it) is there after, bytes, metadata and bucket settings alike, and
deletes stay deleted. Each server is a real `python -m paynb.sandbox.s3` process over HTTP."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from minio import Minio
from minio.commonconfig import ENABLED
from minio.deleteobjects import DeleteObject
from minio.versioningconfig import VersioningConfig

from paynb.sandbox.s3 import ACCESS_KEY

pytestmark = pytest.mark.servers


@contextmanager
def s3_process(data_dir: Path) -> Iterator[Minio]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "paynb.sandbox.s3", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "listening on http://" in line, line
        endpoint = line.rsplit("http://", 1)[1].strip()
        yield Minio(endpoint, access_key=ACCESS_KEY, secret_key="any", secure=False, region="us-east-1")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _put(client: Minio, bucket: str, key: str, data: bytes, **kw) -> None:
    client.put_object(bucket, key, io.BytesIO(data), len(data), **kw)


def _read(client: Minio, bucket: str, key: str) -> bytes:
    resp = client.get_object(bucket, key)
    try:
        return resp.read()
    finally:
        resp.close()
        resp.release_conn()


def test_objects_survive_a_restart_of_the_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "s3"
    with s3_process(data_dir) as client:
        client.make_bucket("cgi-ejv")
        client.make_bucket("versioned")
        client.set_bucket_versioning("versioned", VersioningConfig(ENABLED))
        _put(
            client,
            "cgi-ejv",
            "FEEDBACK.20240101",
            b"first",
            metadata={"sha256": "abc"},
            content_type="text/plain",
        )
        _put(client, "cgi-ejv", "a", b"old a")
        _put(client, "cgi-ejv", "a", b"new a")  # an overwrite keeps the newest bytes
        _put(client, "cgi-ejv", "a/b", b"under a")  # "a" and "a/b" are both keys
        _put(client, "cgi-ejv", "dir/été.txt", b"accent")
        _put(client, "cgi-ejv", "gone", b"x")
        client.remove_object("cgi-ejv", "gone")
        _put(client, "cgi-ejv", "long/" + "n" * 600, b"a key longer than a file name may be")
        for key in ("x1", "x2"):
            _put(client, "cgi-ejv", key, key.encode())
        errors = list(client.remove_objects("cgi-ejv", [DeleteObject("x1")]))  # one POST ?delete
        assert errors == []
        _put(client, "versioned", "k", b"v")
        dated = client.stat_object("cgi-ejv", "FEEDBACK.20240101").last_modified

    saved = json.loads((data_dir / "cgi-ejv" / "bucket.json").read_text())
    assert saved["schema_version"] == 1 and saved["object_lock"] is False

    with s3_process(data_dir) as client:
        keys = {o.object_name for o in client.list_objects("cgi-ejv", recursive=True)}
        assert keys == {"FEEDBACK.20240101", "a", "a/b", "dir/été.txt", "x2", "long/" + "n" * 600}
        assert _read(client, "cgi-ejv", "a") == b"new a" and _read(client, "cgi-ejv", "a/b") == b"under a"
        assert _read(client, "cgi-ejv", "dir/été.txt") == b"accent"
        # the multi-object delete (a bucket-level request) came after it and left it alone
        assert _read(client, "cgi-ejv", "long/" + "n" * 600) == b"a key longer than a file name may be"
        stat = client.stat_object("cgi-ejv", "FEEDBACK.20240101")
        assert stat.metadata.get("x-amz-meta-sha256") == "abc" and stat.content_type == "text/plain"
        assert stat.last_modified == dated
        assert client.get_bucket_versioning("versioned").status == ENABLED
        _put(client, "cgi-ejv", "after", b"written after the restart")

    with s3_process(data_dir) as client:
        assert _read(client, "cgi-ejv", "after") == b"written after the restart"
        assert _read(client, "versioned", "k") == b"v"


def test_a_half_written_object_is_not_restored(tmp_path: Path) -> None:
    data_dir = tmp_path / "s3"
    with s3_process(data_dir) as client:
        client.make_bucket("bucket-one")
        _put(client, "bucket-one", "whole", b"1")
        _put(client, "bucket-one", "torn", b"2")
    # killed between the two files of a write: the bytes are there, the metadata (written second) is not
    (data_dir / "bucket-one" / "objects" / "torn.json").unlink()
    with s3_process(data_dir) as client:
        assert {o.object_name for o in client.list_objects("bucket-one")} == {"whole"}
