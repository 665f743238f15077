"""Reports for analysts (#14 items 5-7): --csv/--xlsx exports with exact money, tables that fit 120 columns
(--wide for all), no nan/None cells, grouped EJV findings, and flags named for what they take. CLI tests go
through `paynb.cli.main` on the sandbox PostgreSQL."""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from paynb.cli import main
from paynb.exports import MONEY_FORMAT, export_tables
from paynb.output import format_table


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_tables_fit_120_columns_unless_wide() -> None:
    frame = pd.DataFrame(
        [{f"column_{i}": f"value {i} " + "x" * 40 for i in range(8)} | {"note": "word " * 60}] * 3
    )
    fitted = format_table(frame)
    assert _widest(fitted) <= 120
    wide = format_table(frame, wide=True)
    assert _widest(wide) > 300 and "not shown" not in wide
    assert "word word" in fitted or "not shown: " in fitted


def test_many_columns_are_left_out_by_name() -> None:
    frame = pd.DataFrame([{f"c{i:02d}": "abcdefghijklmnop" for i in range(12)}])
    fitted = format_table(frame)
    assert _widest(fitted.split("\n(not shown")[0]) <= 120
    assert "(not shown: " in fitted and "c11" in fitted.split("(not shown: ")[1] and "--wide" in fitted


def test_no_nan_none_or_nat_in_cells() -> None:
    frame = pd.DataFrame(
        {
            "a": [1.0, float("nan")],
            "b": [None, "x"],
            "c": [pd.NaT, pd.Timestamp("2026-01-02")],
            "d": pd.array([1, None], dtype="Int64"),
            "e": ["None", "nan"],
        }
    )
    text = format_table(frame)
    for word in ("nan", "NaN", "None", "NaT", "<NA>"):
        assert word not in text, text


def test_exports_keep_money_exact(tmp_path: Path) -> None:
    money = [Decimal("12345678901234.57"), Decimal("0.10"), Decimal("1E+1"), None]
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "total": money, "when": [datetime(2026, 1, 2, 3, 4, 5)] * 4})
    other = pd.DataFrame({"kind": ["x"], "count": [3]})
    written = export_tables(
        {"rows": frame, "by/kind": other}, csv=tmp_path / "r.csv", xlsx=tmp_path / "r.xlsx"
    )
    assert [p.name for p in written] == ["r.csv", "r.xlsx"]
    assert (tmp_path / "r.csv").stat().st_mode & 0o077 == 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["total"] for r in rows] == ["12345678901234.57", "0.10", "10", ""]
    assert rows[0]["when"] == "2026-01-02T03:04:05"

    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert book.sheetnames == ["rows", "by_kind"]
    sheet = book["rows"]
    assert [c.value for c in sheet[1]] == ["id", "total", "when"]
    assert sheet["B2"].number_format == MONEY_FORMAT and sheet["B2"].data_type == "n"
    assert sheet["B5"].value is None and sheet["C2"].value == datetime(2026, 1, 2, 3, 4, 5)
    # the number in the file is the Decimal's own digits, not a float's rounding of them
    xml = zipfile.ZipFile(tmp_path / "r.xlsx").read("xl/worksheets/sheet1.xml").decode()
    assert "<v>12345678901234.57</v>" in xml


def test_stale_list_csv_and_xlsx(pay_env, tmp_path: Path, capsys) -> None:
    out_csv, out_xlsx = tmp_path / "stale.csv", tmp_path / "stale.xlsx"
    assert main(["stale", "--days", "20", "--list", "--csv", str(out_csv), "--xlsx", str(out_xlsx)]) == 0
    captured = capsys.readouterr()
    assert "Invoices" in captured.out and "invoice_id" in captured.out
    assert f"wrote {out_csv}" in captured.err
    assert _widest(captured.out) <= 120
    assert main(["stale", "--days", "20", "--json", "--list"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == doc["total_count"] == len(doc["invoices"]) > 0
    assert sum(Decimal(r["total"]) for r in rows) == Decimal(doc["total_amount"])
    openpyxl = pytest.importorskip("openpyxl")
    assert openpyxl.load_workbook(out_xlsx).sheetnames == ["invoices", "by_bucket", "by_method"]


def test_account_flags_are_named_for_the_id_they_take(pay_env, capsys) -> None:
    assert main(["stale", "--account", "12"]) == 2
    err = capsys.readouterr().err
    assert "--auth-account" in err and "--account-id" in err

    assert main(["stale", "--days", "0", "--json", "--list"]) == 0
    invoice = json.loads(capsys.readouterr().out)["invoices"][0]
    pa_id, auth = invoice["payment_account_id"], invoice["auth_account_id"]
    assert main(["stale", "--days", "0", "--account-id", str(pa_id), "--json", "--list"]) == 0
    by_id = json.loads(capsys.readouterr().out)
    assert by_id["account"] == auth and by_id["total_count"] > 0
    assert main(["stale", "--days", "0", "--auth-account", auth, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_count"] == by_id["total_count"]

    assert main(["stale", "--auth-account", "no-such-account"]) == 2
    assert "no payment account has auth account id no-such-account" in capsys.readouterr().err
    assert main(["stale", "--account-id", "99999999"]) == 2
    assert "no payment account with id 99999999" in capsys.readouterr().err


def test_ejv_health_groups_alike_findings_and_names_business_days(pay_env, tmp_path: Path, capsys) -> None:
    assert main(["ejv", "health", "--days", "3"]) == 2
    assert "--business-days" in capsys.readouterr().err

    assert main(["ejv", "health", "--business-days", "0", "--all"]) in (0, 1)
    every = capsys.readouterr().out
    assert main(["ejv", "health", "--business-days", "0", "--xlsx", str(tmp_path / "h.xlsx")]) in (0, 1)
    grouped = capsys.readouterr().out
    assert main(["ejv", "health", "--business-days", "0", "--json"]) in (0, 1)
    findings = json.loads(capsys.readouterr().out)["findings"]
    blocks = grouped.count("\n  -> ")
    assert every.count("\n  -> ") == len(findings) > blocks > 0
    assert " x" in grouped and "(the same for the other" in grouped
    openpyxl = pytest.importorskip("openpyxl")
    assert openpyxl.load_workbook(tmp_path / "h.xlsx")["findings"].max_row == len(findings) + 1


def test_statements_refuse_future_days_unless_allowed(pay_env, capsys) -> None:
    assert main(["statements", "generate", "2099-01-01"]) == 2
    err = capsys.readouterr().err
    assert "2099-01-01 is after today" in err and "--allow-future" in err
    assert main(["statements", "generate", "--range", "2025-01-01", "2099-01-31"]) == 2
    capsys.readouterr()
    assert main(["statements", "generate", "2099-01-01", "--allow-future", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)


def test_statements_dry_run_lists_accounts_and_periods_and_apply_prints_ids(
    pay_env, tmp_path, capsys
) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pay_env["PAYNB_DATABASE_URL"])
    with engine.connect() as conn:
        day = conn.execute(sa.text("SELECT max(to_date) FROM statements WHERE frequency = 'DAILY'")).scalar()
        expected = conn.execute(
            sa.text(
                "SELECT count(DISTINCT payment_account_id) FROM statements WHERE to_date = :d AND frequency = 'DAILY'"
            ),
            {"d": day},
        ).scalar()
    engine.dispose()
    assert day is not None and expected > 0
    plan_file = tmp_path / "plan.json"
    assert main(["statements", "plan", str(day), "--out", str(plan_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    periods = doc["periods"]
    assert len(periods) == sum(c["statements"] for c in doc["plan"]["body"]["counts"].values())
    daily = [p for p in periods if p["frequency"] == "DAILY"]
    assert len(daily) == expected and all(p["from_date"] == str(day) for p in daily)

    assert main(["statements", "plan", str(day), "--out", str(plan_file)]) == 0
    text = capsys.readouterr().out
    assert "Accounts and periods (" in text and "auth_account_id" in text
    # tables fit; the command to copy (long temporary path, full sha256) stays on one line
    assert _widest("\n".join(line for line in text.splitlines() if not line.startswith("Next:"))) <= 120

    assert main(["statements", "apply", "--plan", str(plan_file), "--confirm", doc["sha256"], "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    ids = applied["statement_ids"]
    reused = {p["statement_id"] for p in periods if p["statement_id"] is not None}
    assert set(ids["reused"]) == reused and len(ids["new"]) + len(ids["reused"]) == len(periods)

    assert main(["statements", "plan", str(day), "--out", str(plan_file), "--json"]) == 0
    sha = json.loads(capsys.readouterr().out)["sha256"]
    assert main(["statements", "apply", "--plan", str(plan_file), "--confirm", sha]) == 0
    out = capsys.readouterr().out
    assert "reused statement ids (" in out


def test_bucket_files_are_taken_by_key(s3_env, s3_store_url, monkeypatch, tmp_path, capsys) -> None:
    """`settlement parse ar/…` (the key triage prints) and `ejv parse-feedback cgi_feedback/…` read the
    object from the configured bucket; a bare name is found in its folders; a missing key names the places."""
    from paynb.settings import Settings
    from paynb.store import open_store

    rendered = Path(__file__).parent / "fixtures" / "sbc-pay" / "rendered"
    bucket = s3_store_url.removeprefix("s3://").split("/")[0]
    for name, value in {**s3_env, "PAYNB_BUCKET": bucket, "PAYNB_BUCKET_URL": f"s3://{bucket}"}.items():
        monkeypatch.setenv(name, value)
    store = open_store(f"s3://{bucket}", Settings.load(dotenv=None))
    store.put("ar/BCR_PAYMENT_APPL_20260730.csv", (rendered / "cas_settlement_file.csv").read_bytes())
    store.put(
        "cgi_feedback/FEEDBACK.F3505.20260731190100",
        (rendered / "FEEDBACK.sample-gov-account-payment.txt").read_bytes(),
    )

    assert main(["settlement", "parse", "ar/BCR_PAYMENT_APPL_20260730.csv", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file"] == "ar/BCR_PAYMENT_APPL_20260730.csv" and len(doc["rows"]) == 8
    assert (
        main(["settlement", "parse", "BCR_PAYMENT_APPL_20260730.csv", "--csv", str(tmp_path / "s.csv")]) == 0
    )
    assert "header: columns spelled" in capsys.readouterr().out
    assert len(list(csv.DictReader((tmp_path / "s.csv").open()))) == 8

    for name in ("cgi_feedback/FEEDBACK.F3505.20260731190100", "FEEDBACK.F3505.20260731190100"):
        assert main(["ejv", "parse-feedback", name, "--json"]) == 0
        feedback = json.loads(capsys.readouterr().out)
        assert feedback["file"].endswith("cgi_feedback/FEEDBACK.F3505.20260731190100") and feedback["records"]

    assert main(["ejv", "parse-inbox", "cgi_processed/INBOX.F3505.20990101000000"]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and f"s3://{bucket}/cgi_processed/INBOX.F3505.20990101000000" in err
    assert "archive" not in err
