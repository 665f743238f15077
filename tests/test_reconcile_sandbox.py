"""`paynb sandbox up` builds the warehouse too: PAYNB_DW_URL in sandbox.env, the recon_* scenarios listed,
and the CFS sandbox server agrees with the warehouse (both show the injected CAS mismatches)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from paynb.cli import main
from paynb.sandbox.manager import Sandbox

pytestmark = pytest.mark.slow


def test_sandbox_up_has_a_warehouse_that_the_reconciliations_read(tmp_path, monkeypatch, capsys) -> None:
    box = Sandbox(tmp_path / "box")
    try:
        env = box.up(scale="small", seed=7, echo=lambda m: None)
        assert "paynb_dw_reader:" in env["PAYNB_DW_URL"] and "PAYNB_DW_URL=" in box.env_path.read_text()
        # the warehouse reader logs in with its password (no trust line); without it, it is refused
        dw_password = (box.secrets_dir / "dw_reader_password").read_text().strip()
        assert f":{dw_password}@" in env["PAYNB_DW_URL"]
        given = make_url(env["PAYNB_DW_URL"])
        no_password = sa.engine.URL.create(
            given.drivername,
            username=given.username,
            host=given.host,
            port=given.port,
            database=given.database,
        )
        with pytest.raises(sa.exc.OperationalError):
            sa.create_engine(no_password, poolclass=NullPool).connect().close()
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert main(["sandbox", "scenarios", "--json"]) == 0
        listed = capsys.readouterr().out
        assert "recon_bcol_refunded_not_marked" in listed and "recon_cm_without_credit" in listed

        assert main(["reconcile", "bcol", "--json"]) == 0
        bcol = json.loads(capsys.readouterr().out)
        assert all(n == 1 for n in bcol["counts"].values())

        args = ["reconcile", "cfs", "--from", "2000-01-01", "--to", "2100-01-01", "--json"]
        assert main([*args, "--source", "warehouse"]) == 0
        warehouse = json.loads(capsys.readouterr().out)
        assert main([*args, "--source", "cfs-api", "--sample", "100000"]) == 0
        api = json.loads(capsys.readouterr().out)
        seen = {(f["class"], f["key"]) for f in api["findings"]}
        assert seen == {
            (f["class"], f["key"]) for f in warehouse["findings"] if f["class"] in api["classes_checked"]
        }
        assert {c for c, _ in seen} == set(api["classes_checked"])
    finally:
        box.down(purge=True)
