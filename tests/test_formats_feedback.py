"""FEEDBACK parser: the shared samples (docs/files.md#feedback and the fixtures README), the extra fixtures in
tests/fixtures/formats/, every error path, and hypothesis tests (random/truncated lines)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paynb.errors import ParseError
from paynb.formats.feedback import (
    FeedbackFile,
    fix_short_detail_line,
    parse_feedback,
    parse_feedback_file,
    parse_feedback_name,
    render_feedback,
)
from paynb.formats.flowthrough import format_flowthrough, parse_flowthrough
from paynb.formats.inbox import parse_inbox_file

FIXTURES = Path(__file__).parent / "fixtures"
RENDERED = FIXTURES / "sbc-pay" / "rendered"
EXTRA = FIXTURES / "formats"
PAYMENT = RENDERED / "FEEDBACK.sample-gov-account-payment.txt"
PARTNER = RENDERED / "FEEDBACK.sample-partner-disbursement.txt"
INBOX_SAMPLE = RENDERED / "INBOX.F3505.20260730190100.sample"

HYPOTHESIS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def payment() -> FeedbackFile:
    return parse_feedback_file(PAYMENT)


@pytest.fixture(scope="module")
def partner() -> FeedbackFile:
    return parse_feedback_file(PARTNER)


# --- the shared samples ------------------------------------------------------------------------------------


def test_payment_sample_structure(payment: FeedbackFile) -> None:
    assert [r.record_type for r in payment] == ["BG", "BH", "JH", "JD", "JD", "JD", "JD", "JD", "JD", "BT"]
    assert [r.line_number for r in payment] == list(range(1, 11))
    assert payment.batch_number == 12 and payment.batch_numbers == (12,)
    assert {r.batch_number for r in payment} == {12}
    assert {r.batch_type for r in payment} == {"GA"}
    assert payment.file_type == "PAYMENT"
    assert payment.complete and payment.blank_lines == ()


def test_payment_sample_batch_and_journal_header(payment: FeedbackFile) -> None:
    bh, jh = payment.records[1], payment.records[2]
    assert (bh.return_code, bh.return_message, bh.is_success) == ("0000", "", True)
    assert jh.journal_name == "FI00000034" and jh.ejv_header_id == 34
    assert jh.amount == Decimal("103.00")
    assert (jh.return_code, jh.is_success) == ("0000", True)
    # sbc-pay stores line[0:42].strip() of the JH line as payments.receipt_number (docs/files.md#feedback)
    assert jh.receipt_number == "GAJH...FI00000034FI000000012"


def test_payment_sample_details(payment: FeedbackFile) -> None:
    details = payment.details()
    assert [r.debit_credit for r in details] == ["C", "D", "C", "D", "C", "D"]
    assert [r.amount for r in details] == [
        Decimal(v) for v in ("100.00", "100.00", "3.00", "3.00", "25.00", "25.00")
    ]
    assert [r.gl_client for r in details] == ["112", "111", "112", "111", "112", "111"]
    assert {r.effective_date for r in details} == {date(2026, 7, 30)}
    assert [r.journal_line_number for r in details] == [1, 2, 3, 4, 5, 6]
    assert {r.ejv_header_id for r in details} == {34}
    first = details[0]
    assert first.flowthrough == "1001" and first.invoice_id == 1001
    assert first.partner_disbursement_id is None and first.refunds_partial_id is None
    assert first.is_partial_refund is False
    assert first.gl_string == "1122222233333444455555590000000000"
    assert first.description is not None and first.description.endswith("#1001")
    assert first.shift_applied == 0


def test_payment_sample_partial_refund_and_error_line(payment: FeedbackFile) -> None:
    refund_lines = [r for r in payment if r.flowthrough == "1002-PR-7"]
    assert [r.line_number for r in refund_lines] == [8, 9]
    for r in refund_lines:
        assert (r.invoice_id, r.refunds_partial_id, r.partner_disbursement_id) == (1002, 7, None)
        assert r.is_partial_refund is True
    errors = payment.errors()
    assert [r.line_number for r in errors] == [9]
    error = errors[0]
    assert (error.return_code, error.return_message, error.is_success) == ("1111", "TESTERRORMESSAGE", False)
    assert error.debit_credit == "D"
    assert payment.invoice_ids() == {1001, 1002}
    assert [r.line_number for r in payment.find(1002)] == [8, 9]
    assert payment.find(999) == []


def test_partner_sample(partner: FeedbackFile) -> None:
    assert [r.record_type for r in partner] == ["BG", "BH", "JH", "JD", "JD", "JD", "JD", "BT"]
    assert partner.batch_number == 12
    assert partner.file_type == "DISBURSEMENT"
    jh = partner.records[2]
    assert (jh.journal_name, jh.ejv_header_id, jh.amount) == ("FI00000034", 34, Decimal("180.00"))
    details = partner.details()
    assert [r.flowthrough for r in details] == ["1001", "1001", "1001-55", "1001-55"]
    assert [r.partner_disbursement_id for r in details] == [None, None, 55, 55]
    assert {r.invoice_id for r in details} == {1001}
    assert [r.gl_client for r in details] == ["105", "112", "105", "112"]
    assert [r.debit_credit for r in details] == ["C", "D", "C", "D"]
    assert {r.amount for r in details} == {Decimal("90.00")}
    assert partner.errors() == []


@pytest.mark.parametrize("path", [PAYMENT, PARTNER])
def test_values_sit_at_the_documented_offsets(path: Path) -> None:
    """Cross-check against plain slicing with the docs/files.md#feedback positions."""
    for r in parse_feedback_file(path):
        line = r.raw
        if r.record_type == "BG":
            assert r.batch_number == int(line[15:24])
        if r.record_type == "BH":
            assert r.return_code == line[7:11]
        if r.record_type == "JH":
            assert (r.journal_name, r.return_code) == (line[7:17], line[271:275])
            assert r.amount == Decimal(line[42:57])
        if r.record_type == "JD":
            assert r.journal_name == line[7:17] and r.ejv_header_id == int(line[9:17])
            assert r.effective_date == datetime.strptime(line[22:30], "%Y%m%d").date()
            assert (r.gl_client, r.debit_credit) == (line[30:33], line[104:105])
            assert r.amount == Decimal(line[89:104])
            assert r.flowthrough == line[205:315].strip()
            assert (r.return_code, r.return_message) == (line[315:319], line[319:469].strip())


def test_to_dict_has_snake_case_keys(payment: FeedbackFile) -> None:
    d = payment.records[8].to_dict()
    for key in (
        "line_number",
        "record_type",
        "batch_number",
        "journal_name",
        "ejv_header_id",
        "flowthrough",
        "invoice_id",
        "partner_disbursement_id",
        "refunds_partial_id",
        "return_code",
        "return_message",
        "debit_credit",
        "effective_date",
        "amount",
        "gl_client",
        "is_success",
    ):
        assert key in d
    assert "raw" not in d
    assert d["amount"] == Decimal("25.00") and d["effective_date"] == date(2026, 7, 30)
    assert d["is_success"] is False


# --- extra fixtures ----------------------------------------------------------------------------------------


def test_short_jd_line_is_realigned_like_sbc_pay() -> None:
    short = parse_feedback_file(EXTRA / "FEEDBACK.short-jd-line.txt")
    original = parse_feedback_file(PAYMENT)
    line4 = short.records[3]
    assert len(line4.raw) == len(original.records[3].raw) - 5
    assert line4.shift_applied == 5
    skip = {"shift_applied"}
    assert {k: v for k, v in line4.to_dict().items() if k not in skip} == {
        k: v for k, v in original.records[3].to_dict().items() if k not in skip
    }
    assert [r.shift_applied for r in short.details()] == [5, 0, 0, 0, 0, 0]


def test_fix_short_detail_line_matches_the_reference_rule() -> None:
    line = "x" * 300 + "   " + "0000MSG"
    fixed, inserted = fix_short_detail_line(line)
    assert inserted == 12 and fixed[315:319] == "0000"
    untouched = "x" * 300 + " " * 15 + "0000"
    assert fix_short_detail_line(untouched) == (untouched, 0)


def test_short_line_with_an_error_code_is_not_realigned_and_fails_cleanly() -> None:
    lines = PAYMENT.read_text(encoding="utf-8").split("\n")
    lines[8] = lines[8][:300] + lines[8][305:]  # the 1111 error line, 5 short: no '0' lands in [300:315]
    with pytest.raises(ParseError) as info:
        parse_feedback("\n".join(lines), file="short-error")
    assert (info.value.file, info.value.line, info.value.field) == ("short-error", 9, "flowthrough")


def test_every_flowthrough_form() -> None:
    fb = parse_feedback_file(EXTRA / "FEEDBACK.all-flowthrough-forms.txt")
    assert fb.batch_numbers == (101, 102)
    assert fb.batch_types == ("GI", "GA")
    decoded = {
        r.flowthrough: (r.invoice_id, r.partner_disbursement_id, r.refunds_partial_id, r.is_partial_refund)
        for r in fb.details()
    }
    assert decoded == {
        "2001": (2001, None, None, False),
        "2002-301": (2002, 301, None, False),
        "2003-302-PR": (2003, 302, None, True),
        "2004-PR-401": (2004, None, 401, True),
        "2005-PR": (2005, None, None, True),
    }
    assert {r.batch_number for r in fb if r.line_number <= 8} == {101}
    assert {r.batch_number for r in fb if r.line_number > 8} == {102}
    bh = fb.records[9]
    assert (bh.record_type, bh.return_code, bh.return_message) == ("BH", "9999", "BATCH REJECTED")
    jh = fb.records[10]
    assert (jh.ejv_header_id, jh.return_code, jh.return_message) == (
        202,
        "0703",
        "GL EFFECTIVE DATE NOT OPEN",
    )
    assert [r.line_number for r in fb.errors()] == [10, 11, 14, 15]
    assert fb.file_type == "DISBURSEMENT"


def test_ap_batches() -> None:
    fb = parse_feedback_file(EXTRA / "FEEDBACK.ap-batch.txt")
    assert fb.file_type == "AP"
    assert fb.batch_numbers == (103, 104)
    assert [r.record_type for r in fb][:7] == ["BG", "BH", "IH", "IL", "NA", "IC", "BT"]
    ih = fb.records[2]
    assert (ih.ap_reference, ih.return_code, ih.is_success) == ("RS0000123", "0000", True)
    assert ih.raw[414:418] == "0000"
    assert [r.ap_reference for r in fb.records[3:6]] == ["RS0000123"] * 3
    assert all(r.return_code is None for r in fb.records[3:6])
    failed = fb.errors()
    assert [(r.line_number, r.ap_reference, r.return_code, r.return_message) for r in failed] == [
        (10, "7001", "2345", "SUPPLIER SITE INACTIVE")
    ]
    assert fb.invoice_ids() == set()
    assert [r.line_number for r in fb.find(7001)] == [10]


def test_rendered_feedback_agrees_with_its_inbox() -> None:
    inbox = parse_inbox_file(INBOX_SAMPLE)
    failing = {4}

    def outcome(record):  # type: ignore[no-untyped-def]
        return ("1234", "GL NOT VALID") if record.line_number in failing else ("0000", "")

    fb = parse_feedback(render_feedback(inbox, outcome=outcome))
    assert fb.batch_number == inbox.batch_numbers[0] == 12
    assert fb.batch_types == ("GI",)
    pairs = list(zip(inbox.details(), fb.details(), strict=True))
    for a, b in pairs:
        for name in ("journal_name", "ejv_header_id", "journal_line_number", "effective_date", "amount"):
            assert getattr(a, name) == getattr(b, name), name
        assert (a.debit_credit, a.gl_client, a.gl_string, a.flowthrough) == (
            b.debit_credit,
            b.gl_client,
            b.gl_string,
            b.flowthrough,
        )
    assert [(r.line_number, r.return_code) for r in fb.errors()] == [(5, "1234")]
    assert fb.records[2].amount == Decimal("103.00")


# --- input variations --------------------------------------------------------------------------------------


def test_bytes_bom_and_crlf_give_the_same_records(payment: FeedbackFile) -> None:
    raw = PAYMENT.read_bytes()
    variants = [raw, b"\xef\xbb\xbf" + raw, raw.replace(b"\n", b"\r\n"), raw.decode("utf-8")]
    for variant in variants:
        parsed = parse_feedback(variant, file="v")
        assert [r.to_dict() for r in parsed] == [r.to_dict() for r in payment]


def test_blank_lines_are_listed_not_records() -> None:
    text = PAYMENT.read_text(encoding="utf-8").replace("\n", "\n\n", 1) + "\n   \n"
    parsed = parse_feedback(text)
    assert parsed.blank_lines == (2, 12)
    assert len(parsed) == 10
    assert parsed.records[1].line_number == 3


def test_missing_trailer_can_be_accepted_explicitly() -> None:
    text = "\n".join(PAYMENT.read_text(encoding="utf-8").split("\n")[:-1])
    with pytest.raises(ParseError) as info:
        parse_feedback(text, file="cut")
    assert (info.value.line, info.value.field) == (9, "record_type")
    parsed = parse_feedback(text, require_trailer=False)
    assert not parsed.complete and len(parsed) == 9


def test_feedback_name() -> None:
    assert parse_feedback_name("FEEDBACK.F3505.20260122214830") == ("3505", datetime(2026, 1, 22, 21, 48, 30))
    assert parse_feedback_name("cgi_feedback/FEEDBACK.F3505.20260122214830")[0] == "3505"
    for bad in (
        "FEEDBACK.F3505.2026012221483",
        "INBOX.F3505.20260122214830",
        "FEEDBACK.F3505.20261322214830",
    ):
        with pytest.raises(ParseError):
            parse_feedback_name(bad)


# --- errors ------------------------------------------------------------------------------------------------


def _lines() -> list[str]:
    return PAYMENT.read_text(encoding="utf-8").split("\n")


def _with(line_index: int, new: str) -> str:
    lines = _lines()
    lines[line_index] = new
    return "\n".join(lines)


def _jd(start: int, end: int, value: str) -> str:
    line = _lines()[3]
    return _with(3, line[:start] + value + line[end:])


ERROR_CASES = {
    "record before any batch": ("\n".join(_lines()[3:]), 1, "record_type"),
    "unknown record type": (_with(3, "GAXX" + _lines()[3][4:]), 4, "record_type"),
    "AP record in an EJV batch": (_with(3, "GAIH" + _lines()[3][4:]), 4, "record_type"),
    "bad batch group": (_with(0, "ZZBG" + _lines()[0][4:]), 1, "batch_type"),
    "batch number not digits": (_with(0, "GABG...........00000001X..."), 1, "batch_number"),
    "batch number missing": (_with(0, "GABG......."), 1, "batch_number"),
    "batch type changes inside batch": (_with(3, "GI" + _lines()[3][2:]), 4, "batch_type"),
    "second BG before BT": (_with(4, _lines()[0]), 5, "record_type"),
    "line too short": (_with(3, "GA"), 4, "record_type"),
    "GS inside a line": (_jd(120, 121, chr(29)), 4, "line"),
    "bad effective date": (_jd(22, 30, "20261332"), 4, "effective_date"),
    "effective date with blanks": (_jd(22, 30, "2026 730"), 4, "effective_date"),
    "bad amount": (_jd(89, 104, "0000000001O0.00"), 4, "amount"),
    "amount with blanks": (_jd(89, 104, "         100.00"), 4, "amount"),
    "bad C/D flag": (_jd(104, 105, "X"), 4, "debit_credit"),
    "empty flow-through": (_jd(205, 315, " " * 110), 4, "flowthrough"),
    "flow-through with text": (_jd(205, 315, f"{'INV1001':<110}"), 4, "flowthrough"),
    "return code cut off": (_with(3, _lines()[3][:317]), 4, "return_code"),
    "return code blank": (_jd(315, 319, "    "), 4, "return_code"),
    "journal name not digits": (_jd(7, 17, "FI0000003X"), 4, "journal_name"),
    "JH journal name bad": (_with(2, _lines()[2][:9] + "ABCDEFGH" + _lines()[2][17:]), 3, "journal_name"),
    "JH amount bad": (_with(2, _lines()[2][:42] + "x" * 15 + _lines()[2][57:]), 3, "amount"),
    "JH return code missing": (_with(2, _lines()[2][:271]), 3, "return_code"),
    "BH return code missing": (_with(1, "GABH..."), 2, "return_code"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_malformed_lines_raise_parse_error_naming_line_and_field(case: str) -> None:
    text, line, field = ERROR_CASES[case]
    with pytest.raises(ParseError) as info:
        parse_feedback(text, file="FEEDBACK.F3505.test")
    err = info.value
    assert (err.file, err.line, err.field) == ("FEEDBACK.F3505.test", line, field)
    assert f"FEEDBACK.F3505.test:{line}" in str(err) and repr(field) in str(err)


def test_undecodable_bytes_name_the_line() -> None:
    raw = PAYMENT.read_bytes().replace(b"TESTERRORMESSAGE", b"TEST\xffRRORMESSAGE")
    with pytest.raises(ParseError) as info:
        parse_feedback(raw, file="f")
    assert (info.value.line, info.value.field) == (9, "encoding")


def test_unreadable_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError):
        parse_feedback_file(tmp_path / "missing")


# --- property tests ----------------------------------------------------------------------------------------

SAMPLE_LINES = _lines()
_chars = st.characters(blacklist_categories=("Cs",))
random_line = st.one_of(
    st.text(_chars, max_size=600),
    st.text("GABHJDTG0123456789.CDPR- ", max_size=480),
)


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(SAMPLE_LINES[1:-1]))
    start = draw(st.integers(0, len(base)))
    end = draw(st.integers(start, min(len(base), start + 20)))
    return base[:start] + draw(st.text(_chars, max_size=20)) + base[end:]


def _check_parse(text: str) -> None:
    """Either a clean ParseError, or every non-blank line became a record whose values match its text."""
    try:
        parsed = parse_feedback(text, file="prop")
    except ParseError as err:
        assert err.file == "prop" and err.field
        return
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    non_blank = [number for number, line in enumerate(physical, 1) if line.strip()]
    assert [r.line_number for r in parsed] == non_blank
    for r in parsed:
        if r.record_type == "JD":
            fixed, shift = fix_short_detail_line(r.raw)
            assert shift == r.shift_applied
            assert r.amount == Decimal(fixed[89:104])
            assert r.flowthrough == fixed[205:315].strip()
            assert r.return_code == fixed[315:319]
            assert r.debit_credit == fixed[104]


@HYPOTHESIS
@given(line=st.one_of(random_line, mutated_line()), position=st.integers(1, len(SAMPLE_LINES) - 1))
def test_random_line_inside_a_batch_is_an_error_or_a_correct_record(line: str, position: int) -> None:
    lines = list(SAMPLE_LINES)
    lines.insert(position, line)
    _check_parse("\n".join(lines))


@HYPOTHESIS
@given(line=st.one_of(random_line, mutated_line()))
def test_random_line_replacing_a_detail_is_an_error_or_a_correct_record(line: str) -> None:
    lines = list(SAMPLE_LINES)
    lines[3] = line
    _check_parse("\n".join(lines))


@HYPOTHESIS
@given(data=st.data())
def test_truncated_file_is_an_error_or_a_correct_parse(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([PAYMENT, PARTNER])).read_text(encoding="utf-8")
    cut = data.draw(st.integers(0, len(text)))
    _check_parse(text[:cut])


# --- flow-through ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "form"),
    [
        ("1111", (1111, None, None, False), "invoice"),
        ("1111-2222", (1111, 2222, None, False), "invoice-disbursement"),
        ("1111-2222-PR", (1111, 2222, None, True), "invoice-disbursement-PR"),
        ("1111-PR-3333", (1111, None, 3333, True), "invoice-PR-refund"),
        ("1111-PR", (1111, None, None, True), "invoice-PR"),
        ("0042", (42, None, None, False), "invoice"),
    ],
)
def test_flowthrough_forms(text: str, expected: tuple[object, ...], form: str) -> None:
    flow = parse_flowthrough(text)
    assert (
        flow.invoice_id,
        flow.partner_disbursement_id,
        flow.refunds_partial_id,
        flow.is_partial_refund,
    ) == expected
    assert flow.form == form and flow.text == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "1-",
        "1--2",
        "1-PR-",
        "1-2-3",
        "PR",
        "1 2",
        " 1",
        "\uff11\uff12",
        "1-pr-2",
        "1-2-PR-3",
        "1" * 19,
    ],
)
def test_flowthrough_rejects_other_shapes(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_flowthrough(text, file="f", line=3)
    assert (info.value.file, info.value.line, info.value.field) == ("f", 3, "flowthrough")


@HYPOTHESIS
@given(
    invoice=st.integers(0, 10**18 - 1),
    other=st.one_of(st.none(), st.integers(0, 10**18 - 1)),
    kind=st.sampled_from(["disbursement", "refund"]),
    partial=st.booleans(),
)
def test_flowthrough_format_parse_round_trip(
    invoice: int, other: int | None, kind: str, partial: bool
) -> None:
    if kind == "refund" and other is not None:
        text = format_flowthrough(invoice, refunds_partial_id=other)
        expected = (invoice, None, other, True)
    else:
        text = format_flowthrough(invoice, partner_disbursement_id=other, is_partial_refund=partial)
        expected = (invoice, other, None, partial)
    flow = parse_flowthrough(text)
    assert (
        flow.invoice_id,
        flow.partner_disbursement_id,
        flow.refunds_partial_id,
        flow.is_partial_refund,
    ) == expected
    with pytest.raises(ValueError):
        format_flowthrough(invoice, partner_disbursement_id=1, refunds_partial_id=2)
