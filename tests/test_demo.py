"""`paynb demo`, the job `make demo` runs, end to end in its own process: sandbox up, doctor, the audited
stale-invoice run archived to the sandbox's GCS archive, and the audit check of that archive, which still
passes after `sandbox down` / `up` (the GCS emulator keeps its objects on disk), and the legacy S3 store
comes back from its folder unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paynb.sandbox.manager import Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

PAYNB = [sys.executable, "-c", "import sys; from paynb.cli import main; sys.exit(main())"]


def test_demo_runs_the_main_job_on_the_sandbox(tmp_path: Path) -> None:
    box = tmp_path / "box"
    # a user's shell: no paynb settings; the run's ledger and spool land in the working folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")}
    try:
        done = subprocess.run(
            [*PAYNB, "demo", "--dir", str(box)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        out = done.stdout
        assert "status:   succeeded" in out
        assert "archive:  gs://paynb-archive/" in out and "[archived]" in out
        audit = next(line for line in out.splitlines() if line.startswith("audit:"))
        assert " ok" in audit
        assert "Stale invoices by payment method" in out
        settings = Sandbox(box).read_env()  # `export NAME=value` lines (a shell's `source` exports them)
        secrets = [
            v for k, v in settings.items() if k.endswith(("_SECRET", "_SECRET_KEY", "_AUTH", "_HMAC_KEY"))
        ]
        assert len(secrets) >= 4
        assert not [v for v in secrets if v in out or v in done.stderr]  # no secret on the terminal

        run_id = next(line for line in out.splitlines() if line.startswith("run id:")).split()[-1]
        legacy_before = _legacy_objects(Sandbox(box).read_env())
        assert legacy_before  # the generator's pre-2025-08 files
        for step in (["sandbox", "down", "--dir", str(box)], ["sandbox", "up", "--dir", str(box)]):
            again = subprocess.run(
                [*PAYNB, *step], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
            )
            assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        sandbox_env = Sandbox(box).read_env()
        # the legacy S3 store came back from DIR/s3: same objects, same dates (an upload would be dated now)
        assert _legacy_objects(sandbox_env) == legacy_before
        verified = subprocess.run(
            [*PAYNB, "audit", "verify", run_id, "--json"],
            cwd=tmp_path,
            env={**env, **sandbox_env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
        checked = json.loads(verified.stdout)  # the run itself and the ledger's chain
        assert {r["state"] for r in checked} == {"ok"} and run_id in {r["id"] for r in checked}
    finally:
        subprocess.run(
            [*PAYNB, "sandbox", "down", "--dir", str(box), "--purge"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=120,
        )
    assert not box.exists()


def _legacy_objects(settings: dict[str, str]) -> dict[tuple[str, str], tuple[str, object]]:
    """(bucket, key) -> (etag, last modified) of every object in the sandbox's legacy S3 buckets."""
    from minio import Minio

    from paynb.sandbox.manager import LEGACY_BUCKETS

    client = Minio(
        settings["PAYNB_S3_ENDPOINT"],
        access_key=settings["PAYNB_S3_ACCESS_KEY"],
        secret_key=settings["PAYNB_S3_SECRET_KEY"],
        secure=False,
        region="us-east-1",
    )
    return {
        (bucket, o.object_name): (o.etag, o.last_modified)
        for bucket in LEGACY_BUCKETS
        for o in client.list_objects(bucket, recursive=True)
    }
