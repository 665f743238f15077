"""CAS settlement CSV: the shared sample (docs/files.md#cas-settlement-csv), the parser-header fixture, header matching,
every error path, the writer, filters, and hypothesis tests."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paynb.errors import ParseError
from paynb.formats.settlement_csv import (
    COLUMNS,
    RecordType,
    SettlementFile,
    SettlementRow,
    TargetStatus,
    TargetType,
    filter_rows,
    format_application_date,
    parse_application_date,
    parse_settlement_csv,
    parse_settlement_file,
    settlement_header,
    write_settlement_csv,
)

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "sbc-pay" / "rendered" / "cas_settlement_file.csv"
PARSER_STYLE = FIXTURES / "formats" / "BCR_PAYMENT_APPL_20260731.csv"

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
D = Decimal


@pytest.fixture(scope="module")
def sample() -> SettlementFile:
    return parse_settlement_file(SAMPLE)


def test_sample_header_and_rows(sample: SettlementFile) -> None:
    assert sample.header_style == "test"
    assert sample.header[-1] == "Reversal reason description"
    assert [r.line_number for r in sample] == list(range(2, 10))
    assert [r.record_type for r in sample] == ["PADP", "PADP", "PADR", "CMAP", "PADP", "BOLP", "ONAC", "BOLP"]
    assert all(r.known and r.status_known and r.target_type_known for r in sample)
    assert {r.application_date for r in sample} == {date(2026, 7, 30)}


def test_sample_pad_paid(sample: SettlementFile) -> None:
    paid = sample.rows[0]
    assert paid.record_type_enum is RecordType.PADP and paid.is_pad and not paid.is_nsf_risk
    assert (paid.source_transaction_type, paid.source_transaction_number) == ("BCR-PAD Daily", "1234567890")
    assert (paid.application_id, paid.application_amount, paid.customer_account) == (
        100001,
        D("300.0"),
        "1234",
    )
    assert (paid.target_type, paid.target_transaction_number) == (TargetType.INV, "REG00001001")
    assert paid.target_transaction_original_amount == D("300.0")
    assert paid.target_transaction_outstanding_amount == D("0")
    assert paid.status is TargetStatus.FULLY_PAID
    assert (paid.reversal_reason_code, paid.reversal_reason_desc) == (None, None)


def test_sample_nsf_and_pad_reversal(sample: SettlementFile) -> None:
    nsf, reversal = sample.rows[1], sample.rows[2]
    assert nsf.record_type == "PADP" and nsf.status is TargetStatus.NOT_PAID and nsf.is_nsf_risk
    assert (nsf.application_amount, nsf.target_transaction_outstanding_amount) == (D("0"), D("150.0"))
    assert (nsf.reversal_reason_code, nsf.reversal_reason_desc) == ("001", "NSF")
    assert reversal.record_type_enum is RecordType.PADR and reversal.is_pad and reversal.is_nsf_risk
    assert [r.line_number for r in sample.nsf_risk_rows()] == [3, 4]


def test_sample_credit_memo_then_pad_on_one_invoice(sample: SettlementFile) -> None:
    cmap, padp = sample.rows[3], sample.rows[4]
    assert cmap.target_transaction_number == padp.target_transaction_number == "REG00001010"
    assert (cmap.record_type, cmap.source_transaction_type, cmap.source_transaction_number) == (
        "CMAP",
        "CM",
        "CM123",
    )
    assert (cmap.application_amount, padp.application_amount) == (D("25"), D("275"))
    assert cmap.application_amount + padp.application_amount == cmap.target_transaction_original_amount
    assert not cmap.is_pad and padp.is_pad


def test_sample_online_banking_on_account_and_partial(sample: SettlementFile) -> None:
    bolp, onac, partial = sample.rows[5], sample.rows[6], sample.rows[7]
    assert bolp.record_type_enum is RecordType.BOLP and bolp.status is TargetStatus.FULLY_PAID
    assert bolp.source_transaction_type == "BCR Online Banking Payments"
    assert onac.target_type is TargetType.RECEIPT and onac.status is TargetStatus.ON_ACCOUNT
    assert (onac.target_transaction_original_amount, onac.target_transaction_outstanding_amount) == (
        D("150.0"),
        D("50.0"),
    )
    assert partial.status is TargetStatus.PARTIALLY_PAID
    assert (partial.application_amount, partial.target_transaction_outstanding_amount) == (
        D("60.0"),
        D("40.0"),
    )
    assert not any(r.is_nsf_risk for r in (bolp, onac, partial))


def test_sample_invoice_numbers(sample: SettlementFile) -> None:
    assert sample.invoice_numbers() == {
        "REG00001001",
        "REG00001005",
        "REG00001010",
        "REG00001020",
        "REG00001030",
    }


def test_writer_reproduces_the_sample_byte_for_byte(sample: SettlementFile) -> None:
    assert write_settlement_csv(sample.rows).encode("utf-8") == SAMPLE.read_bytes()


def test_to_dict_keys(sample: SettlementFile) -> None:
    d = sample.rows[1].to_dict()
    assert list(d)[:15] == [
        "record_type",
        "source_transaction_type",
        "source_transaction_number",
        "application_id",
        "application_date",
        "application_amount",
        "customer_account",
        "target_transaction_type",
        "target_transaction_number",
        "target_transaction_original_amount",
        "target_transaction_outstanding_amount",
        "target_transaction_status",
        "reversal_reason_code",
        "reversal_reason_desc",
        "line_number",
    ]
    assert d["is_pad"] is True and d["is_nsf_risk"] is True and d["known"] is True
    assert d["application_date"] == date(2026, 7, 30) and d["application_amount"] == D("0")


def test_parser_spelled_header_and_every_record_type() -> None:
    parsed = parse_settlement_file(PARSER_STYLE)
    assert parsed.header_style == "parser" and parsed.header[-1] == "Reversal reason desc"
    by_type = {r.record_type: r for r in parsed}
    assert set(by_type) == {"PADP", "PAYR", "EFTP", "DRWP", "ADJS", "EFTR", "ONAP", "DM", "BOLP", "PADR"}
    assert [r.record_type for r in parsed.unknown_record_types()] == ["DM"]
    assert by_type["ONAP"].known  # declared in sbc-pay (no handler there)
    assert by_type["EFTP"].status is TargetStatus.FULLY_PAID  # "fully paid": compared lower-cased
    assert [r.target_transaction_status for r in parsed.unknown_statuses()] == ["Paid in full"]
    assert by_type["PAYR"].is_nsf_risk and by_type["PAYR"].reversal_reason_desc == "ACCOUNT CLOSED"
    assert by_type["PADR"].is_nsf_risk and by_type["PADR"].application_date == date(2026, 8, 1)
    assert by_type["ADJS"].application_amount == D("-5.00")
    assert by_type["EFTR"].target_type is TargetType.RECEIPT
    assert {r.record_type for r in parsed.nsf_risk_rows()} == {"PAYR", "PADR"}
    assert all(r.record_type_enum is None or r.known for r in parsed)


def test_headers_match_case_insensitively_and_extra_columns_are_kept() -> None:
    text = SAMPLE.read_bytes().decode("utf-8-sig")
    header, rest = text.split("\r\n", 1)
    shouted = header.upper().replace('"REVERSAL REASON DESCRIPTION"', '"reversal REASON desc"')
    parsed = parse_settlement_csv(shouted + ',"Batch"\r\n' + rest.replace("\r\n", ',"B1"\r\n'))
    assert parsed.header_style == "other"
    assert len(parsed) == 8 and parsed.rows[1].reversal_reason_desc == "NSF"
    assert parsed.rows[0].extra == (("Batch", "B1"),)
    # column order does not matter either
    cells = list(csv.reader(io.StringIO(text)))
    swapped = [[row[1], row[0], *row[2:]] for row in cells]
    out = io.StringIO()
    csv.writer(out).writerows(swapped)
    assert [r.record_type for r in parse_settlement_csv(out.getvalue())] == [
        r.record_type for r in parse_settlement_file(SAMPLE)
    ]


def test_reversal_columns_are_optional() -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in csv.reader(io.StringIO(SAMPLE.read_bytes().decode("utf-8"))):
        writer.writerow(row[:12])
    parsed = parse_settlement_csv(out.getvalue())
    assert len(parsed) == 8
    assert all(r.reversal_reason_code is None and r.reversal_reason_desc is None for r in parsed)


def test_bom_blank_lines_and_bytes() -> None:
    raw = b"\xef\xbb\xbf" + SAMPLE.read_bytes().replace(b"\r\n", b"\r\n\r\n", 2)
    parsed = parse_settlement_csv(raw, file="b.csv")
    assert len(parsed) == 8 and parsed.blank_lines == (2, 4)
    assert parsed.header[0] == "Record type"
    assert [r.line_number for r in parsed][:3] == [3, 5, 6]


def test_application_dates() -> None:
    assert parse_application_date("30-Jul-26") == date(2026, 7, 30)
    assert parse_application_date("1-jan-99") == date(1999, 1, 1)
    assert parse_application_date("01-JAN-00") == date(2000, 1, 1)
    assert parse_application_date("29-Feb-24") == date(2024, 2, 29)
    assert format_application_date(date(2026, 8, 1)) == "01-Aug-26"


def test_filter_rows(sample: SettlementFile) -> None:
    assert [r.line_number for r in filter_rows(sample, record_types={"PADP"})] == [2, 3, 6]
    assert [r.line_number for r in filter_rows(sample, statuses={"fully paid"})] == [2, 5, 6, 7]
    assert [
        r.line_number for r in filter_rows(sample, exclude_nsf_risk=True, record_types={"PADP", "PADR"})
    ] == [2, 6]
    assert [r.line_number for r in filter_rows(sample, target_numbers={"REG00001010"})] == [5, 6]
    assert [r.line_number for r in filter_rows(sample, predicate=lambda r: r.application_amount > 100)] == [
        2,
        6,
    ]
    assert len(filter_rows(sample, known_only=True)) == 8


def test_writer_parser_style_header() -> None:
    row = SettlementRow(
        record_type="PADP",
        source_transaction_type="BCR-PAD Daily",
        source_transaction_number="1",
        application_id=None,
        application_date=date(2026, 8, 3),
        application_amount=D("1E+2"),
        customer_account="9",
        target_transaction_type="INV",
        target_transaction_number="REG00000001",
        target_transaction_original_amount=None,
        target_transaction_outstanding_amount=D("0.00"),
        target_transaction_status="Fully PAID",
    )
    text = write_settlement_csv([row], header_style="parser")
    assert text.splitlines()[0].endswith('"Reversal reason desc"')
    assert text.splitlines()[1] == (
        '"PADP","BCR-PAD Daily","1","","03-Aug-26","100","9","INV","REG00000001","","0.00","Fully PAID","",""'
    )
    back = parse_settlement_csv(text).rows[0]
    assert back == dataclasses.replace(row, line_number=2)
    assert (back.application_id, back.application_amount, back.target_transaction_original_amount) == (
        None,
        D(100),
        None,
    )
    with pytest.raises(ValueError):
        write_settlement_csv([row], header_style="other")


# --- errors ------------------------------------------------------------------------------------------------


def _sample_text() -> str:
    return SAMPLE.read_bytes().decode("utf-8")


def _replace_cell(line_index: int, column: int, value: str) -> str:
    rows = list(csv.reader(io.StringIO(_sample_text(), newline="")))
    rows[line_index][column] = value
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _drop_header(name: str) -> str:
    return _replace_cell(0, [c.test_header for c in COLUMNS].index(name), "Something else")


CSV_ERRORS = {
    "missing Record type": (_drop_header("Record type"), 1, "record_type"),
    "missing Application Date": (_drop_header("Application Date"), 1, "application_date"),
    "missing status": (_drop_header("Target transaction status"), 1, "target_transaction_status"),
    "header with blanks": (_replace_cell(0, 0, " Record type"), 1, "record_type"),
    "duplicate header": (_replace_cell(0, 13, "record TYPE"), 1, "header"),
    "both reversal desc spellings": (_replace_cell(0, 12, "Reversal reason desc"), 1, "header"),
    "ISO date": (_replace_cell(3, 4, "2026-07-30"), 4, "application_date"),
    "unknown month": (_replace_cell(3, 4, "30-Jux-26"), 4, "application_date"),
    "impossible day": (_replace_cell(3, 4, "31-Feb-26"), 4, "application_date"),
    "empty date": (_replace_cell(3, 4, ""), 4, "application_date"),
    "amount with comma": (_replace_cell(2, 5, "1,000.00"), 3, "application_amount"),
    "empty application amount": (_replace_cell(2, 5, ""), 3, "application_amount"),
    "amount with currency": (_replace_cell(5, 9, "$300.00"), 6, "target_transaction_original_amount"),
    "bad outstanding": (_replace_cell(5, 10, "n/a"), 6, "target_transaction_outstanding_amount"),
    "application id not integer": (_replace_cell(7, 3, "1000x"), 8, "application_id"),
    "application id too long": (_replace_cell(7, 3, "9" * 5000), 8, "application_id"),
    "huge amount text": (_replace_cell(7, 5, "1" * 5000 + "x"), 8, "application_amount"),
    "too few columns": (_sample_text().replace(',"",""\r\n', ',""\r\n', 1), 2, "columns"),
    "too many columns": (_sample_text().replace(',"",""\r\n', ',"","",""\r\n', 1), 2, "columns"),
    "unterminated quote at end": (_sample_text() + '"PADP,"x', 10, "columns"),
    "empty file": ("", 1, "header"),
    "only blank lines": ("\r\n\r\n", 1, "header"),
}


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_malformed_csv_raises_parse_error(case: str) -> None:
    text, line, field = CSV_ERRORS[case]
    with pytest.raises(ParseError) as info:
        parse_settlement_csv(text, file="BCR_PAYMENT_APPL_20260730.csv")
    err = info.value
    assert (err.file, err.line, err.field) == ("BCR_PAYMENT_APPL_20260730.csv", line, field)


def test_header_with_blanks_gets_a_hint() -> None:
    with pytest.raises(ParseError, match="headers must match exactly"):
        parse_settlement_csv(_replace_cell(0, 0, "Record type "))


def test_invalid_utf8() -> None:
    raw = SAMPLE.read_bytes().replace(b"CM123", b"CM\xe9123")
    with pytest.raises(ParseError) as info:
        parse_settlement_csv(raw, file="x.csv")
    assert (info.value.line, info.value.field) == (5, "encoding")


# --- property tests ----------------------------------------------------------------------------------------

_cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_amount = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


@HYPOTHESIS
@given(column=st.integers(0, 13), value=st.one_of(_cell, st.sampled_from(["30-Jul-26", "12.5", "7", "INV"])))
def test_random_cell_is_an_error_or_a_faithful_row(column: int, value: str) -> None:
    text = _replace_cell(2, column, value)
    try:
        parsed = parse_settlement_csv(text, file="p.csv")
    except ParseError as err:
        assert err.file == "p.csv" and err.line == 3 and err.field
        return
    assert len(parsed) == 8
    row = parsed.rows[1]
    key = COLUMNS[column].key
    got = getattr(row, key)
    if key.endswith("amount"):
        assert got == (Decimal(value.strip()) if value.strip() else None)
    elif key == "application_date":
        assert got == parse_application_date(value)
    elif key == "application_id":
        assert got == (int(value) if value.strip() else None)
    elif key.startswith("reversal"):
        assert got == (value or None)
    else:
        assert got == value


@HYPOTHESIS
@given(cut=st.integers(0, len(SAMPLE.read_bytes().decode("utf-8"))))
def test_truncated_csv_is_an_error_or_a_prefix_of_the_rows(cut: int) -> None:
    text = _sample_text()[:cut]
    full = parse_settlement_file(SAMPLE)
    try:
        parsed = parse_settlement_csv(text, file="t.csv")
    except ParseError as err:
        assert err.file == "t.csv" and err.field
        return
    n = len(parsed)
    keep = max(n - 1, 0)
    assert parsed.rows[:keep] == full.rows[:keep]  # only the last row can be cut short
    complete_lines = text.count("\r\n")
    assert n in (complete_lines - 1, complete_lines)


@st.composite
def settlement_row(draw: st.DrawFn) -> SettlementRow:
    return SettlementRow(
        record_type=draw(st.one_of(st.sampled_from([t.value for t in RecordType]), _cell)),
        source_transaction_type=draw(_cell),
        source_transaction_number=draw(_cell),
        application_id=draw(st.one_of(st.none(), st.integers(0, 10**12))),
        application_date=draw(st.dates(min_value=date(1969, 1, 1), max_value=date(2068, 12, 31))),
        application_amount=draw(_amount),
        customer_account=draw(_cell),
        target_transaction_type=draw(st.sampled_from(["INV", "DM", "CM", "RECEIPT", "XX"])),
        target_transaction_number=draw(_cell),
        target_transaction_original_amount=draw(st.one_of(st.none(), _amount)),
        target_transaction_outstanding_amount=draw(st.one_of(st.none(), _amount)),
        target_transaction_status=draw(st.one_of(st.sampled_from([s.value for s in TargetStatus]), _cell)),
        reversal_reason_code=draw(st.one_of(st.none(), _cell.filter(bool))),
        reversal_reason_desc=draw(st.one_of(st.none(), _cell.filter(bool))),
    )


@HYPOTHESIS
@given(rows=st.lists(settlement_row(), max_size=5), style=st.sampled_from(["test", "parser"]))
def test_written_rows_parse_back_identically(rows: list[SettlementRow], style: str) -> None:
    text = write_settlement_csv(rows, header_style=style)
    parsed = parse_settlement_csv(text.encode("utf-8"))
    assert parsed.header == settlement_header(style) and parsed.header_style == style
    assert len(parsed) == len(rows)
    for original, back in zip(rows, parsed.rows, strict=True):
        a, b = original.to_dict(), back.to_dict()
        a.pop("line_number"), b.pop("line_number")
        assert a == b
