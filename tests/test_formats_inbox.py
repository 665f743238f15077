"""INBOX parser/writer: the shared sample (docs/files.md#inbox), byte-for-byte round trips, names, re-dating,
field diff, builders, errors, and hypothesis round trips on generated files."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paynb.errors import ParseError
from paynb.formats.flowthrough import format_flowthrough
from paynb.formats.inbox import (
    GS,
    FieldChange,
    diff_inbox,
    fiscal_year,
    format_batch_header,
    format_batch_trailer,
    format_inbox_name,
    format_journal_detail,
    format_journal_header,
    gl_string,
    journal_batch_name,
    journal_name,
    parse_inbox,
    parse_inbox_file,
    parse_inbox_name,
    redate_inbox,
    trigger_name,
    write_inbox,
)

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "sbc-pay" / "rendered" / "INBOX.F3505.20260730190100.sample"
AP_SAMPLE = FIXTURES / "formats" / "INBOX.F3505.20260731190100.ap"

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_sample_records() -> None:
    inbox = parse_inbox_file(SAMPLE)
    assert [r.record_type for r in inbox] == ["BH", "JH", "JD", "JD", "JD", "JD", "BT"]
    assert inbox.feeder == "3505" and inbox.batch_numbers == (12,) and inbox.batch_types == ("GI",)
    bh, jh, bt = inbox.records[0], inbox.records[1], inbox.records[-1]
    assert (bh.feeder, bh.fiscal_year, bh.batch_number, bh.message_version) == ("3505", 2027, 12, "4010")
    assert (jh.journal_name, jh.ejv_header_id, jh.journal_batch_name) == ("FI00000034", 34, "FI000000012")
    assert jh.amount == Decimal("103.00")
    assert (bt.fiscal_year, bt.batch_number, bt.control_total, bt.amount) == (2027, 12, 5, Decimal("103.00"))
    details = inbox.details()
    assert [r.journal_line_number for r in details] == [1, 2, 3, 4]
    assert [r.amount for r in details] == [
        Decimal("100.00"),
        Decimal("100.00"),
        Decimal("3.00"),
        Decimal("3.00"),
    ]
    assert [r.debit_credit for r in details] == ["C", "D", "C", "D"]
    assert [r.gl_client for r in details] == ["112", "111", "112", "111"]
    assert details[0].gl_string == "1122222233333444455555590000000000"
    assert details[1].gl_string == "1119999999999999999999990000000000"
    assert inbox.effective_dates() == {date(2026, 7, 30)}
    assert {r.flowthrough for r in details} == {"1001"} and inbox.invoice_ids() == {1001}
    assert details[0].description == f"{'MINISTRY OF EXAMPLE':<95}#1001"
    assert {r.batch_number for r in inbox} == {12}
    assert inbox.verify_totals() == []


def test_sample_offsets_match_the_reference_table() -> None:
    """Absolute positions of docs/files.md#inbox (feeder width 4) against the typed values."""
    for r in parse_inbox_file(SAMPLE):
        line = r.raw.rstrip("\n")
        assert line[0:4] == "3505" and line[4:6] == "GI" and line[6:8] == r.record_type and line[8] == GS
        if r.record_type == "JD":
            assert len(line) == 318 and line[317] == GS
            assert line[9:19] == r.journal_name and int(line[19:24]) == r.journal_line_number
            assert line[24:32] == f"{r.effective_date:%Y%m%d}" and line[32:82].rstrip() == r.gl_string
            assert Decimal(line[91:106]) == r.amount and line[106] == r.debit_credit
            assert line[207:317].strip() == r.flowthrough
        if r.record_type == "JH":
            assert len(line) == 274 and line[59:63] == "ACAD" and Decimal(line[44:59]) == r.amount
        if r.record_type == "BT":
            assert int(line[26:41]) == r.control_total and Decimal(line[41:56]) == r.amount


def test_sample_round_trips_byte_for_byte() -> None:
    raw = SAMPLE.read_bytes()
    inbox = parse_inbox(raw, file=SAMPLE.name)
    assert inbox.to_bytes() == raw
    assert write_inbox(inbox).encode("utf-8") == raw


@pytest.mark.parametrize(
    "transform",
    [
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t.rstrip("\n"),
        lambda t: "\ufeff" + t,
        lambda t: t.replace(GS + "\n", "\n"),  # no closing separators
        lambda t: t.replace("\n", "\r"),
    ],
    ids=["crlf", "no-final-newline", "bom", "no-closing-gs", "cr"],
)
def test_variants_round_trip(transform) -> None:  # type: ignore[no-untyped-def]
    text = transform(SAMPLE.read_text(encoding="utf-8"))
    inbox = parse_inbox(text)
    assert write_inbox(inbox) == text
    assert inbox.to_bytes() == text.encode("utf-8")
    assert len(inbox.details()) == 4


def test_ap_inbox() -> None:
    raw = AP_SAMPLE.read_bytes()
    inbox = parse_inbox(raw)
    assert inbox.to_bytes() == raw
    assert [r.record_type for r in inbox] == ["BH", "IH", "IL", "NA", "IC", "BT"]
    assert inbox.batch_types == ("AP",) and inbox.batch_numbers == (103,)
    assert {r.ap_reference for r in inbox.records[1:5]} == {"RS0000123"}
    assert inbox.records[1].supplier_number == "123456"
    assert inbox.records[1].field_values()["ap_rest"].startswith(" " * 20 + "ST20260731GEN CHQ N")


def test_trg_and_names() -> None:
    assert (SAMPLE.parent / trigger_name(SAMPLE.name)).read_bytes() == b""
    assert parse_inbox_name("INBOX.F3505.20260730190100") == ("3505", datetime(2026, 7, 30, 19, 1, 0))
    assert parse_inbox_name("cgi_processed/INBOX.F3505.20260730190100")[0] == "3505"
    assert format_inbox_name("3505", datetime(2026, 8, 4, 9, 0, 1)) == "INBOX.F3505.20260804090001"
    assert trigger_name("INBOX.F3505.20260804090001") == "INBOX.F3505.20260804090001.TRG"
    for bad in ("INBOX.F3505.2026073019010", "INBOX.3505.20260730190100", "INBOX.F3505.20260230190100", "x"):
        with pytest.raises(ParseError) as info:
            parse_inbox_name(bad)
        assert info.value.field == "file name"


def test_redate_changes_only_detail_effective_dates() -> None:
    original = parse_inbox_file(SAMPLE)
    moved = redate_inbox(original, date(2026, 8, 4), file="INBOX.F3505.20260804190100")
    assert moved.file == "INBOX.F3505.20260804190100"
    assert moved.effective_dates() == {date(2026, 8, 4)}
    changes = diff_inbox(original, moved)
    assert changes == [FieldChange(line, "effective_date", "20260730", "20260804") for line in (3, 4, 5, 6)]
    before, after = write_inbox(original), write_inbox(moved)
    assert len(before) == len(after)
    assert before.count("20260730") == 4 and before.replace("20260730", "20260804") == after
    for a, b in zip(original, moved, strict=True):
        if a.record_type != "JD":
            assert a.raw == b.raw
    assert redate_inbox(original, date(2026, 7, 30)).to_text() == before


def test_redate_keeps_crlf_and_bom() -> None:
    text = "\ufeff" + SAMPLE.read_text(encoding="utf-8").replace("\n", "\r\n")
    moved = redate_inbox(parse_inbox(text), date(2026, 8, 4))
    assert write_inbox(moved) == text.replace("20260730", "20260804")


def test_diff_reports_structure_changes() -> None:
    a = parse_inbox_file(SAMPLE)
    text = SAMPLE.read_text(encoding="utf-8")
    b = parse_inbox(
        "\ufeff" + text.replace("\n", "\r\n", 1).replace("MINISTRY OF EXAMPLE ", "MINISTRY OF EXAMPLF ", 1)
    )
    changes = diff_inbox(a, b)
    assert FieldChange(1, "bom", "False", "True") in changes
    assert FieldChange(1, "line_ending", "'\\n'", "'\\r\\n'") in changes
    assert [c.field for c in changes if c.line == 3] == ["description"]
    assert diff_inbox(a, parse_inbox(text)) == []
    added = diff_inbox(a, parse_inbox(text + text))  # a second batch appended
    assert [c.field for c in added] == ["record"] * 7 and added[0].old is None and added[0].line == 8
    removed = diff_inbox(parse_inbox(text + text), a)
    assert [c.line for c in removed] == list(range(8, 15)) and removed[0].new is None


def test_builders_reproduce_the_sample_byte_for_byte() -> None:
    gl_c = gl_string("112", "22222", "33333", "4444", "5555559")
    gl_d = gl_string("111", "99999", "99999", "9999", "9999999")
    journal = journal_name("FI", 34)
    desc = f"{'MINISTRY OF EXAMPLE':<95}#1001"
    day = date(2026, 7, 30)
    text = (
        format_batch_header("3505", "GI", fiscal_year(day), 12)
        + format_journal_header("3505", "GI", journal, journal_batch_name("FI", 12), Decimal("103"))
        + format_journal_detail("3505", "GI", journal, 1, day, gl_c, Decimal("100"), "C", desc, "1001")
        + format_journal_detail("3505", "GI", journal, 2, day, gl_d, Decimal("100"), "D", desc, "1001")
        + format_journal_detail("3505", "GI", journal, 3, day, gl_c, Decimal("3"), "C", desc, "1001")
        + format_journal_detail("3505", "GI", journal, 4, day, gl_d, Decimal("3"), "D", desc, "1001")
        + format_batch_trailer("3505", "GI", 2027, 12, 5, Decimal("103"))
    )
    assert text.encode("utf-8") == SAMPLE.read_bytes()


def test_fiscal_year() -> None:
    assert fiscal_year(date(2026, 3, 31)) == 2026
    assert fiscal_year(date(2026, 4, 1)) == 2027


def test_verify_totals_finds_inconsistent_trailer() -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace(
        "000000000000005000000000103.00", "000000000000006000000000104.00"
    )
    problems = parse_inbox(text).verify_totals()
    assert len(problems) == 2 and "control total 6" in problems[0] and "batch total 104.00" in problems[1]


# --- errors ------------------------------------------------------------------------------------------------


def _lines() -> list[str]:
    return SAMPLE.read_text(encoding="utf-8").split("\n")


def _with(index: int, new: str) -> str:
    lines = _lines()
    lines[index] = new
    return "\n".join(lines)


def _jd_body(start: int, end: int, value: str) -> str:
    """Replace body[start:end] of the first JD record (line 3)."""
    line = _lines()[2]
    prefix, body, tail = line.split(GS)
    return _with(2, GS.join([prefix, body[:start] + value + body[end:], tail]))


ERRORS = {
    "no separator": (_with(2, _lines()[2].replace(GS, "")), 3, "record_type"),
    "text after closing GS": (_with(2, _lines()[2] + "x"), 3, "separator"),
    "GS inside body": (_jd_body(100, 101, GS), 3, "separator"),
    "bad batch type": (_with(0, _lines()[0].replace("3505GIBH", "3505GXBH")), 1, "batch_type"),
    "bad record type": (_with(2, _lines()[2].replace("3505GIJD", "3505GIJX")), 3, "record_type"),
    "AP record in EJV batch": (_with(2, _lines()[2].replace("3505GIJD", "3505GIIH")), 3, "record_type"),
    "short prefix": (_with(2, _lines()[2].replace("3505GIJD", "GIJD")), 3, "record_type"),
    "mixed batch type": (_with(2, _lines()[2].replace("3505GIJD", "3505GAJD")), 3, "batch_type"),
    "JD too short": (_jd_body(300, 308, ""), 3, "length"),
    "JH too long": (_with(1, _lines()[1].replace(GS + "FI", GS + "FIX", 1)), 2, "length"),
    "bad date": (_jd_body(15, 23, "20260230"), 3, "effective_date"),
    "bad amount": (_jd_body(82, 97, "000000000100,00"), 3, "amount"),
    "bad C/D": (_jd_body(97, 98, "c"), 3, "debit_credit"),
    "bad flowthrough": (_jd_body(198, 308, f"{'1001-PR-':<110}"), 3, "flowthrough"),
    "bad journal line number": (_jd_body(10, 15, "0000a"), 3, "journal_line_number"),
    "bad journal name": (_jd_body(0, 10, "FI0000003 "), 3, "journal_name"),
    "JH without ACAD": (_with(1, _lines()[1].replace("ACAD", "XCAD")), 2, "acad"),
    "feeder mismatch": (_with(0, _lines()[0].replace(GS + "3505", GS + "3506")), 1, "feeder"),
    "trailer batch number": (
        _with(6, _lines()[6].replace("2027000000012", "2027000000013")),
        7,
        "batch_number",
    ),
    "bad control total": (
        _with(6, _lines()[6].replace("000000000000005", "00000000000000x")),
        7,
        "control_total",
    ),
    "bad fiscal year": (_with(0, _lines()[0].replace(GS + "35052027", GS + "3505202X")), 1, "fiscal_year"),
    "record before BH": ("\n".join(_lines()[1:]), 1, "record_type"),
    "BH inside a batch": (_with(3, _lines()[0]), 4, "record_type"),
    "missing BT": ("\n".join(_lines()[:6]) + "\n", 6, "record_type"),
    "blank line": (_with(3, ""), 4, "record_type"),
    "empty file": ("", 1, "record_type"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_malformed_records_raise_parse_error(case: str) -> None:
    text, line, field = ERRORS[case]
    with pytest.raises(ParseError) as info:
        parse_inbox(text, file="INBOX.test")
    assert (info.value.file, info.value.line, info.value.field) == ("INBOX.test", line, field)


def test_invalid_utf8_names_the_line() -> None:
    raw = SAMPLE.read_bytes().replace(b"MINISTRY OF EXAMPLE", b"MINISTRY OF EX\xe9MPLE", 2)
    with pytest.raises(ParseError) as info:
        parse_inbox(raw, file="x")
    assert (info.value.line, info.value.field) == (3, "encoding")


def test_builders_refuse_fields_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        format_journal_detail(
            "3505", "GI", "FI00000001", 1, date(2026, 1, 2), "1" * 51, Decimal(1), "C", "", "1"
        )
    with pytest.raises(ValueError):
        journal_name("FIN", 1)


# --- property tests ----------------------------------------------------------------------------------------

_desc_chars = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85")
_money = st.decimals(
    min_value=0, max_value=Decimal("99999999.99"), places=2, allow_nan=False, allow_infinity=False
)
_flow = st.one_of(
    st.builds(format_flowthrough, st.integers(1, 10**9)),
    st.builds(
        lambda i, p, pr: format_flowthrough(i, partner_disbursement_id=p, is_partial_refund=pr),
        st.integers(1, 10**9),
        st.integers(1, 10**6),
        st.booleans(),
    ),
    st.builds(
        lambda i, r: format_flowthrough(i, refunds_partial_id=r), st.integers(1, 10**9), st.integers(1, 10**6)
    ),
)


@st.composite
def inbox_text(draw: st.DrawFn) -> tuple[str, list[dict[str, object]]]:
    feeder = draw(st.from_regex(r"[0-9]{1,6}", fullmatch=True))
    batch_type = draw(st.sampled_from(["GA", "GI"]))
    batch = draw(st.integers(0, 999_999_999))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    prefix = draw(st.from_regex(r"[A-Z]{2}", fullmatch=True))
    lines = [format_batch_header(feeder, batch_type, fiscal_year(day), batch)]
    expected: list[dict[str, object]] = []
    control, total = 0, Decimal(0)
    for header_id in draw(st.lists(st.integers(0, 99_999_999), min_size=1, max_size=3)):
        journal = journal_name(prefix, header_id)
        details = draw(
            st.lists(
                st.tuples(_money, st.sampled_from("CD"), st.text(_desc_chars, max_size=100), _flow),
                min_size=1,
                max_size=4,
            )
        )
        head_total = sum((d[0] for d in details), Decimal(0))
        lines.append(
            format_journal_header(feeder, batch_type, journal, journal_batch_name(prefix, batch), head_total)
        )
        control += 1 + len(details)
        total += head_total
        for number, (amount, cd, desc, flow) in enumerate(details, 1):
            gl = draw(st.from_regex(r"[0-9]{34}", fullmatch=True)) + " " * 16
            lines.append(
                format_journal_detail(feeder, batch_type, journal, number, day, gl, amount, cd, desc, flow)
            )
            expected.append(
                {
                    "ejv_header_id": header_id,
                    "journal_line_number": number,
                    "amount": amount,
                    "debit_credit": cd,
                    "description": desc.rstrip(),
                    "flowthrough": flow,
                    "effective_date": day,
                }
            )
    lines.append(format_batch_trailer(feeder, batch_type, fiscal_year(day), batch, control, total))
    text = "".join(line.replace("\n", ending) for line in lines)
    if draw(st.booleans()):
        text = text[: -len(ending)]
    return text, expected


@HYPOTHESIS
@given(generated=inbox_text(), new_day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_generated_files_round_trip_and_decode(
    generated: tuple[str, list[dict[str, object]]], new_day: date
) -> None:
    text, expected = generated
    inbox = parse_inbox(text)
    assert write_inbox(inbox) == text
    got = [{k: getattr(r, k) for k in expected[0]} for r in inbox.details()]
    assert got == expected
    moved = redate_inbox(inbox, new_day)
    assert {c.field for c in diff_inbox(inbox, moved)} <= {"effective_date"}
    assert moved.effective_dates() == {new_day}
    assert len(write_inbox(moved)) == len(text)


@HYPOTHESIS
@given(data=st.data())
def test_truncated_or_mutated_files_fail_cleanly_or_round_trip(data: st.DataObject) -> None:
    text, _ = data.draw(inbox_text())
    cut = data.draw(st.integers(0, len(text)))
    start = data.draw(st.integers(0, cut))
    noise = data.draw(st.text(max_size=5))
    for candidate in (text[:cut], text[:start] + noise + text[cut:]):
        try:
            inbox = parse_inbox(candidate, file="prop")
        except ParseError as err:
            assert err.file == "prop" and err.field
            continue
        assert write_inbox(inbox) == candidate
