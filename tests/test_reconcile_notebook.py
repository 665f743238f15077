"""The scheduled reconciliation notebook under `paynb run`: archived, and a second run after a fix reports
exactly what is new and what is resolved, read back from the archive."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.jobs.runner import run_notebook
from paynb.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "jobs" / "reconcile_daily.ipynb"
WINDOW = {"date_from": "2000-01-01", "date_to": "2100-01-01"}

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def _write(url: str, sql: str, **params) -> None:
    eng = sa.create_engine(url, poolclass=NullPool)
    with eng.begin() as c:
        assert c.execute(sa.text(sql), params).rowcount == 1
    eng.dispose()


def test_two_runs_with_a_fix_between_report_new_and_resolved(warehouse, tmp_path, monkeypatch) -> None:
    env = {
        **warehouse.env_vars(),
        "PAYNB_DATA_DIR": str(tmp_path / "data"),
        "PAYNB_ARCHIVE_URL": f"file://{tmp_path / 'archive'}",
        "PAYNB_HMAC_KEY": "test-hmac-key-5c2a",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = Settings.load(env=env, dotenv=None)

    first = run_notebook(NOTEBOOK, WINDOW, settings=settings, timeout_s=300)
    assert first.ok, first.message
    assert first.archive_state == "archived"
    reported = first.record["reported"]
    refunded = warehouse.injected["recon_bcol_refunded_not_marked"]["numbers"][0]
    assert f"bcol_refunded_not_marked|{refunded}" in reported["reconcile_findings"]
    assert reported["reconcile_complete"] is True
    assert (
        reported["reconcile_new"] == len(reported["reconcile_findings"])
        and reported["reconcile_resolved"] == 0
    )

    # between the runs: sbc-pay's BCOL_REFUND_CONFIRMATION job marks the refunded invoice (the fix this class
    # calls for), and BCOL loses the charge row of another invoice (a new mismatch)
    invoice_id = warehouse.injected["recon_bcol_refunded_not_marked"]["invoices"][0]
    _write(
        warehouse.pay_url,
        "UPDATE invoices SET invoice_status_code = 'REFUNDED', refund_date = now() WHERE id = :i",
        i=invoice_id,
    )
    eng = sa.create_engine(warehouse.pay_url, poolclass=NullPool)
    with eng.connect() as c:
        other = c.execute(
            sa.text(
                "SELECT r.invoice_number FROM invoices i JOIN invoice_references r ON r.invoice_id = i.id "
                "WHERE i.payment_method_code = 'DRAWDOWN' AND i.invoice_status_code = 'PAID' "
                "ORDER BY i.id DESC LIMIT 1"
            )
        ).scalar_one()
    eng.dispose()
    _write(warehouse.dw_url, "DELETE FROM colin.bconline_billing_record WHERE key = :k AND qty = 1", k=other)

    second = run_notebook(NOTEBOOK, WINDOW, settings=settings, timeout_s=300)
    assert second.ok, second.message
    again = second.record["reported"]
    assert again["reconcile_new"] == 1 and again["reconcile_resolved"] == 1
    assert f"bcol_key_missing|{other}" in again["reconcile_findings"]
    assert f"bcol_refunded_not_marked|{refunded}" not in again["reconcile_findings"]
    text = "\n".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for cell in second.notebook.cells
        for o in cell.get("outputs", [])
    )
    assert f"previous run: {first.run_id}" in text
    assert f"bcol_key_missing|{other}" in text and f"bcol_refunded_not_marked|{refunded}" in text


def test_another_job_name_does_not_see_the_first_jobs_run(warehouse, tmp_path, monkeypatch) -> None:
    env = {
        **warehouse.env_vars(),
        "PAYNB_DATA_DIR": str(tmp_path / "data"),
        "PAYNB_ARCHIVE_URL": f"file://{tmp_path / 'archive'}",
        "PAYNB_HMAC_KEY": "test-hmac-key-5c2a",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = Settings.load(env=env, dotenv=None)
    assert run_notebook(NOTEBOOK, {**WINDOW, "checks": "bcol"}, settings=settings, timeout_s=300).ok
    other = run_notebook(
        NOTEBOOK, {**WINDOW, "checks": "bcol", "job": "bcol_only"}, settings=settings, timeout_s=300
    )
    assert other.ok and other.record["reported"]["reconcile_resolved"] == 0
    assert other.record["reported"]["reconcile_new"] == len(other.record["reported"]["reconcile_findings"])
