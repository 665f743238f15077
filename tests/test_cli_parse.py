"""CLI: ``paynb ejv parse-feedback``, ``paynb ejv parse-inbox``, ``paynb settlement parse`` (table and JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paynb.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
RENDERED = FIXTURES / "sbc-pay" / "rendered"
PAYMENT = RENDERED / "FEEDBACK.sample-gov-account-payment.txt"
INBOX = RENDERED / "INBOX.F3505.20260730190100.sample"
CSV = RENDERED / "cas_settlement_file.csv"


def _json_lines(out: str) -> list[dict]:  # type: ignore[type-arg]
    """--json prints one document; its records (or rows) are what the old JSON lines were."""
    doc = json.loads(out)
    return doc.get("records", doc.get("rows"))


def test_parse_feedback_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ejv", "parse-feedback", str(PAYMENT), "--json"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert len(rows) == 10
    error = rows[8]
    assert error["record_type"] == "JD" and error["batch_number"] == 12
    assert (error["journal_name"], error["ejv_header_id"]) == ("FI00000034", 34)
    assert (error["flowthrough"], error["invoice_id"], error["refunds_partial_id"]) == ("1002-PR-7", 1002, 7)
    assert error["partner_disbursement_id"] is None and error["is_partial_refund"] is True
    assert (error["return_code"], error["return_message"], error["is_success"]) == (
        "1111",
        "TESTERRORMESSAGE",
        False,
    )
    assert (error["debit_credit"], error["effective_date"], error["amount"]) == ("D", "2026-07-30", "25.00")
    assert rows[2]["amount"] == "103.00"
    assert all(key == key.lower() for row in rows for key in row)


def test_parse_feedback_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ejv", "parse-feedback", str(PAYMENT)]) == 0
    out = capsys.readouterr().out
    assert "TESTERRORMESSAGE" in out and "1002-PR-7" in out
    assert "10 records; batch(es) 12; file type (guess) PAYMENT" in out
    assert "1 record(s) with a return code other than 0000" in out


def test_parse_feedback_truncated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "FEEDBACK.cut"
    cut.write_text("\n".join(PAYMENT.read_text(encoding="utf-8").split("\n")[:-1]), encoding="utf-8")
    assert main(["ejv", "parse-feedback", str(cut)]) == 2
    assert f"{cut}:9" in capsys.readouterr().err
    assert main(["ejv", "parse-feedback", str(cut), "--allow-truncated"]) == 0
    assert "no BT trailer" in capsys.readouterr().out


def test_parse_inbox_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ejv", "parse-inbox", str(INBOX), "--json"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r["record_type"] for r in rows] == ["BH", "JH", "JD", "JD", "JD", "JD", "BT"]
    jd = rows[2]
    assert (jd["feeder"], jd["batch_number"], jd["ejv_header_id"], jd["flowthrough"]) == (
        "3505",
        12,
        34,
        "1001",
    )
    assert (jd["amount"], jd["effective_date"], jd["debit_credit"], jd["gl_client"]) == (
        "100.00",
        "2026-07-30",
        "C",
        "112",
    )
    assert "fields" not in jd
    assert main(["ejv", "parse-inbox", str(INBOX)]) == 0
    out = capsys.readouterr().out
    assert "feeder 3505; batch(es) 12; effective date(s) 2026-07-30; 1 invoice(s)" in out
    assert "WARNING" not in out


def test_settlement_parse_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settlement", "parse", str(CSV), "--json"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert len(rows) == 8
    nsf = rows[1]
    assert (nsf["record_type"], nsf["target_transaction_status"], nsf["is_nsf_risk"]) == (
        "PADP",
        "Not PAID",
        True,
    )
    assert (nsf["application_date"], nsf["application_amount"], nsf["line_number"]) == ("2026-07-30", "0", 3)
    assert (
        rows[0]["target_transaction_original_amount"] == "300.0" and rows[0]["reversal_reason_code"] is None
    )
    assert main(["settlement", "parse", str(CSV)]) == 0
    out = capsys.readouterr().out
    assert (
        "NSF-RISK" in out and "8 rows (header: columns spelled as in sbc-pay's test files); 2 NSF-risk" in out
    )
    assert "WARNING: replaying NSF-risk rows" in out


def test_settlement_parse_error_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "BCR_PAYMENT_APPL_20260730.csv"
    bad.write_bytes(CSV.read_bytes().replace(b'"30-Jul-26"', b'"2026-07-30"', 2))
    assert main(["settlement", "parse", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}:2, field 'application_date'" in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["ejv", "parse-feedback", "--help"],
        ["ejv", "parse-inbox", "--help"],
        ["settlement", "parse", "--help"],
    ],
)
def test_help_has_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert "Example:" in capsys.readouterr().out
