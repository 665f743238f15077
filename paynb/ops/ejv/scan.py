"""Read one FEEDBACK or INBOX file and list the records that name an invoice (what the search index holds).

A FEEDBACK file is scanned by a fast line scanner that slices only the fields a search reports, at the
positions of :mod:`paynb.formats.feedback` (docs/files.md#feedback). It applies the same checks as
:func:`paynb.formats.feedback.parse_feedback`; whenever it meets anything unusual it hands the file to that
parser, so the answer is always the strict parser's: the same rows, or the same ``ParseError``. (The strict
parser decodes every field of every line, about ten times slower; a cold search reads hundreds of MB.)

A file that does not parse is not fatal: :class:`FileScan` carries the error, and the lines that could be
decoded one by one are still returned, so an invoice in a damaged file is not hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from paynb.errors import ParseError
from paynb.formats import feedback as fb
from paynb.formats._text import BOM, OTHER_LINE_BREAKS, split_lines
from paynb.formats.flowthrough import parse_flowthrough
from paynb.formats.inbox import parse_inbox

FEEDBACK = "FEEDBACK"
INBOX = "INBOX"

#: the columns of a scanned row, in tuple order (also the index table's columns)
ROW_FIELDS: tuple[str, ...] = (
    "line",
    "offset",
    "record_type",
    "batch_type",
    "batch_number",
    "batch_return_code",
    "journal_name",
    "journal_return_code",
    "flowthrough",
    "invoice_id",
    "partner_disbursement_id",
    "refunds_partial_id",
    "debit_credit",
    "amount",
    "effective_date",
    "return_code",
    "return_message",
)
Row = tuple[Any, ...]

_RC = re.compile(r"[0-9A-Za-z]{4}\Z")
_AMOUNT = re.compile(r"-?[0-9]+\.[0-9]{2}\Z")
_EJV_BATCHES = (*fb.EJV_BATCH_TYPES, fb.AP_BATCH_TYPE)


@dataclass(frozen=True)
class FileScan:
    """What one file holds for a search: its rows, or the error that stopped the strict parser."""

    kind: str
    rows: tuple[Row, ...]
    error: str | None = None
    lines: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def file_kind(key: str) -> str | None:
    """``FEEDBACK`` or ``INBOX`` from the object name; ``None`` for anything else (``.TRG``, ACK, CSV)."""
    name = PurePosixPath(key).name
    if name.startswith("FEEDBACK"):
        return FEEDBACK
    if name.startswith("INBOX") and not name.upper().endswith(".TRG"):
        return INBOX
    return None


def scan_file(data: bytes, *, file: str, kind: str) -> FileScan:
    if kind == FEEDBACK:
        return scan_feedback(data, file=file)
    if kind == INBOX:
        return scan_inbox(data, file=file)
    raise ValueError(f"unknown file kind {kind!r}")


# --- FEEDBACK ------------------------------------------------------------------------------------------------


class _Unusual(Exception):
    """The fast scanner met something it leaves to the strict parser."""


def scan_feedback(data: bytes, *, file: str) -> FileScan:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _feedback_slow(data, file)
    if text.startswith(BOM):
        text = text[1:]
    if "\r" in text or any(c in text for c in OTHER_LINE_BREAKS):
        return _feedback_slow(data, file)
    try:
        rows, count = _fast_feedback(text)
    except _Unusual:
        return _feedback_slow(data, file)
    return FileScan(FEEDBACK, tuple(rows), None, count)


def _fast_feedback(text: str, *, lenient: bool = False) -> tuple[list[Row], int]:
    """One pass over ``\\n``-separated lines. Raises ``_Unusual`` (or, with ``lenient``, skips the line)."""
    rows: list[Row] = []
    append = rows.append
    batch_type: str | None = None
    batch_number: int | None = None
    batch_rc: str | None = None
    journal_rc: str | None = None
    open_batch = False
    offset = 0
    for number, line in enumerate(text.split("\n"), 1):
        start = offset
        offset += len(line) + 1
        if not line.strip():
            continue
        try:
            if len(line) < 4:
                raise _Unusual
            bt, rt = line[0:2], line[2:4]
            if rt == "BG":
                number_text = line[fb.BG_BATCH_NUMBER]
                if bt not in _EJV_BATCHES or open_batch or not _digits(number_text, 9):
                    raise _Unusual
                batch_type, batch_number, open_batch = bt, int(number_text), True
                batch_rc = journal_rc = None
                continue
            if not open_batch or bt != batch_type:
                raise _Unusual
            if rt == "JD" and bt != fb.AP_BATCH_TYPE:
                append(_detail_row(line, number, start, batch_type, batch_number, batch_rc, journal_rc))
            elif rt == "BH":
                batch_rc = _rc(line[fb.BH_RETURN_CODE])
            elif rt == "JH" and bt != fb.AP_BATCH_TYPE:
                _journal(line[fb.JH_JOURNAL])
                if not _AMOUNT.match(line[fb.JH_AMOUNT]):
                    raise _Unusual
                journal_rc = _rc(line[fb.JH_RETURN_CODE])
            elif rt == "BT":
                open_batch = False
            elif bt == fb.AP_BATCH_TYPE and rt in fb.AP_RECORD_TYPES:
                if rt == "IH":
                    rc = _rc(line[fb.IH_RETURN_CODE])
                    ref = line[fb.AP_REFERENCE].strip()
                    if _canonical_id(ref):
                        head = (number, start, bt, batch_number, batch_rc)
                        append(_ih_row(*head, int(ref), rc, line[fb.IH_MESSAGE].strip()))
            else:
                raise _Unusual
        except _Unusual:
            if not lenient:
                raise
    if open_batch and not lenient:
        raise _Unusual
    return rows, text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def _detail_row(
    raw: str,
    number: int,
    start: int,
    batch_type: str | None,
    batch_number: int | None,
    batch_rc: str | None,
    journal_rc: str | None,
) -> Row:
    line, _shift = fb.fix_short_detail_line(raw)
    journal = _journal(line[fb.JD_JOURNAL])
    day = line[fb.JD_EFFECTIVE_DATE]
    if not _digits(day, 8):
        raise _Unusual
    try:
        effective = date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        raise _Unusual from None
    amount = line[fb.JD_AMOUNT]
    if not _AMOUNT.match(amount):
        raise _Unusual
    dc = line[fb.JD_DEBIT_CREDIT]
    if dc != "C" and dc != "D":
        raise _Unusual
    try:
        flow = parse_flowthrough(line[fb.JD_FLOWTHROUGH].strip())
    except ParseError:
        raise _Unusual from None
    rc = _rc(line[fb.JD_RETURN_CODE])
    head = (number, start, "JD", batch_type, batch_number, batch_rc, journal, journal_rc)
    ids = (flow.text, flow.invoice_id, flow.partner_disbursement_id, flow.refunds_partial_id)
    money = (dc, format(Decimal(amount), "f"), effective.isoformat())
    return (*head, *ids, *money, rc, line[fb.JD_MESSAGE].strip())


def _ih_row(
    line: int,
    offset: int | None,
    batch_type: str | None,
    batch_number: int | None,
    batch_rc: str | None,
    invoice_id: int,
    rc: str | None,
    message: str | None,
) -> Row:
    """An AP ``IH`` line whose reference is an invoice id: no journal, flowthrough or amount."""
    head = (line, offset, "IH", batch_type, batch_number, batch_rc)
    return (*head, None, None, None, invoice_id, None, None, None, None, None, rc, message)


def _jd_row(
    r: Any,
    offset: int | None,
    batch_rc: str | None = None,
    journal_rc: str | None = None,
    result: tuple[str | None, str | None] = (None, None),
) -> Row:
    """A parsed JD record as a row; ``result`` is FEEDBACK's (return code, message), INBOX has none."""
    head = (r.line_number, offset, "JD", r.batch_type, r.batch_number, batch_rc, r.journal_name, journal_rc)
    ids = (r.flowthrough, r.invoice_id, r.partner_disbursement_id, r.refunds_partial_id)
    money = (r.debit_credit, _money(r.amount), _day(r.effective_date))
    return (*head, *ids, *money, *result)


def _digits(text: str, width: int | None = None) -> bool:
    return bool(text) and text.isascii() and text.isdigit() and (width is None or len(text) == width)


def _canonical_id(text: str) -> bool:
    """An AP reference that reads as an invoice id exactly as ``str(id)`` writes it (as ``find`` matches)."""
    return _digits(text) and (text == "0" or not text.startswith("0"))


def _rc(value: str) -> str:
    if not _RC.match(value):
        raise _Unusual
    return value


def _journal(name: str) -> str:
    if len(name) != 10 or not _digits(name[2:]):
        raise _Unusual
    return name


def _feedback_slow(data: bytes, file: str) -> FileScan:
    """The strict parser's answer; on a ParseError, the lines that decode one by one (best effort)."""
    try:
        parsed = fb.parse_feedback(data, file=file)
    except ParseError as err:
        return FileScan(FEEDBACK, tuple(_lenient_rows(data)), str(err), 0)
    return FileScan(FEEDBACK, tuple(_rows_from_feedback(parsed, data)), None, _count_lines(data))


def _lenient_rows(data: bytes) -> list[Row]:
    text = data.decode("utf-8-sig", errors="replace").lstrip(BOM)
    lines = [line.text for line in split_lines(text)]
    try:
        rows, _ = _fast_feedback("\n".join(lines), lenient=True)
    except _Unusual:  # pragma: no cover - lenient mode swallows every line problem
        return []
    return rows


def _line_offsets(data: bytes) -> dict[int, int]:
    text = data.decode("utf-8-sig", errors="replace")
    if text.startswith(BOM):
        text = text[1:]
    offsets: dict[int, int] = {}
    pos = 0
    for line in split_lines(text):
        offsets[line.number] = pos
        pos += len(line.text) + len(line.ending)
    return offsets


def _count_lines(data: bytes) -> int:
    return len(split_lines(data.decode("utf-8-sig", errors="replace")))


def _rows_from_feedback(parsed: fb.FeedbackFile, data: bytes) -> Iterable[Row]:
    offsets = _line_offsets(data)
    batch_rc: str | None = None
    journal_rc: str | None = None
    for r in parsed.records:
        if r.record_type == "BG":
            batch_rc = journal_rc = None
        elif r.record_type == "BH":
            batch_rc = r.return_code
        elif r.record_type == "JH":
            journal_rc = r.return_code
        elif r.record_type == "JD":
            result = (r.return_code, r.return_message)
            yield _jd_row(r, offsets.get(r.line_number), batch_rc, journal_rc, result)
        elif r.record_type == "IH" and r.ap_reference and _canonical_id(r.ap_reference):
            head = (r.line_number, offsets.get(r.line_number), r.batch_type, r.batch_number, batch_rc)
            yield _ih_row(*head, int(r.ap_reference), r.return_code, r.return_message)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


# --- INBOX ---------------------------------------------------------------------------------------------------


def scan_inbox(data: bytes, *, file: str) -> FileScan:
    """INBOX files are few and small: the strict parser reads them."""
    try:
        parsed = parse_inbox(data, file=file)
    except ParseError as err:
        return FileScan(INBOX, (), str(err), 0)
    offsets = _line_offsets(data)
    rows: list[Row] = []
    for r in parsed.records:
        offset = offsets.get(r.line_number)
        if r.record_type == "JD":
            rows.append(_jd_row(r, offset))
        elif r.record_type == "IH" and r.ap_reference and _canonical_id(r.ap_reference):
            head = (r.line_number, offset, r.batch_type, r.batch_number, None)
            rows.append(_ih_row(*head, int(r.ap_reference), None, None))
    return FileScan(INBOX, tuple(rows), None, len(parsed.records))
