"""The routing slip void notebook runs headless under `paynb run`: a dry run shows the checklist and the plan
and changes nothing; a confirmed run with `reverse_receipts` voids the slip, re-associates its invoices and
lands in the ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.jobs import run_notebook
from paynb.sandbox.scenarios import scenario_details
from tests.notebook_runner import text_of

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "datafix" / "routing_slip_void.ipynb"
pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def _slip(db_url: str) -> tuple[str, list[int]]:
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            number = scenario_details(conn, "routing_slip_void_ready")["number"]
            rows = conn.execute(
                sa.text("SELECT id FROM invoices WHERE routing_slip = :n ORDER BY id"), {"n": number}
            )
            return number, [r[0] for r in rows]
    finally:
        eng.dispose()


def _state(db_url: str, number: str) -> tuple[str, int]:
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            status = conn.execute(
                sa.text("SELECT status FROM routing_slips WHERE number = :n"), {"n": number}
            )
            linked = conn.execute(
                sa.text("SELECT count(*) FROM invoices WHERE routing_slip = :n"), {"n": number}
            )
            return str(status.scalar_one()), int(linked.scalar_one())
    finally:
        eng.dispose()


def test_dry_run_then_confirmed_void(sandbox_env, sandbox_db_url, monkeypatch: pytest.MonkeyPatch) -> None:
    number, invoices = _slip(sandbox_db_url)
    before = _state(sandbox_db_url, number)
    params = {"number": number, "reason": "created in error", "ticket": "OPS-77", "reverse_receipts": True}

    dry = run_notebook(NOTEBOOK, params)
    assert dry.status == "succeeded", dry.record.get("error")
    assert _state(sandbox_db_url, number) == before  # a dry run writes nothing
    found = re.findall(r"\b[0-9a-f]{64}\b", text_of(dry.notebook))
    sha = dry.record.get("plan_sha256") or (found[0] if found else "")
    assert len(sha) == 64, "the dry run shows the plan's sha256"

    monkeypatch.setenv("PAYNB_OPERATOR", "staff-a")
    monkeypatch.setenv("PAYNB_RS_VOID_OPERATORS", "staff-a")
    applied = run_notebook(NOTEBOOK, {**params, "dry_run": False, "confirm": sha})
    assert applied.status == "succeeded", applied.record.get("error")
    assert _state(sandbox_db_url, number) == ("VOID", len(invoices))  # voided, invoices associated again
    assert applied.record.get("rows_affected", 0) > 0  # from the ledger's apply, not the notebook's say-so
