"""The sandbox S3 server: moto's S3 over real HTTP on 127.0.0.1, its objects kept on disk with
``--data-dir`` (:mod:`paynb.sandbox.s3_disk`).

moto accepts any access key and does not check signatures, so the keys handed out here only have to
look real to the client. Three quirks (measured, docs/jobs.md#object-stores-in-tests): a PUT into an Object Lock bucket
needs ``x-amz-checksum-sha256`` (``paynb.store.s3`` always sends it), moto does not verify that checksum
(paynb checks sha256 on read itself), and Object Lock must be configured before the first upload.

Example (foreground, as ``paynb sandbox up`` runs it)::

    python -m paynb.sandbox.s3 --port 9000 --data-dir .sandbox/s3
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paynb.errors import SandboxError

if TYPE_CHECKING:
    from minio import Minio

ACCESS_KEY = "paynb-sandbox"


@dataclass
class RunningS3:
    """A started server. ``endpoint`` is ``host:port`` (plain HTTP)."""

    host: str
    port: int
    access_key: str
    secret_key: str
    _server: Any = field(repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def env(self) -> dict[str, str]:
        """The settings a paynb process needs to reach this server."""
        return {
            "PAYNB_S3_ENDPOINT": self.endpoint,
            "PAYNB_S3_ACCESS_KEY": self.access_key,
            "PAYNB_S3_SECRET_KEY": self.secret_key,
            "PAYNB_S3_SECURE": "false",
            "PAYNB_S3_REGION": "us-east-1",
        }

    def client(self) -> Minio:
        from minio import Minio

        from paynb.store.s3 import http_pool

        keys = {"access_key": self.access_key, "secret_key": self.secret_key}
        return Minio(self.endpoint, **keys, secure=False, region="us-east-1", http_client=http_pool())

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _quiet_logs() -> None:
    # werkzeug logs every request at INFO; moto is chatty on import
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _S3Server:
    """moto's S3 application on werkzeug. The socket is bound here, in the caller's thread, so a port
    in use is an error at once (moto's ThreadedMotoServer binds in its thread, which then dies while
    the caller waits for it forever); requests are served on a daemon thread."""

    def __init__(self, host: str, port: int, data_dir: str | None = None) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app: Any = DomainDispatcherApplication(create_backend_app)
        if data_dir:
            from paynb.sandbox.s3_disk import DiskMirror, restore

            restore(data_dir)  # before the socket opens: no request sees a half-loaded store
            app = DiskMirror(app, data_dir)
        self._httpd = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="paynb-s3-sandbox", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def start_s3_server(
    host: str = "127.0.0.1", port: int = 0, *, secret_key: str | None = None, data_dir: str | None = None
) -> RunningS3:
    """Start moto's S3 in a background thread of this process; ``port=0`` picks a free port. With
    ``data_dir`` its buckets and objects are kept on disk there (:mod:`paynb.sandbox.s3_disk`) and loaded
    back at the next start."""
    _quiet_logs()
    try:
        server = _S3Server(host, port, data_dir)
    except ImportError as exc:  # pragma: no cover - moto[server] is a declared dependency
        raise SandboxError("the S3 sandbox needs moto[server]: pip install 'moto[server]'") from exc
    except (OSError, SystemExit):  # werkzeug reports a failed bind on stderr, then exits
        raise SandboxError(
            f"the S3 sandbox could not listen on {host}:{port}", hint="pick another port, or 0 for a free one"
        ) from None
    bound_host, bound_port = server.address
    return RunningS3(
        host=bound_host,
        port=bound_port,
        access_key=ACCESS_KEY,
        secret_key=secret_key or secrets.token_urlsafe(24),
        _server=server,
    )


def ensure_bucket(client: Minio, name: str, versioning: bool = True, object_lock: bool = False) -> None:
    """Create ``name`` if missing. Object Lock can only be chosen at creation (and implies versioning)."""
    from minio.commonconfig import ENABLED
    from minio.versioningconfig import VersioningConfig

    if not client.bucket_exists(name):
        client.make_bucket(name, object_lock=object_lock)
    if versioning and not object_lock:
        if client.get_bucket_versioning(name).status != ENABLED:
            client.set_bucket_versioning(name, VersioningConfig(ENABLED))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paynb.sandbox.s3",
        description="Run the sandbox S3 server (moto) in the foreground until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--bucket", action="append", default=[], help="create this versioned bucket (repeatable)"
    )
    parser.add_argument("--data-dir", help="keep buckets and objects on disk here (survives a restart)")
    args = parser.parse_args(argv)
    try:
        running = start_s3_server(args.host, args.port, data_dir=args.data_dir)
    except SandboxError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.bucket:
        client = running.client()
        for name in args.bucket:
            ensure_bucket(client, name, versioning=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"paynb S3 sandbox listening on {running.url}", flush=True)
    stop.wait()
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
