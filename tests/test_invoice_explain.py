"""`paynb invoice explain` on the sandbox: every named scenario's invoices get that scenario's situation,
untouched invoices get none, and bad ids are named."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.pool import NullPool

from paynb.cli import cli
from paynb.errors import InputError
from paynb.ops.invoice import explain_invoices
from paynb.sandbox.scenarios import NAMES, scenario_details, scenario_ids

# scenario -> the situation explain must name for its invoices (None: not a trouble situation)
EXPECTED = {
    "pad_stuck_no_reference": "pad_stuck_no_reference",
    "pad_stuck_uncharged": "pad_stuck_uncharged",
    "pad_stuck_settled_csv_unprocessed": "csv_not_processed",
    "pad_stuck_cfs_missing": "cfs_invoice_missing",
    "cas_csv_with_nsf": "csv_not_processed",
    "ejv_no_feedback": "ejv_feedback_missing",
    "ejv_errored_stop_ejv": ("ejv_feedback_errored", "ejv_stop_ejv"),
    "statement_gap_daily": "statement_gap",
    "statement_gap_weekly": "statement_gap",
    "statement_gap_monthly": "statement_gap",
    "statement_duplicate": "statement_duplicate",
    "routing_slip_with_transactions": "routing_slip_with_transactions",
    "routing_slip_void_ready": "routing_slip_with_transactions",
    "routing_slip_void_blocked": "routing_slip_with_transactions",
    "routing_slip_void_with_child": "routing_slip_with_transactions",
    "pad_nsf_freeze": "nsf",
    "partner_disbursement_stuck": "partner_disbursement_stuck",
    # a candidate for a partial credit is a healthy PAID invoice: explain says there is no trouble
    "pad_partial_credit_candidate": None,
}

pytestmark = pytest.mark.slow


def test_every_scenario_is_mapped() -> None:
    assert set(EXPECTED) == set(NAMES)


def _scenario_invoices(conn: sa.Connection, name: str) -> list[int]:
    ids = scenario_ids(conn, name, "invoices")
    if ids:
        return ids[:3]
    statements = scenario_ids(conn, name, "statements")
    if statements:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT invoice_id FROM statement_invoices WHERE statement_id = ANY(:s) ORDER BY 1 LIMIT 2"
            ),
            {"s": statements},
        ).scalars()
        return list(rows)
    details = scenario_details(conn, name)
    # statement scenarios record accounts and periods: take an invoice of that account in the period
    accounts = scenario_ids(conn, name, "payment_accounts") or [
        a for a in [details.get("payment_account_id")] if a
    ]
    periods = details.get("periods") or [details]
    found: list[int] = []
    for period in periods:
        # the generator records each deleted statement's account as account_id
        account = (
            period.get("account_id")
            or period.get("payment_account_id")
            or (accounts[0] if accounts else None)
        )
        start, end = period.get("from_date"), period.get("to_date")
        if not (account and start and end):
            continue
        row = conn.execute(
            sa.text(
                "SELECT id FROM invoices WHERE payment_account_id = :a AND created_on >= CAST(:s AS date) "
                "AND created_on < CAST(:e AS date) + interval '1 day' ORDER BY id LIMIT 1"
            ),
            {"a": account, "s": start, "e": end},
        ).first()
        if row:
            found.append(row[0])
    return found[:2]


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_scenario_invoices_get_their_situation(scenario: str, sandbox_env, sandbox_db_url: str) -> None:
    engine = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with engine.connect() as conn:
        invoices = _scenario_invoices(conn, scenario)
    engine.dispose()
    if not invoices:
        pytest.skip(f"{scenario}: the small sandbox recorded no invoice for it")
    report = explain_invoices([str(i) for i in invoices])
    expected = EXPECTED[scenario]
    for e in report.explanations:
        codes = {s.code for s in e.situations}
        if expected is None:
            assert not codes, (scenario, e.invoice_id, codes)
        else:
            wanted = {expected} if isinstance(expected, str) else set(expected)
            assert codes & wanted, (scenario, e.invoice_id, codes, [s.detail for s in e.situations])
        for s in e.situations:
            assert s.next_command.startswith("paynb ")


def test_untouched_invoices_have_no_diagnosis(sandbox_env, sandbox_db_url: str) -> None:
    engine = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with engine.connect() as conn:
        touched = {
            i
            for (ids,) in conn.execute(
                sa.text("SELECT ids FROM paynb_sandbox.scenarios WHERE table_name = 'invoices'")
            )
            for i in ids or []
        }
        touched_accounts = {
            i
            for (ids,) in conn.execute(
                sa.text("SELECT ids FROM paynb_sandbox.scenarios WHERE table_name = 'payment_accounts'")
            )
            for i in ids or []
        }
        rows = conn.execute(
            sa.text(
                "SELECT id, payment_account_id FROM invoices WHERE invoice_status_code IN ('PAID', 'COMPLETED') "
                "AND payment_method_code IN ('PAD', 'EJV', 'ONLINE_BANKING', 'DIRECT_PAY') ORDER BY id"
            )
        ).all()
    engine.dispose()
    picks = [r.id for r in rows if r.id not in touched and r.payment_account_id not in touched_accounts][
        :: max(1, len(rows) // 8)
    ][:8]
    assert picks
    report = explain_invoices([str(i) for i in picks])
    for e in report.explanations:
        assert e.situations == [], (e.invoice_id, [(s.code, s.detail) for s in e.situations])


def test_unknown_ids_are_named_and_the_good_ones_explained(sandbox_env, sandbox_db_url: str) -> None:
    engine = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with engine.connect() as conn:
        good = conn.execute(sa.text("SELECT min(id) FROM invoices")).scalar_one()
    engine.dispose()
    runner = CliRunner()
    result = runner.invoke(cli, ["invoice", "explain", str(good), "999999999", "REGNOSUCH", "--json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert [i["invoice_id"] for i in doc["invoices"]] == [good]
    assert doc["unknown"] == ["999999999", "REGNOSUCH"]
    assert "not found in pay-db: 999999999, REGNOSUCH" in result.stderr

    with pytest.raises(InputError, match="no invoice matches"):
        explain_invoices(["999999999"])
    with pytest.raises(InputError, match="not an invoice id"):
        explain_invoices(["12; drop table invoices"])


def test_reg_number_resolves_and_html_is_written(sandbox_env, sandbox_db_url: str, tmp_path) -> None:
    engine = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with engine.connect() as conn:
        number, invoice_id = conn.execute(
            sa.text(
                "SELECT invoice_number, invoice_id FROM invoice_references WHERE status_code = 'COMPLETED' LIMIT 1"
            )
        ).one()
    engine.dispose()
    page = tmp_path / "explain.html"
    result = CliRunner().invoke(cli, ["invoice", "explain", number, "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert f"Invoice {invoice_id}" in result.stdout and "timeline" in result.stdout
    text = page.read_text()
    assert "<html" in text and "<script" not in text and str(invoice_id) in text
    assert oct(page.stat().st_mode & 0o777) == "0o600"


def test_timeline_orders_events_and_explains_dates(sandbox_env, sandbox_db_url: str) -> None:
    engine = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with engine.connect() as conn:
        invoice_id = conn.execute(
            sa.text("SELECT id FROM invoices WHERE payment_date IS NOT NULL ORDER BY id LIMIT 1")
        ).scalar_one()
    engine.dispose()
    e = explain_invoices([str(invoice_id)], use_cfs=False, use_files=False).explanations[0]
    times = [ev.at for ev in e.timeline]
    assert times == sorted(times)
    paid = next(ev for ev in e.timeline if ev.what == "payment_date")
    assert "not when the money moved" in paid.meaning
    assert e.timeline[0].at <= e.facts.invoice["created_on"] + timedelta(seconds=1)


@pytest.mark.notebook
def test_notebook_explains_the_parameter_invoice(sandbox_env, sandbox_db_url: str, tmp_path) -> None:
    from tests.notebook_runner import ROOT, run_headless, text_of

    engine = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with engine.connect() as conn:
        invoice_id = conn.execute(sa.text("SELECT min(id) FROM invoices")).scalar_one()
    engine.dispose()
    nb = run_headless(
        ROOT / "notebooks/triage/invoice.ipynb", tmp_path / "out.ipynb", invoice=str(invoice_id)
    )
    text = text_of(nb)
    assert f"Invoice {invoice_id}" in text
