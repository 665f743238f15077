"""CGI FEEDBACK files (CAS's answer to an INBOX): EJV (``GA``/``GI``) and AP batches.

Positions are those of docs/files.md#feedback (0-based, end-exclusive), i.e. what sbc-pay's
``queue/services/cgi_reconciliations.py`` reads. A FEEDBACK line is the INBOX record with its 9-char prefix
``{feeder}{bt}{rt}<GS>`` replaced by ``{bt}{rt}`` + 3 filler characters, so every INBOX field sits 2 positions
earlier, followed by a 4-char return code and a 150-char message.

Strict where sbc-pay depends on a field (batch number, journal name, effective date, amount, C/D,
flow-through, return codes): a malformed value is a ``ParseError`` naming file, line and field. Fields sbc-pay
never reads (JD line number, GL string, supplier, description) are decoded when possible and otherwise left
``None``. Nothing is skipped silently: blank lines are listed in ``FeedbackFile.blank_lines`` and every other
line becomes a record (or an error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from paynb.errors import ParseError
from paynb.formats._text import (
    BOM,
    decode,
    find_other_line_break,
    is_digits,
    parse_fixed_amount,
    parse_yyyymmdd,
    read_bytes,
    split_lines,
)
from paynb.formats.flowthrough import parse_flowthrough

if TYPE_CHECKING:
    from paynb.formats.inbox import InboxFile, InboxRecord

SUCCESS_CODE = "0000"

EJV_BATCH_TYPES = ("GA", "GI")
AP_BATCH_TYPE = "AP"
EJV_RECORD_TYPES = frozenset({"BH", "JH", "JD", "BT"})
AP_RECORD_TYPES = frozenset({"BH", "IH", "IL", "NA", "IC", "BT"})

# --- offsets (docs/files.md#feedback) ------------------------------------------------------------------
BATCH_TYPE = slice(0, 2)
RECORD_TYPE = slice(2, 4)
BG_BATCH_NUMBER = slice(15, 24)
BH_RETURN_CODE = slice(7, 11)
BH_MESSAGE = slice(11, 161)
JH_RECEIPT = slice(0, 42)  # sbc-pay stores line[0:42].strip() as payments.receipt_number (docs/files.md)
JH_JOURNAL = slice(7, 17)
JH_AMOUNT = slice(42, 57)
JH_RETURN_CODE = slice(271, 275)
JH_MESSAGE = slice(275, 425)
JD_JOURNAL = slice(7, 17)
JD_LINE_NUMBER = slice(17, 22)  # INBOX [19:24] shifted by 2; not read by sbc-pay
JD_EFFECTIVE_DATE = slice(22, 30)
JD_GL_CLIENT = slice(30, 33)
JD_GL_STRING = slice(30, 80)  # INBOX [32:82] shifted by 2; not read by sbc-pay
JD_SUPPLIER = slice(80, 89)  # not read by sbc-pay
JD_AMOUNT = slice(89, 104)
JD_DEBIT_CREDIT = slice(104, 105)
JD_DESCRIPTION = slice(105, 205)  # not read by sbc-pay
JD_FLOWTHROUGH = slice(205, 315)
JD_RETURN_CODE = slice(315, 319)
JD_MESSAGE = slice(319, 469)
AP_REFERENCE = slice(19, 69)  # routing slip number / eft_refunds.id / invoice id
IH_RETURN_CODE = slice(414, 418)
IH_MESSAGE = slice(418, 568)

# the return code is 4 letters/digits; anything else means the line is misaligned
_RETURN_CODE = re.compile(r"[0-9A-Za-z]{4}\Z")


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One FEEDBACK line, decoded. Fields that do not apply to the record type are ``None``."""

    line_number: int
    record_type: str
    batch_type: str
    batch_number: int | None = None
    journal_name: str | None = None
    ejv_header_id: int | None = None
    journal_line_number: int | None = None
    flowthrough: str | None = None
    invoice_id: int | None = None
    partner_disbursement_id: int | None = None
    refunds_partial_id: int | None = None
    is_partial_refund: bool | None = None
    return_code: str | None = None
    return_message: str | None = None
    debit_credit: str | None = None
    effective_date: date | None = None
    amount: Decimal | None = None
    gl_client: str | None = None
    gl_string: str | None = None
    supplier_number: str | None = None
    description: str | None = None
    receipt_number: str | None = None
    ap_reference: str | None = None
    #: spaces inserted by the ``_fix_invoice_line`` work-around (short CAS JD lines); 0 = line as received
    shift_applied: int = 0
    raw: str = field(default="", repr=False, compare=False)

    @property
    def is_success(self) -> bool | None:
        """``True`` for return code ``0000``, ``False`` for any other code, ``None`` if the record has none."""
        return None if self.return_code is None else self.return_code == SUCCESS_CODE

    @property
    def is_ap(self) -> bool:
        return self.batch_type == AP_BATCH_TYPE

    def to_dict(self) -> dict[str, Any]:
        """snake_case keys; Decimal and date objects are kept (``paynb.canonical`` renders them)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}
        out["is_success"] = self.is_success
        return out


@dataclass(frozen=True, slots=True)
class FeedbackFile:
    file: str
    records: tuple[FeedbackRecord, ...]
    blank_lines: tuple[int, ...] = ()
    #: ``False`` only when parsed with ``require_trailer=False`` and the last batch has no BT line
    complete: bool = True

    def __iter__(self) -> Iterator[FeedbackRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def batch_numbers(self) -> tuple[int, ...]:
        """``ejv_files.id`` of every batch, in file order."""
        return tuple(
            r.batch_number for r in self.records if r.record_type == "BG" and r.batch_number is not None
        )

    @property
    def batch_number(self) -> int | None:
        """The first batch's number (most files hold one batch)."""
        numbers = self.batch_numbers
        return numbers[0] if numbers else None

    @property
    def batch_types(self) -> tuple[str, ...]:
        return tuple(r.batch_type for r in self.records if r.record_type == "BG")

    @property
    def file_type(self) -> str | None:
        """Best guess of ``ejv_files.file_type``: ``PAYMENT``, ``DISBURSEMENT``, ``AP`` or ``None``.

        FEEDBACK does not say which it is. Evidence used, strongest first: AP batches; a flow-through
        with a partner disbursement id (only partner files have one); ``-PR-<id>`` (only gov-account payment
        files); GL clients (payment files credit BC Registries ``112``; disbursement files debit it).
        """
        if any(t == AP_BATCH_TYPE for t in self.batch_types):
            return "AP"
        details = self.details()
        if not details:
            return None
        if any(r.partner_disbursement_id is not None for r in details):
            return "DISBURSEMENT"
        if any(r.refunds_partial_id is not None for r in details):
            return "PAYMENT"
        credits = [r.gl_client for r in details if r.debit_credit == "C"]
        debits = [r.gl_client for r in details if r.debit_credit == "D"]
        if credits and all(c == "112" for c in credits):
            return "PAYMENT"
        if debits and all(d == "112" for d in debits):
            return "DISBURSEMENT"
        return None

    def details(self) -> list[FeedbackRecord]:
        """The JD (journal detail) records."""
        return [r for r in self.records if r.record_type == "JD"]

    def errors(self) -> list[FeedbackRecord]:
        """Records whose return code is not ``0000``."""
        return [r for r in self.records if r.is_success is False]

    def invoice_ids(self) -> set[int]:
        """Invoice ids named by JD flow-throughs (AP lines carry ``ap_reference`` instead; see :meth:`find`)."""
        return {r.invoice_id for r in self.records if r.invoice_id is not None}

    def find(self, invoice_id: int) -> list[FeedbackRecord]:
        """Records that mention this invoice: JD flow-throughs, and AP lines whose reference is the id."""
        text = str(invoice_id)
        return [r for r in self.records if r.invoice_id == invoice_id or (r.is_ap and r.ap_reference == text)]


def parse_feedback(
    text: str | bytes, *, file: str = "<string>", require_trailer: bool = True
) -> FeedbackFile:
    """Parse a FEEDBACK file (text, or bytes decoded as ``utf-8-sig`` like sbc-pay does).

    ``require_trailer=False`` accepts a last batch without its BT line (``complete`` is then ``False``),
    for searching a file that was cut short. Example::

        fb = parse_feedback_file("FEEDBACK.F3505.20260731190100")
        fb.batch_number, [(r.line_number, r.flowthrough, r.return_message) for r in fb.errors()]
    """
    content = decode(text, file=file, encoding="utf-8-sig")
    if content.startswith(BOM):
        content = content[1:]
    odd = find_other_line_break(content)
    if odd is not None:
        raise ParseError(
            f"control character {odd[1]!r} inside the line (sbc-pay would split the line there)",
            file=file,
            line=odd[0],
            field="line",
        )
    parser = _Parser(file)
    records: list[FeedbackRecord] = []
    blanks: list[int] = []
    for line in split_lines(content):
        if not line.text.strip():
            blanks.append(line.number)
            continue
        records.append(parser.parse_line(line.text, line.number))
    complete = parser.open_batch_line is None
    if not complete and require_trailer:
        raise ParseError(
            f"batch opened at line {parser.open_batch_line} has no BT trailer (truncated file?);"
            " sbc-pay silently ignores such a batch",
            file=file,
            line=records[-1].line_number if records else None,
            field="record_type",
        )
    return FeedbackFile(file=file, records=tuple(records), blank_lines=tuple(blanks), complete=complete)


def parse_feedback_file(path: str | Path, *, require_trailer: bool = True) -> FeedbackFile:
    return parse_feedback(read_bytes(path), file=str(path), require_trailer=require_trailer)


_FEEDBACK_NAME = re.compile(r"(?P<prefix>[A-Za-z]+)\.F(?P<feeder>[0-9A-Za-z]+)\.(?P<stamp>[0-9]{14})\Z")


def parse_feedback_name(name: str, *, prefix: str = "FEEDBACK") -> tuple[str, datetime]:
    """``FEEDBACK.F3505.20260122214830`` (or an object key ending so) -> ``("3505", datetime)``."""
    base = PurePosixPath(name).name
    match = _FEEDBACK_NAME.match(base)
    if match is None or match["prefix"] != prefix:
        raise ParseError(f"not a {prefix}.F<feeder>.<YYYYMMDDHHMMSS> name: {base!r}", field="file name")
    try:
        stamp = datetime.strptime(match["stamp"], "%Y%m%d%H%M%S")
    except ValueError:
        raise ParseError(f"bad timestamp in file name {base!r}", field="file name") from None
    return match["feeder"], stamp


def fix_short_detail_line(line: str) -> tuple[str, int]:
    """sbc-pay's ``_fix_invoice_line`` work-around for CAS JD lines shorter than the spec.

    If a ``'0'`` occurs in ``[300:315]`` (the tail of the flow-through field, normally blank), spaces are
    inserted before it so it lands at 315, where the return code belongs. Returns the line and the number of
    spaces inserted. A short line whose return code does not start with 0 is *not* realigned (as in sbc-pay);
    its flow-through then fails to decode, which surfaces as a ``ParseError``.
    """
    position = line[300:315].find("0")
    if position < 0:
        return line, 0
    inserted = 15 - position
    return line[: 300 + position] + " " * inserted + line[300 + position :], inserted


class _Parser:
    """Line-by-line state: which batch (BG..BT) we are in."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.batch_type: str | None = None
        self.batch_number: int | None = None
        self.open_batch_line: int | None = None

    def fail(self, message: str, line: int, field: str) -> ParseError:
        return ParseError(message, file=self.file, line=line, field=field)

    def parse_line(self, text: str, number: int) -> FeedbackRecord:
        if len(text) < 4:
            raise self.fail(f"line too short for a record type: {text!r}", number, "record_type")
        batch_type, record_type = text[BATCH_TYPE], text[RECORD_TYPE]
        if record_type == "BG":
            return self._batch_group(text, number, batch_type)
        if self.open_batch_line is None:
            raise self.fail(
                f"{batch_type}{record_type} record outside a batch (expected GABG, GIBG or APBG first)",
                number,
                "record_type",
            )
        if batch_type != self.batch_type:
            raise self.fail(
                f"batch type {batch_type!r} inside a {self.batch_type} batch (opened at line {self.open_batch_line})",
                number,
                "batch_type",
            )
        allowed = AP_RECORD_TYPES if batch_type == AP_BATCH_TYPE else EJV_RECORD_TYPES
        if record_type not in allowed:
            raise self.fail(
                f"unknown record type {record_type!r} for a {batch_type} batch (expected {', '.join(sorted(allowed))})",
                number,
                "record_type",
            )
        base = {
            "line_number": number,
            "record_type": record_type,
            "batch_type": batch_type,
            "batch_number": self.batch_number,
            "raw": text,
        }
        if record_type == "BH":
            return FeedbackRecord(**base, **self._code_and_message(text, number, BH_RETURN_CODE, BH_MESSAGE))
        if record_type == "JH":
            return self._journal_header(text, number, base)
        if record_type == "JD":
            return self._journal_detail(text, number, base)
        if record_type == "IH":
            return FeedbackRecord(
                **base,
                ap_reference=text[AP_REFERENCE].strip() or None,
                **self._code_and_message(text, number, IH_RETURN_CODE, IH_MESSAGE),
            )
        if record_type == "BT":
            self.open_batch_line = None
            return FeedbackRecord(**base)
        # AP IL / NA / IC: sbc-pay reads nothing from them
        return FeedbackRecord(**base, ap_reference=text[AP_REFERENCE].strip() or None)

    def _batch_group(self, text: str, number: int, batch_type: str) -> FeedbackRecord:
        if batch_type not in (*EJV_BATCH_TYPES, AP_BATCH_TYPE):
            raise self.fail(f"batch group {text[:4]!r} (expected GABG, GIBG or APBG)", number, "batch_type")
        if self.open_batch_line is not None:
            raise self.fail(
                f"new batch starts before the batch opened at line {self.open_batch_line} got its BT trailer",
                number,
                "record_type",
            )
        raw_number = text[BG_BATCH_NUMBER]
        if len(raw_number) != 9 or not is_digits(raw_number):
            raise self.fail(
                f"expected a 9-digit batch number at [15:24], got {raw_number!r}", number, "batch_number"
            )
        self.batch_type = batch_type
        self.batch_number = int(raw_number)
        self.open_batch_line = number
        return FeedbackRecord(
            line_number=number,
            record_type="BG",
            batch_type=batch_type,
            batch_number=self.batch_number,
            raw=text,
        )

    def _code_and_message(self, text: str, number: int, code: slice, message: slice) -> dict[str, Any]:
        value = text[code]
        if not _RETURN_CODE.match(value):
            where = f"[{code.start}:{code.stop}]"
            shown = repr(value) if value else f"nothing (line is {len(text)} characters)"
            raise self.fail(
                f"expected a 4-character return code at {where}, got {shown}", number, "return_code"
            )
        return {"return_code": value, "return_message": text[message].strip()}

    def _journal(self, text: str, number: int, where: slice) -> tuple[str, int]:
        name = text[where]
        if len(name) != 10 or not is_digits(name[2:]):
            raise self.fail(
                f"expected a journal name (2-char ministry prefix + 8-digit ejv_headers.id), got {name!r}",
                number,
                "journal_name",
            )
        return name, int(name[2:])

    def _journal_header(self, text: str, number: int, base: dict[str, Any]) -> FeedbackRecord:
        journal, header_id = self._journal(text, number, JH_JOURNAL)
        amount = parse_fixed_amount(text[JH_AMOUNT], file=self.file, line=number, field="amount")
        return FeedbackRecord(
            **base,
            journal_name=journal,
            ejv_header_id=header_id,
            amount=amount,
            receipt_number=text[JH_RECEIPT].strip(),
            **self._code_and_message(text, number, JH_RETURN_CODE, JH_MESSAGE),
        )

    def _journal_detail(self, raw: str, number: int, base: dict[str, Any]) -> FeedbackRecord:
        text, shift = fix_short_detail_line(raw)
        journal, header_id = self._journal(text, number, JD_JOURNAL)
        effective = parse_yyyymmdd(
            text[JD_EFFECTIVE_DATE], file=self.file, line=number, field="effective_date"
        )
        amount = parse_fixed_amount(text[JD_AMOUNT], file=self.file, line=number, field="amount")
        debit_credit = text[JD_DEBIT_CREDIT]
        if debit_credit not in ("C", "D"):
            raise self.fail(f"expected C or D at [104], got {debit_credit!r}", number, "debit_credit")
        flow_text = text[JD_FLOWTHROUGH].strip()
        flow = parse_flowthrough(flow_text, file=self.file, line=number)
        outcome = self._code_and_message(text, number, JD_RETURN_CODE, JD_MESSAGE)
        line_no = text[JD_LINE_NUMBER]
        return FeedbackRecord(
            **base,
            journal_name=journal,
            ejv_header_id=header_id,
            journal_line_number=int(line_no) if is_digits(line_no) else None,
            flowthrough=flow.text,
            invoice_id=flow.invoice_id,
            partner_disbursement_id=flow.partner_disbursement_id,
            refunds_partial_id=flow.refunds_partial_id,
            is_partial_refund=flow.is_partial_refund,
            debit_credit=debit_credit,
            effective_date=effective,
            amount=amount,
            gl_client=text[JD_GL_CLIENT],
            gl_string=text[JD_GL_STRING].rstrip(),
            supplier_number=text[JD_SUPPLIER].strip() or None,
            description=text[JD_DESCRIPTION].rstrip(),
            shift_applied=shift,
            **outcome,
        )


# --- rendering (sandbox seeding and tests) ----------------------------------------------------------------

Outcome = Callable[["InboxRecord"], tuple[str, str]]


def _success(_record: InboxRecord) -> tuple[str, str]:
    return SUCCESS_CODE, ""


def render_feedback(inbox: InboxFile, *, outcome: Outcome = _success, filler: str = "...") -> str:
    """The FEEDBACK CAS would send for an INBOX: same records shifted 2 left, return code + message appended.

    ``outcome(record)`` gives ``(return_code, message)`` for each BH/JH/JD/IH record (default ``0000``).
    A ``BG`` line carrying the batch number is inserted before each ``BH``. Layout of BG/BT beyond the
    positions sbc-pay reads is not public (docs/files.md#feedback); filler characters stand in for it.
    """
    if len(filler) != 3:
        raise ValueError("filler must be 3 characters")
    out: list[str] = []
    for record in inbox.records:
        prefix = f"{record.batch_type}{record.record_type}{filler}"
        if record.record_type == "BH":
            number = f"{record.batch_number or 0:0>9}"
            out.append(f"{record.batch_type}BG{filler}{'.' * 8}{number}{filler}")
            code, message = outcome(record)
            out.append(f"{prefix}{code:<4.4}{message:<150.150}")
        elif record.record_type in ("JH", "JD", "IH"):
            code, message = outcome(record)
            out.append(f"{prefix}{record.body}{code:<4.4}{message:<150.150}")
        else:
            out.append(f"{prefix}{record.body}")
    return "\n".join(out) + "\n"
