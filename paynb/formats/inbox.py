"""CGI INBOX files (what payment-jobs sends to CAS): parser, byte-exact writer, re-dating and field diff.

Layout: docs/files.md#inbox. Each record is ``{feeder}{batch type}{record type}<GS>{body}<GS>`` + ``\\n``
(GS = chr(29)). Body offsets below are the documented absolute offsets minus the 9-char prefix (feeder of
4 characters); BH/BT bodies start with the feeder, so their offsets follow its real width.

A parsed record keeps every raw piece (GS-separated fields, line ending), so ``write_inbox(parse_inbox(t)) == t``
for every text that parses. Typed values (dates, Decimal amounts, decoded flow-throughs) are checked while
parsing: a malformed record is a ``ParseError`` naming file, line and field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from paynb.errors import ParseError
from paynb.formats._text import (
    BOM,
    decode,
    format_fixed_amount,
    is_digits,
    parse_fixed_amount,
    parse_yyyymmdd,
    read_bytes,
    split_lines,
)
from paynb.formats.flowthrough import parse_flowthrough

GS = chr(29)
EJV_BATCH_TYPES = ("GA", "GI")
AP_BATCH_TYPE = "AP"
EJV_RECORD_TYPES = frozenset({"BH", "JH", "JD", "BT"})
AP_RECORD_TYPES = frozenset({"BH", "IH", "IL", "NA", "IC", "BT"})
DEFAULT_TRIGGER_SUFFIX = "TRG"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    start: int
    end: int | None  # None: to the end of the body


_JH = (
    FieldSpec("journal_name", 0, 10),
    FieldSpec("journal_batch_name", 10, 35),
    FieldSpec("journal_total", 35, 50),
    FieldSpec("acad", 50, 54),
    FieldSpec("filler_100", 54, 154),
    FieldSpec("filler_110", 154, 264),
)
_JD = (
    FieldSpec("journal_name", 0, 10),
    FieldSpec("journal_line_number", 10, 15),
    FieldSpec("effective_date", 15, 23),
    FieldSpec("gl_string", 23, 73),
    FieldSpec("supplier_number", 73, 82),
    FieldSpec("amount", 82, 97),
    FieldSpec("debit_credit", 97, 98),
    FieldSpec("description", 98, 198),
    FieldSpec("flowthrough", 198, 308),
)
# AP record bodies (jobs/payment-jobs/tasks/common/cgi_ap.py): supplier, location, reference, then
# record-specific content that paynb keeps as one piece
_AP = (
    FieldSpec("supplier_number", 0, 9),
    FieldSpec("supplier_location", 9, 12),
    FieldSpec("ap_reference", 12, 62),
    FieldSpec("ap_rest", 62, None),
)
_JD_DATE = _JD[2]


def body_layout(record_type: str, feeder_width: int = 4) -> tuple[FieldSpec, ...]:
    """Named fields of a record body (offsets relative to the text after the first GS)."""
    f = feeder_width
    if record_type == "BH":
        return (
            FieldSpec("feeder", 0, f),
            FieldSpec("fiscal_year", f, f + 4),
            FieldSpec("batch_number", f + 4, f + 13),
            FieldSpec("message_version", f + 13, f + 17),
        )
    if record_type == "BT":
        return (
            FieldSpec("feeder", 0, f),
            FieldSpec("fiscal_year", f, f + 4),
            FieldSpec("batch_number", f + 4, f + 13),
            FieldSpec("control_total", f + 13, f + 28),
            FieldSpec("batch_total", f + 28, f + 43),
        )
    if record_type == "JH":
        return _JH
    if record_type == "JD":
        return _JD
    if record_type in AP_RECORD_TYPES:
        return _AP
    raise ValueError(f"no layout for record type {record_type!r}")


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """One INBOX record: the raw pieces plus typed values (``None`` where they do not apply)."""

    line_number: int
    fields: tuple[str, ...]
    line_ending: str
    feeder: str
    batch_type: str
    record_type: str
    batch_number: int | None = None
    fiscal_year: int | None = None
    message_version: str | None = None
    journal_name: str | None = None
    ejv_header_id: int | None = None
    journal_batch_name: str | None = None
    journal_line_number: int | None = None
    effective_date: date | None = None
    gl_string: str | None = None
    gl_client: str | None = None
    supplier_number: str | None = None
    amount: Decimal | None = None
    debit_credit: str | None = None
    description: str | None = None
    flowthrough: str | None = None
    invoice_id: int | None = None
    partner_disbursement_id: int | None = None
    refunds_partial_id: int | None = None
    is_partial_refund: bool | None = None
    control_total: int | None = None
    ap_reference: str | None = None

    @property
    def prefix(self) -> str:
        return self.fields[0]

    @property
    def body(self) -> str:
        return self.fields[1]

    @property
    def raw(self) -> str:
        """The record exactly as in the file, line ending included."""
        return GS.join(self.fields) + self.line_ending

    @property
    def layout(self) -> tuple[FieldSpec, ...]:
        return body_layout(self.record_type, len(self.feeder))

    def field_values(self) -> dict[str, str]:
        """Raw text of every named body field (padding kept)."""
        body = self.body
        return {s.name: body[s.start : s.end] for s in self.layout}

    def to_dict(self) -> dict[str, Any]:
        skip = {"fields", "line_ending"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


@dataclass(frozen=True, slots=True)
class InboxFile:
    file: str
    records: tuple[InboxRecord, ...]
    bom: bool = False

    def __iter__(self) -> Iterator[InboxRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def feeder(self) -> str | None:
        return self.records[0].feeder if self.records else None

    @property
    def batch_numbers(self) -> tuple[int, ...]:
        return tuple(
            r.batch_number for r in self.records if r.record_type == "BH" and r.batch_number is not None
        )

    @property
    def batch_types(self) -> tuple[str, ...]:
        return tuple(r.batch_type for r in self.records if r.record_type == "BH")

    def details(self) -> list[InboxRecord]:
        return [r for r in self.records if r.record_type == "JD"]

    def invoice_ids(self) -> set[int]:
        return {r.invoice_id for r in self.records if r.invoice_id is not None}

    def effective_dates(self) -> set[date]:
        return {r.effective_date for r in self.records if r.effective_date is not None}

    def verify_totals(self) -> list[str]:
        """Problems with BT control totals / batch totals and JH totals (empty list = consistent).

        Rules from the generator: control total = number of JH + JD lines of the batch; batch total = sum of
        JH totals; a JH total = sum of its credit (payment) or debit (reversal) lines, i.e. half the lines.
        """
        problems: list[str] = []
        count = 0
        batch_total = Decimal(0)
        header: InboxRecord | None = None
        header_sum = Decimal(0)

        def close_header() -> None:
            if header is not None and header.amount is not None and header.amount * 2 != header_sum:
                problems.append(
                    f"line {header.line_number}: JH total {header.amount} is not half of its detail lines"
                    f" ({header_sum})"
                )

        for record in self.records:
            if record.record_type == "BH":
                count, batch_total, header, header_sum = 0, Decimal(0), None, Decimal(0)
            elif record.record_type == "JH":
                close_header()
                count += 1
                batch_total += record.amount or 0
                header, header_sum = record, Decimal(0)
            elif record.record_type == "JD":
                count += 1
                header_sum += record.amount or 0
            elif record.record_type == "BT":
                close_header()
                header = None
                if record.batch_type != AP_BATCH_TYPE and record.control_total != count:
                    problems.append(
                        f"line {record.line_number}: control total {record.control_total}, counted {count} JH+JD"
                    )
                if record.batch_type != AP_BATCH_TYPE and record.amount != batch_total:
                    problems.append(
                        f"line {record.line_number}: batch total {record.amount}, JH totals sum to {batch_total}"
                    )
        return problems

    def to_text(self) -> str:
        return write_inbox(self)

    def to_bytes(self) -> bytes:
        return write_inbox(self).encode("utf-8")


@dataclass(frozen=True, slots=True)
class FieldChange:
    line: int
    field: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "old": self.old, "new": self.new}


# --- parsing ------------------------------------------------------------------------------------------------


def parse_inbox(text: str | bytes, *, file: str = "<string>") -> InboxFile:
    """Parse an INBOX file. Bytes are decoded as UTF-8 (a BOM is kept and written back)."""
    content = decode(text, file=file, encoding="utf-8")
    bom = content.startswith(BOM)
    if bom:
        content = content[1:]
    lines = split_lines(content)
    if not lines:
        raise ParseError(
            "empty file (an INBOX starts with a BH batch header)", file=file, line=1, field="record_type"
        )
    state = _State(file)
    records = tuple(state.parse(line.text, line.ending, line.number) for line in lines)
    if state.open_line is not None:
        raise ParseError(
            f"batch opened at line {state.open_line} has no BT trailer (truncated file?)",
            file=file,
            line=lines[-1].number,
            field="record_type",
        )
    return InboxFile(file=file, records=records, bom=bom)


def parse_inbox_file(path: str | Path) -> InboxFile:
    return parse_inbox(read_bytes(path), file=str(path))


def write_inbox(inbox: InboxFile) -> str:
    """The file text, byte-for-byte what was parsed (or what the edits made)."""
    return (BOM if inbox.bom else "") + "".join(r.raw for r in inbox.records)


class _State:
    def __init__(self, file: str) -> None:
        self.file = file
        self.open_line: int | None = None
        self.batch_type: str | None = None
        self.batch_number: int | None = None

    def fail(self, message: str, line: int, field: str) -> ParseError:
        return ParseError(message, file=self.file, line=line, field=field)

    def parse(self, text: str, ending: str, number: int) -> InboxRecord:
        parts = tuple(text.split(GS))
        if len(parts) < 2:
            raise self.fail("no GS (chr 29) separator: not an INBOX record", number, "record_type")
        if len(parts) > 3 or (len(parts) == 3 and parts[2] != ""):
            raise self.fail(
                "text after the closing GS separator, or a GS inside the record body", number, "separator"
            )
        prefix, body = parts[0], parts[1]
        feeder, batch_type, record_type = prefix[:-4], prefix[-4:-2], prefix[-2:]
        if len(prefix) < 5 or not feeder.isascii() or not feeder.isalnum():
            raise self.fail(
                f"expected <feeder><batch type><record type>, got {prefix!r}", number, "record_type"
            )
        if batch_type not in (*EJV_BATCH_TYPES, AP_BATCH_TYPE):
            raise self.fail(f"batch type {batch_type!r} (expected GA, GI or AP)", number, "batch_type")
        allowed = AP_RECORD_TYPES if batch_type == AP_BATCH_TYPE else EJV_RECORD_TYPES
        if record_type not in allowed:
            raise self.fail(
                f"record type {record_type!r} in a {batch_type} batch (expected {', '.join(sorted(allowed))})",
                number,
                "record_type",
            )
        self._check_structure(batch_type, record_type, number)
        layout = body_layout(record_type, len(feeder))
        end = layout[-1].end
        if end is not None and len(body) != end:
            raise self.fail(
                f"{record_type} body is {len(body)} characters, the layout needs {end}", number, "length"
            )
        if end is None and len(body) < layout[-1].start:
            raise self.fail(
                f"{record_type} body is {len(body)} characters, the layout needs at least {layout[-1].start}",
                number,
                "length",
            )
        values = {s.name: body[s.start : s.end] for s in layout}
        typed = self._typed(record_type, feeder, values, number)
        if record_type == "BH":
            self.batch_number = typed["batch_number"]
        elif record_type == "BT":
            if typed["batch_number"] != self.batch_number:
                raise self.fail(
                    f"trailer batch number {typed['batch_number']} differs from the header's {self.batch_number}",
                    number,
                    "batch_number",
                )
            self.open_line = None
        return InboxRecord(
            line_number=number,
            fields=parts,
            line_ending=ending,
            feeder=feeder,
            batch_type=batch_type,
            record_type=record_type,
            batch_number=typed.pop("batch_number", self.batch_number),
            **typed,
        )

    def _check_structure(self, batch_type: str, record_type: str, number: int) -> None:
        if record_type == "BH":
            if self.open_line is not None:
                raise self.fail(
                    f"new batch header before the batch opened at line {self.open_line} got its BT trailer",
                    number,
                    "record_type",
                )
            self.open_line, self.batch_type = number, batch_type
            return
        if self.open_line is None:
            raise self.fail(
                f"{record_type} record outside a batch (expected a BH header first)", number, "record_type"
            )
        if batch_type != self.batch_type:
            raise self.fail(
                f"batch type {batch_type!r} inside a {self.batch_type} batch opened at line {self.open_line}",
                number,
                "batch_type",
            )

    def _digits(self, value: str, number: int, field: str) -> int:
        if not is_digits(value):
            raise self.fail(f"expected digits, got {value!r}", number, field)
        return int(value)

    def _journal(self, name: str, number: int) -> tuple[str, int]:
        if not is_digits(name[2:]):
            raise self.fail(
                f"expected a journal name (2-char ministry prefix + 8-digit ejv_headers.id), got {name!r}",
                number,
                "journal_name",
            )
        return name, int(name[2:])

    def _typed(self, record_type: str, feeder: str, v: dict[str, str], number: int) -> dict[str, Any]:
        file = self.file
        if record_type in ("BH", "BT"):
            if v["feeder"] != feeder:
                raise self.fail(
                    f"feeder {v['feeder']!r} differs from the prefix's {feeder!r}", number, "feeder"
                )
            out: dict[str, Any] = {
                "fiscal_year": self._digits(v["fiscal_year"], number, "fiscal_year"),
                "batch_number": self._digits(v["batch_number"], number, "batch_number"),
            }
            if record_type == "BH":
                out["message_version"] = v["message_version"]
            else:
                out["control_total"] = self._digits(v["control_total"], number, "control_total")
                out["amount"] = parse_fixed_amount(
                    v["batch_total"], file=file, line=number, field="batch_total"
                )
            return out
        if record_type == "JH":
            journal, header_id = self._journal(v["journal_name"], number)
            if v["acad"] != "ACAD":
                raise self.fail(f"expected the literal ACAD at [50:54], got {v['acad']!r}", number, "acad")
            return {
                "journal_name": journal,
                "ejv_header_id": header_id,
                "journal_batch_name": v["journal_batch_name"].rstrip(),
                "amount": parse_fixed_amount(
                    v["journal_total"], file=file, line=number, field="journal_total"
                ),
            }
        if record_type == "JD":
            journal, header_id = self._journal(v["journal_name"], number)
            debit_credit = v["debit_credit"]
            if debit_credit not in ("C", "D"):
                raise self.fail(f"expected C or D, got {debit_credit!r}", number, "debit_credit")
            flow = parse_flowthrough(v["flowthrough"].strip(), file=file, line=number)
            return {
                "journal_name": journal,
                "ejv_header_id": header_id,
                "journal_line_number": self._digits(v["journal_line_number"], number, "journal_line_number"),
                "effective_date": parse_yyyymmdd(
                    v["effective_date"], file=file, line=number, field="effective_date"
                ),
                "gl_string": v["gl_string"].rstrip(),
                "gl_client": v["gl_string"][:3],
                "supplier_number": v["supplier_number"].strip() or None,
                "amount": parse_fixed_amount(v["amount"], file=file, line=number, field="amount"),
                "debit_credit": debit_credit,
                "description": v["description"].rstrip(),
                "flowthrough": flow.text,
                "invoice_id": flow.invoice_id,
                "partner_disbursement_id": flow.partner_disbursement_id,
                "refunds_partial_id": flow.refunds_partial_id,
                "is_partial_refund": flow.is_partial_refund,
            }
        # AP IH / IL / NA / IC
        return {
            "supplier_number": v["supplier_number"].strip() or None,
            "ap_reference": v["ap_reference"].strip(),
        }


# --- names --------------------------------------------------------------------------------------------------

_INBOX_NAME = re.compile(r"INBOX\.F(?P<feeder>[0-9A-Za-z]+)\.(?P<stamp>[0-9]{14})\Z")


def parse_inbox_name(name: str) -> tuple[str, datetime]:
    """``INBOX.F3505.20260730190100`` (or an object key ending so) -> ``("3505", datetime(2026, 7, 30, 19, 1))``.

    The timestamp is naive and UTC-based, as payment-jobs writes it (docs/files.md#inbox).
    """
    base = PurePosixPath(name).name
    match = _INBOX_NAME.match(base)
    if match is None:
        raise ParseError(f"not an INBOX.F<feeder>.<YYYYMMDDHHMMSS> name: {base!r}", field="file name")
    try:
        stamp = datetime.strptime(match["stamp"], "%Y%m%d%H%M%S")
    except ValueError:
        raise ParseError(f"bad timestamp in file name {base!r}", field="file name") from None
    return match["feeder"], stamp


def format_inbox_name(feeder: str | int, when: datetime) -> str:
    return f"INBOX.F{feeder}.{when:%Y%m%d%H%M%S}"


def trigger_name(name: str, suffix: str = DEFAULT_TRIGGER_SUFFIX) -> str:
    """The empty trigger file uploaded next to an INBOX: ``<name>.TRG``."""
    return f"{name}.{suffix}"


# --- edits --------------------------------------------------------------------------------------------------


def redate_inbox(inbox: InboxFile, effective_date: date, *, file: str | None = None) -> InboxFile:
    """A copy whose JD (detail) effective dates are ``effective_date``; every other byte is unchanged.

    BH/BT fiscal years are left as they are even if the new date falls in another fiscal year (CGI reads the
    period from the detail date; check :func:`fiscal_year` if re-dating across 31 March).
    """
    stamp = f"{effective_date:%Y%m%d}"
    lines: list[str] = []
    for record in inbox.records:
        if record.record_type == "JD":
            body = record.body
            new_body = body[: _JD_DATE.start] + stamp + body[_JD_DATE.end :]
            parts = (record.fields[0], new_body, *record.fields[2:])
            lines.append(GS.join(parts) + record.line_ending)
        else:
            lines.append(record.raw)
    text = (BOM if inbox.bom else "") + "".join(lines)
    return parse_inbox(text, file=file or inbox.file)


def diff_inbox(old: InboxFile, new: InboxFile) -> list[FieldChange]:
    """Field-level differences, record by record (line numbers of ``old``; extra records use ``new``'s)."""
    changes: list[FieldChange] = []
    if old.bom != new.bom:
        changes.append(FieldChange(1, "bom", str(old.bom), str(new.bom)))
    for index in range(max(len(old.records), len(new.records))):
        a = old.records[index] if index < len(old.records) else None
        b = new.records[index] if index < len(new.records) else None
        if a is None or b is None:
            present = a or b
            assert present is not None
            changes.append(
                FieldChange(
                    present.line_number,
                    "record",
                    a.raw.rstrip("\r\n") if a else None,
                    b.raw.rstrip("\r\n") if b else None,
                )
            )
            continue
        changes.extend(_diff_record(a, b))
    return changes


def _diff_record(a: InboxRecord, b: InboxRecord) -> list[FieldChange]:
    line = a.line_number
    out: list[FieldChange] = []
    for name in ("feeder", "batch_type", "record_type"):
        if getattr(a, name) != getattr(b, name):
            out.append(FieldChange(line, name, getattr(a, name), getattr(b, name)))
    if a.layout == b.layout:
        va, vb = a.field_values(), b.field_values()
        out.extend(FieldChange(line, n, va[n], vb[n]) for n in va if va[n] != vb[n])
    elif a.body != b.body:
        out.append(FieldChange(line, "body", a.body, b.body))
    tail_a = GS.join(a.fields[2:]) if len(a.fields) > 2 else None
    tail_b = GS.join(b.fields[2:]) if len(b.fields) > 2 else None
    if tail_a != tail_b:
        out.append(FieldChange(line, "closing_separator", _show_tail(tail_a), _show_tail(tail_b)))
    if a.line_ending != b.line_ending:
        out.append(FieldChange(line, "line_ending", repr(a.line_ending), repr(b.line_ending)))
    return out


def _show_tail(tail: str | None) -> str | None:
    return None if tail is None else "<GS>" + tail


# --- building records (sandbox seeding, tests) --------------------------------------------------------------


def fiscal_year(day: date) -> int:
    """sbc-pay's ``get_fiscal_year``: the calendar year, +1 from April."""
    return day.year + 1 if day.month > 3 else day.year


def journal_name(ministry_prefix: str, ejv_header_id: int) -> str:
    if len(ministry_prefix) != 2:
        raise ValueError("the ministry prefix is 2 characters (the FEEDBACK parser relies on it)")
    return f"{ministry_prefix}{ejv_header_id:0>8}"


def journal_batch_name(ministry_prefix: str, batch_number: int) -> str:
    return f"{ministry_prefix}{batch_number:0>9}{'':<14}"


def _fit(value: str, width: int, name: str) -> str:
    if len(value) > width:
        raise ValueError(f"{name} is longer than {width} characters: {value!r}")
    return f"{value:<{width}}"


def format_batch_header(
    feeder: str, batch_type: str, fiscal: int, batch_number: int, message_version: str = "4010"
) -> str:
    return f"{feeder}{batch_type}BH{GS}{feeder}{fiscal:04d}{batch_number:0>9}{_fit(message_version, 4, 'message_version')}{GS}\n"


def format_journal_header(feeder: str, batch_type: str, journal: str, batch_name: str, total: Decimal) -> str:
    return (
        f"{feeder}{batch_type}JH{GS}{_fit(journal, 10, 'journal_name')}{_fit(batch_name, 25, 'journal_batch_name')}"
        f"{format_fixed_amount(total)}ACAD{'':<100}{'':<110}{GS}\n"
    )


def format_journal_detail(
    feeder: str,
    batch_type: str,
    journal: str,
    line_number: int,
    effective_date: date,
    gl_string: str,
    amount: Decimal,
    debit_credit: str,
    description: str,
    flowthrough: str,
    supplier_number: str = "",
) -> str:
    if debit_credit not in ("C", "D"):
        raise ValueError("debit_credit is C or D")
    return (
        f"{feeder}{batch_type}JD{GS}{_fit(journal, 10, 'journal_name')}{line_number:0>5}{effective_date:%Y%m%d}"
        f"{_fit(gl_string, 50, 'gl_string')}{_fit(supplier_number, 9, 'supplier_number')}"
        f"{format_fixed_amount(amount)}{debit_credit}{_fit(description, 100, 'description')}"
        f"{_fit(flowthrough, 110, 'flowthrough')}{GS}\n"
    )


def format_batch_trailer(
    feeder: str, batch_type: str, fiscal: int, batch_number: int, control_total: int, batch_total: Decimal
) -> str:
    return (
        f"{feeder}{batch_type}BT{GS}{feeder}{fiscal:04d}{batch_number:0>9}{control_total:0>15}"
        f"{format_fixed_amount(batch_total)}{GS}\n"
    )


def gl_string(
    client: str, responsibility_centre: str, service_line: str, stob: str, project_code: str
) -> str:
    """The 50-character distribution string of a JD line (for 3/5/5/4/7-wide GL parts)."""
    return f"{client}{responsibility_centre}{service_line}{stob}{project_code}0000000000{'':<16}"
