"""`paynb demo`, the job `make demo` runs, end to end in its own process: sandbox up, doctor, the audited
stale-invoice run archived to the sandbox S3, and the audit check of that archive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

PAYNB = [sys.executable, "-c", "import sys; from paynb.cli import main; sys.exit(main())"]


def test_demo_runs_the_main_job_on_the_sandbox(tmp_path: Path) -> None:
    box = tmp_path / "box"
    # a user's shell: no paynb settings; the run's ledger and spool land in the working folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")}
    try:
        done = subprocess.run([*PAYNB, "demo", "--dir", str(box)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        out = done.stdout
        assert "status:   succeeded" in out
        assert "archive:  s3://paynb-archive/" in out and "[archived]" in out
        audit = next(line for line in out.splitlines() if line.startswith("audit:"))
        assert " ok" in audit
        assert "Stale invoices by payment method" in out
        settings = dict(
            line.split("=", 1) for line in (box / "sandbox.env").read_text().splitlines() if "=" in line
        )
        secrets = [
            v for k, v in settings.items() if k.endswith(("_SECRET", "_SECRET_KEY", "_AUTH", "_HMAC_KEY"))
        ]
        assert len(secrets) >= 4
        assert not [v for v in secrets if v in out or v in done.stderr]  # no secret on the terminal
    finally:
        subprocess.run([*PAYNB, "sandbox", "down", "--dir", str(box), "--purge"], cwd=tmp_path, env=env,
                       capture_output=True, timeout=120)  # fmt: skip
    assert not box.exists()
