"""`paynb reconcile`: every injected mismatch is found with its class, consistent data gives no findings
the generator's own scenarios do not explain, and a broken warehouse is one clear error."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.errors import ConfigError, WarehouseError
from paynb.ops.reconcile import (
    CLASSES,
    reconcile_bcol,
    reconcile_cfs,
    reconcile_disbursements,
)
from paynb.settings import Settings
from tests.reconcile_fixtures import expected_findings

pytestmark = pytest.mark.slow
START, END = date(2000, 1, 1), date(2100, 1, 1)


def _all(env) -> list:
    return [
        reconcile_cfs(START, END, env=env, source="warehouse"),
        reconcile_bcol(env=env),
        reconcile_disbursements(env=env),
    ]


def test_every_injected_mismatch_is_found_with_its_class(warehouse) -> None:
    reports = _all(warehouse.env())
    found = {(f.mismatch_class, f.key) for r in reports for f in r.findings}
    expected = expected_findings(warehouse.pay_url)
    assert expected <= found, sorted(expected - found)
    # every class of every check has at least one injected (or generator) scenario
    classes = {c for c, _ in expected} | {"disbursement_stuck", "distribution_stop_ejv"}
    assert classes == set(CLASSES)
    assert {c for c, _ in found} == set(CLASSES)
    assert all(r.complete for r in reports)


def test_money_is_decimal_and_amounts_are_exact(warehouse) -> None:
    report = reconcile_cfs(START, END, env=warehouse.env(), source="warehouse")
    differs = [f for f in report.findings if f.mismatch_class == "total_differs"]
    assert differs and all(isinstance(f.paydb_amount, Decimal) for f in differs)
    assert all(f.other_amount - f.paydb_amount == Decimal("10.00") for f in differs)
    bcol = reconcile_bcol(env=warehouse.env())
    short = next(f for f in bcol.findings if f.mismatch_class == "bcol_refund_mismatch")
    assert short.paydb_amount + short.other_amount == Decimal("1.00")


def _explained(pay_url: str) -> set[tuple[str, str]]:
    """Findings the generator's own scenarios produce: invoices in unprocessed settlement CSVs are paid in
    CAS only, and pad_stuck_cfs_missing's reference is missing from CAS."""
    eng = sa.create_engine(pay_url, poolclass=NullPool)
    out: set[tuple[str, str]] = set()
    with eng.connect() as c:
        keys: set[str] = set()
        for (details,) in c.execute(
            sa.text(
                "SELECT details FROM paynb_sandbox.scenarios "
                "WHERE name IN ('pad_stuck_settled_csv_unprocessed', 'cas_csv_with_nsf')"
            )
        ):
            keys |= {f["key"] for f in details.get("files", [])} | (
                {details["key"]} if "key" in details else set()
            )
        text = "".join(
            bytes(r[0]).decode()
            for r in c.execute(
                sa.text("SELECT content FROM paynb_sandbox.store_objects WHERE key = ANY(:k)"),
                {"k": list(keys)},
            )
        )
        refs = c.execute(
            sa.text(
                "SELECT r.invoice_number, i.id FROM invoice_references r JOIN invoices i ON i.id = r.invoice_id "
                "WHERE r.status_code = 'ACTIVE'"
            )
        ).all()
        out |= {("paid_in_cas_not_paydb", n) for n, _ in refs if n in text}
        missing = c.execute(
            sa.text(
                "SELECT r.invoice_number FROM invoice_references r JOIN paynb_sandbox.scenarios s "
                "ON r.id = ANY(s.ids) WHERE s.name = 'pad_stuck_cfs_missing' AND s.table_name = 'invoice_references'"
            )
        ).all()
        out |= {("reference_missing_in_cas", n) for (n,) in missing}
        stuck = c.execute(
            sa.text(
                "SELECT ids FROM paynb_sandbox.scenarios WHERE name = 'partner_disbursement_stuck' "
                "AND table_name = 'partner_disbursements'"
            )
        ).scalar()
        out |= {("disbursement_stuck", str(i)) for i in stuck}
        stop = c.execute(
            sa.text(
                "SELECT ids FROM paynb_sandbox.scenarios WHERE name = 'ejv_errored_stop_ejv' "
                "AND table_name = 'distribution_codes'"
            )
        ).scalar()
        out |= {("distribution_stop_ejv", str(i)) for i in stop}
    eng.dispose()
    return out


def test_consistent_data_has_no_findings_but_the_generators_own(clean_warehouse) -> None:
    reports = _all(clean_warehouse.env())
    found = {(f.mismatch_class, f.key) for r in reports for f in r.findings}
    explained = _explained(clean_warehouse.pay_url)
    assert found <= explained, sorted(found - explained)
    assert not [r for r in reports if r.check == "bcol"][0].findings


def test_refund_pending_is_not_a_finding(warehouse) -> None:
    pending = warehouse.injected["recon_bcol_refund_pending"]["numbers"][0]
    report = reconcile_bcol(env=warehouse.env())
    assert pending not in {f.key for f in report.findings}


def test_window_and_method_filters(warehouse) -> None:
    env = warehouse.env()
    full = reconcile_cfs(START, END, env=env, source="warehouse")
    pad = reconcile_cfs(START, END, env=env, source="warehouse", methods=["PAD"])
    assert 0 < pad.compared < full.compared
    assert all("PAD" in f.detail for f in pad.findings if f.invoice_ids)
    none = reconcile_cfs(date(2001, 1, 1), date(2001, 1, 2), env=env, source="warehouse")
    assert none.compared == 0 and not none.findings


def test_reader_role_cannot_write(warehouse) -> None:
    eng = sa.create_engine(warehouse.reader_url, poolclass=NullPool)
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM cas.ar_transactions")).scalar() > 0
        with pytest.raises(sa.exc.DBAPIError):
            c.execute(sa.text("DELETE FROM cas.ar_transactions"))
    eng.dispose()


def test_unreachable_warehouse_is_one_clear_error(warehouse) -> None:
    env = warehouse.env(PAYNB_DW_URL="postgresql://paynb_dw_reader@127.0.0.1:1/dw")
    with pytest.raises(WarehouseError, match=r"cannot reach the data warehouse at 127\.0\.0\.1:1/dw"):
        reconcile_cfs(START, END, env=env, source="warehouse")
    with pytest.raises(WarehouseError, match="cannot reach"):
        reconcile_bcol(env=env)


def test_missing_column_and_table_are_named(warehouse) -> None:
    env = warehouse.env(PAYNB_DW_CAS_BALANCE_COLUMN="balance_left")
    with pytest.raises(WarehouseError, match=r"lacks column cas\.ar_transactions\.balance_left"):
        reconcile_cfs(START, END, env=env, source="warehouse")
    eng = sa.create_engine(warehouse.dw_url, poolclass=NullPool)
    with eng.begin() as c:
        c.exec_driver_sql("ALTER TABLE colin.bconline_billing_record RENAME TO bconline_billing_record_old")
    eng.dispose()
    with pytest.raises(WarehouseError, match=r"lacks table colin\.bconline_billing_record"):
        reconcile_bcol(env=warehouse.env())


def test_no_warehouse_configured(warehouse) -> None:
    env = warehouse.env(PAYNB_DW_URL="")
    env.settings = Settings.load(env={"PAYNB_DATABASE_URL": warehouse.pay_url}, dotenv=None)
    with pytest.raises(ConfigError, match="no data warehouse"):
        reconcile_bcol(env=env)


def test_cli_reports(warehouse, monkeypatch, tmp_path, capsys) -> None:
    from paynb.cli import main

    for k, v in warehouse.env_vars().items():
        monkeypatch.setenv(k, v)
    assert (
        main(
            [
                "reconcile",
                "cfs",
                "--from",
                "2000-01-01",
                "--to",
                "2100-01-01",
                "--json",
                "--csv",
                str(tmp_path / "f.csv"),
                "--xlsx",
                str(tmp_path / "f.xlsx"),
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] is True and doc["counts"]["total_differs"] >= 1
    assert {f["class"] for f in doc["findings"]} >= {
        "cas_txn_without_reference",
        "credit_memo_without_credit",
    }
    csv_text = (tmp_path / "f.csv").read_text()
    assert "REG90000001" in csv_text and "42.00" in csv_text
    import openpyxl

    book = openpyxl.load_workbook(tmp_path / "f.xlsx")
    rows = list(book["findings"].iter_rows(values_only=True))
    header = rows[0]
    orphan = next(r for r in rows if r[header.index("key")] == "REG90000001")
    assert orphan[header.index("other_amount")] == 42
    assert main(["reconcile", "bcol", "--chart", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    assert "bcol_refunded_not_marked" in out and "what to do next" in out
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["reconcile", "disbursements", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["amounts"] and all(isinstance(a["amount"], str) for a in doc["amounts"])


def test_cli_broken_warehouse_shows_no_report(warehouse, monkeypatch, capsys) -> None:
    from paynb.cli import main

    monkeypatch.setenv("PAYNB_DATABASE_URL", warehouse.pay_url)
    monkeypatch.setenv("PAYNB_DW_URL", "postgresql://paynb_dw_reader@127.0.0.1:1/dw")
    assert main(["reconcile", "cfs", "--from", "2026-01-01", "--to", "2026-01-31"]) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot reach the data warehouse" in captured.err
    monkeypatch.setenv("PAYNB_DW_URL", warehouse.reader_url)
    monkeypatch.setenv("PAYNB_DW_CAS_DATE_COLUMN", "gl_date")
    assert main(["reconcile", "cfs", "--from", "2026-01-01", "--to", "2026-01-31", "--json"]) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and "cas.ar_transactions.gl_date" in captured.err


def test_cfs_api_path_agrees_with_the_warehouse(warehouse) -> None:
    from paynb.sandbox.cfs_server import CfsState, start_cfs_server

    creds = {"rec-id": "rec-secret-4d1e"}
    with start_cfs_server(
        CfsState.from_database(warehouse.pay_url), credentials=creds, pay_connector="x1y2"
    ) as s:
        env = warehouse.env(
            PAYNB_CFS_BASE_URL=s.url,
            PAYNB_CFS_CLIENT_ID="rec-id",
            PAYNB_CFS_CLIENT_SECRET="rec-secret-4d1e",
            PAYNB_PAY_CONNECTOR_AUTH="x1y2",
            PAYNB_DW_URL="",
        )
        api = reconcile_cfs(START, END, env=env, sample=100_000)
    assert api.source == "cfs-api" and api.complete
    wh = reconcile_cfs(START, END, env=warehouse.env(), source="warehouse")
    api_keys = {(f.mismatch_class, f.key) for f in api.findings}
    wh_keys = {(f.mismatch_class, f.key) for f in wh.findings if f.mismatch_class in api.classes_checked}
    assert api_keys == wh_keys


def test_cfs_api_errors_make_the_report_incomplete(warehouse) -> None:
    from paynb.sandbox.cfs_server import CfsState, start_cfs_server

    creds = {"rec-id": "rec-secret-4d1e"}
    with start_cfs_server(
        CfsState.from_database(warehouse.pay_url), credentials=creds, pay_connector="x1y2", fault_rate=1.0
    ) as s:
        env = warehouse.env(
            PAYNB_CFS_BASE_URL=s.url,
            PAYNB_CFS_CLIENT_ID="rec-id",
            PAYNB_CFS_CLIENT_SECRET="rec-secret-4d1e",
            PAYNB_PAY_CONNECTOR_AUTH="x1y2",
            PAYNB_DW_URL="",
        )
        report = reconcile_cfs(END - timedelta(days=36500), END, env=env, sample=5)
    assert not report.complete and any("INCOMPLETE" in n for n in report.notes)


def test_sandbox_scenarios_list_the_warehouse_injections(warehouse) -> None:
    from paynb.sandbox.scenarios import list_scenarios
    from paynb.sandbox.warehouse import CATALOGUE

    eng = sa.create_engine(warehouse.pay_url, poolclass=NullPool)
    with eng.connect() as c:
        names = set(list_scenarios(c)["name"])
    eng.dispose()
    assert {s.name for s in CATALOGUE} <= names


def test_dw_url_from_sbc_pay_names() -> None:
    s = Settings.load(
        env={"DW_NAME": "fin_warehouse", "DW_UNIX_SOCKET": "proj:region:inst", "DW_IAM_USER": "sa@proj.iam"},
        dotenv=None,
    )
    url = sa.engine.make_url(s.dw_url.reveal())
    assert url.database == "fin_warehouse" and url.username == "sa@proj.iam"
    assert url.query["host"] == "/cloudsql/proj:region:inst" and url.password is None
    with pytest.raises(ConfigError, match="PAYNB_DW_CAS_DATE_COLUMN"):
        Settings.load(env={"PAYNB_DW_CAS_DATE_COLUMN": "x; drop table"}, dotenv=None)
    secret = Settings.load(env={"PAYNB_DW_URL": "postgresql://u:pw-9f8e7d@h/dw"}, dotenv=None)
    assert "pw-9f8e7d" in secret.secret_values() and "pw-9f8e7d" not in json.dumps(secret.describe())


def test_doctor_checks_the_warehouse(warehouse) -> None:
    from paynb.ops.doctor import check_warehouse

    (ok,) = check_warehouse(warehouse.env().settings)
    assert ok.status == "ok" and "read-only session on" in ok.detail
    (bad,) = check_warehouse(warehouse.env(PAYNB_DW_CAS_DATE_COLUMN="gl_date").settings)
    assert bad.status == "fail" and "cas.ar_transactions.gl_date" in bad.detail
    (skipped,) = check_warehouse(Settings.load(env={}, dotenv=None))
    assert skipped.status == "skipped"
