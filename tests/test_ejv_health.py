"""``ejv_health`` finds exactly the sandbox's EJV scenario rows, each with an action, and reads nothing else."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from paynb.context import Env
from paynb.db import create_engine
from paynb.ops.ejv.health import (
    FILE_ERRORED,
    HEADER_ERRORED,
    KINDS,
    LINK_ERRORED,
    NO_FEEDBACK,
    PARTNER_STUCK,
    STALE_INVOICE,
    STOP_EJV,
    ejv_health,
)
from paynb.timez import business_days_between, pacific_date
from tests.test_ejv_support import execute, query, scenario


def _as_of(db_url: str) -> date:
    return date.fromisoformat(query(db_url, "SELECT value FROM paynb_sandbox.meta WHERE key = 'as_of'")[0][0])


@pytest.fixture
def engine(sandbox_db_url: str):
    return create_engine(url=sandbox_db_url)


def test_health_finds_exactly_the_scenario_rows(sandbox_db_url: str, engine) -> None:
    as_of = _as_of(sandbox_db_url)
    report = ejv_health(3, env=Env(overrides={"engine": engine}), as_of=as_of)

    assert report.ids(NO_FEEDBACK) == scenario(sandbox_db_url, "ejv_no_feedback", "ejv_files")
    assert report.ids(FILE_ERRORED) == scenario(sandbox_db_url, "ejv_errored_stop_ejv", "ejv_files")
    assert report.ids(HEADER_ERRORED) == scenario(sandbox_db_url, "ejv_errored_stop_ejv", "ejv_headers")
    assert report.ids(LINK_ERRORED) == scenario(sandbox_db_url, "ejv_errored_stop_ejv", "ejv_links")
    assert report.ids(STOP_EJV) == scenario(sandbox_db_url, "ejv_errored_stop_ejv", "distribution_codes")
    assert sorted(report.ids(PARTNER_STUCK)) == sorted(
        scenario(sandbox_db_url, "partner_disbursement_stuck", "partner_disbursements")
    )

    # stale APPROVED EJV invoices: the scenarios' invoices that are at least 3 business days old
    candidates = set(scenario(sandbox_db_url, "ejv_no_feedback", "invoices")) | set(
        scenario(sandbox_db_url, "ejv_errored_stop_ejv", "invoices")
    )
    created = dict(
        query(sandbox_db_url, "SELECT id, created_on FROM invoices WHERE id = ANY(:i)", i=list(candidates))
    )
    old = {i for i, ts in created.items() if business_days_between(pacific_date(ts), as_of) >= 3}
    assert set(report.ids(STALE_INVOICE)) == old
    assert set(scenario(sandbox_db_url, "ejv_no_feedback", "invoices")) <= old

    assert all(f.action for f in report.findings)
    assert report.summary() == {k: len(report.ids(k)) for k in KINDS}


def test_each_finding_says_where_it_stands_and_what_to_do(sandbox_db_url: str, engine) -> None:
    report = ejv_health(3, engine=engine, as_of=_as_of(sandbox_db_url))
    (no_fb,) = report.of_kind(NO_FEEDBACK)
    (invoice,) = scenario(sandbox_db_url, "ejv_no_feedback", "invoices")
    assert no_fb.details["invoice_ids"] == [invoice]
    assert (
        f"paynb ejv search {invoice}" in no_fb.action and "paynb ejv redate plan INBOX.F3505." in no_fb.action
    )

    stale = {f.id: f for f in report.of_kind(STALE_INVOICE)}
    assert stale[invoice].details["stage"] == "sent_no_feedback"
    assert no_fb.details["file_ref"] in stale[invoice].summary
    (gl,) = scenario(sandbox_db_url, "ejv_errored_stop_ejv", "distribution_codes")
    blocked = set(scenario(sandbox_db_url, "ejv_errored_stop_ejv", "invoices")) & set(stale)
    assert blocked and all(stale[i].details["stage"] == "no_reference" for i in blocked)
    assert all(f"GL {gl} has stop_ejv" in stale[i].summary for i in blocked)

    (stop,) = report.of_kind(STOP_EJV)
    n_blocked = query(
        sandbox_db_url,
        "SELECT count(*) FROM invoices i WHERE i.payment_account_id = (SELECT account_id FROM distribution_codes"
        " WHERE distribution_code_id = :g) AND i.invoice_status_code = 'APPROVED' AND i.payment_method_code = 'EJV'"
        " AND NOT EXISTS (SELECT 1 FROM invoice_references r WHERE r.invoice_id = i.id AND r.status_code = 'ACTIVE')",
        g=gl,
    )[0][0]
    assert stop.details["blocked_invoices"] == n_blocked > 0
    (link,) = report.of_kind(LINK_ERRORED)
    assert link.details["message"] and link.details["message"] in link.summary
    assert f"distribution code {gl}" in link.action

    partner = {f.details["status_code"]: f for f in report.of_kind(PARTNER_STUCK)}
    assert set(partner) == {"UPLOADED", "WAITING_FOR_JOB"}
    assert "EJV_PARTNER" in partner["WAITING_FOR_JOB"].action


def test_a_later_successful_line_resolves_an_error(sandbox_db_url: str, engine) -> None:
    (link_id,) = scenario(sandbox_db_url, "ejv_errored_stop_ejv", "ejv_links")
    invoice, header = query(
        sandbox_db_url, "SELECT link_id, ejv_header_id FROM ejv_links WHERE id = :i", i=link_id
    )[0]
    execute(
        sandbox_db_url,
        "INSERT INTO ejv_links (id, link_id, ejv_header_id, disbursement_status_code, sequence, link_type)"
        " VALUES ((SELECT max(id) + 1 FROM ejv_links), :inv, :h, 'COMPLETED', 99, 'invoice')",
        inv=invoice,
        h=header,
    )
    report = ejv_health(3, engine=engine, as_of=_as_of(sandbox_db_url))
    assert (
        report.ids(LINK_ERRORED) == [] and report.ids(HEADER_ERRORED) == [] and report.ids(FILE_ERRORED) == []
    )
    assert ejv_health(3, engine=engine, as_of=_as_of(sandbox_db_url), include_resolved=True).ids(
        LINK_ERRORED
    ) == [link_id]


def test_days_threshold_counts_pacific_business_days(sandbox_db_url: str, engine) -> None:
    as_of = _as_of(sandbox_db_url)
    (file_id,) = scenario(sandbox_db_url, "ejv_no_feedback", "ejv_files")
    created = query(sandbox_db_url, "SELECT created_on FROM ejv_files WHERE id = :i", i=file_id)[0][0]
    age = business_days_between(pacific_date(created), as_of)
    assert ejv_health(age, engine=engine, as_of=as_of).ids(NO_FEEDBACK) == [file_id]
    assert ejv_health(age + 1, engine=engine, as_of=as_of).ids(NO_FEEDBACK) == []


def test_report_serialises_with_schema_version(sandbox_db_url: str, engine) -> None:
    report = ejv_health(3, engine=engine, as_of=_as_of(sandbox_db_url))
    data = json.loads(json.dumps(report.to_dict(), default=str))
    assert data["schema_version"] == 1 and data["report"] == "ejv_health"
    assert len(data["findings"]) == len(report.findings)
    frame = report.to_frame()
    assert list(frame["kind"]) == [f.kind for f in report.findings]
    assert set(report.summary_frame()["kind"]) == set(KINDS)


def test_cli_health_json_and_table(sandbox_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from paynb.cli import cli

    monkeypatch.setenv("PAYNB_DATABASE_URL", sandbox_db_url)
    runner = CliRunner()
    out = runner.invoke(cli, ["ejv", "health", "--business-days", "3", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["summary"][NO_FEEDBACK] == 1
    table = runner.invoke(cli, ["ejv", "health"])
    assert table.exit_code == 0 and "ejv_file_no_feedback" in table.output and "->" in table.output
    bad = runner.invoke(cli, ["ejv", "health", "--business-days", "-1"])
    assert bad.exit_code != 0
