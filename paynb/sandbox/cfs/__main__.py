"""``python -m paynb.sandbox.cfs``: run the CFS sandbox server in the foreground (``paynb sandbox up``
starts it this way)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from paynb.sandbox.cfs.server import make_server
from paynb.sandbox.cfs.state import CfsState


# -- command line --------------------------------------------------------------------------------------------
def _read_secret(path: str | None, env_name: str, what: str, required: bool) -> str:
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip()
        except OSError as err:
            raise SystemExit(f"cannot read the {what} file {path}: {err.strerror}") from None
    else:
        value = os.environ.get(env_name, "").strip()
    if required and not value:
        raise SystemExit(f"no {what}: give --{what.replace(' ', '-')}-file or set {env_name}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m paynb.sandbox.cfs",
        description="The paynb CFS sandbox server (CAS/CFS contract of paybc-1.0.0.yaml).",
        epilog="Secrets come from files or the environment, never from arguments. Example:\n"
        "  python -m paynb.sandbox.cfs --db-url postgresql://postgres@127.0.0.1:5432/pay --port 8123 \\\n"
        "      --client-id paynb-sandbox --client-secret-file .sandbox/secrets/cfs_client_secret",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    db_help = "sandbox pay-db to load invoices, sites and credits from"
    p.add_argument("--db-url", default=os.environ.get("PAYNB_CFS_SANDBOX_DB_URL"), help=db_help)
    p.add_argument("--state-json", help="load the state from a JSON file (CfsState.from_dict) instead")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    p.add_argument("--client-id", required=True, help="PAYBC client id")
    p.add_argument(
        "--client-secret-file", help="file holding the PAYBC secret (or PAYNB_CFS_SANDBOX_CLIENT_SECRET)"
    )
    p.add_argument("--fas-client-id", help="FAS client id (optional second credential set)")
    p.add_argument("--fas-client-secret-file", help="file holding the FAS secret")
    p.add_argument("--pay-connector-file", help="file holding the expected Pay-Connector header value")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of calls answered with 500")
    p.add_argument("--burst-429", type=int, default=0, help="answer the first N calls with 429")
    p.add_argument("--token-ttl-s", type=float, default=3600.0)
    p.add_argument("--drop-rate", type=float, default=0.0, help="share of calls whose connection is cut")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    p.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    return p


def main(argv: Iterable[str] | None = None) -> int:
    args = build_parser().parse_args(None if argv is None else list(argv))
    credentials = {
        args.client_id: _read_secret(
            args.client_secret_file, "PAYNB_CFS_SANDBOX_CLIENT_SECRET", "client secret", True
        )
    }
    if args.fas_client_id:
        credentials[args.fas_client_id] = _read_secret(
            args.fas_client_secret_file, "PAYNB_CFS_SANDBOX_FAS_CLIENT_SECRET", "fas client secret", True
        )
    connector = _read_secret(
        args.pay_connector_file, "PAYNB_CFS_SANDBOX_PAY_CONNECTOR", "pay connector", False
    )
    if args.state_json:
        with open(args.state_json, encoding="utf-8") as fh:
            state = CfsState.from_dict(json.load(fh))
    elif args.db_url:
        state = CfsState.from_database(args.db_url)
    else:
        state = CfsState()
    knobs = {
        "latency_ms": args.latency_ms,
        "fault_rate": args.fault_rate,
        "burst_429": args.burst_429,
        "token_ttl_s": args.token_ttl_s,
        "drop_rate": args.drop_rate,
        "seed": args.seed,
    }
    httpd = make_server(
        state,
        args.host,
        args.port,
        credentials=credentials,
        pay_connector=connector,
        log_requests=args.log_requests,
        **knobs,
    )

    def stop(*_: Any) -> None:
        # shutdown() waits for serve_forever, so it must not run on the thread that serves
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    counts = state.summary()
    held = f"{counts['invoices']} invoices, {counts['missing_invoices']} missing, {counts['sites']} sites"
    print(f"paynb CFS sandbox listening on {httpd.base} ({held})", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
