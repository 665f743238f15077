"""CAS settlement (payment application) CSV, e.g. ``BCR_PAYMENT_APPL_20260730.csv`` (docs/files.md#cas-settlement-csv).

Headers are matched case-insensitively by exact text, like sbc-pay's ``Column`` lookups (no trimming: a
header with stray blanks does not match, and the error says so). The reason-description column is accepted as
``Reversal reason desc`` (parser) or ``Reversal reason description`` (sbc-pay's tests); the two reversal
columns are optional, the twelve others required. Files are decoded ``utf-8-sig``; dates are ``%d-%b-%y``
with English month names whatever the locale; money is ``Decimal``.

Unknown record types, statuses and target types are parsed and flagged (``known`` etc.), never dropped, so a
replay planner can report them. Blank lines are not rows; they are listed in ``SettlementFile.blank_lines``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from paynb.errors import ParseError
from paynb.formats._text import BOM, decode, is_digits, parse_plain_amount, plain_decimal, read_bytes


class RecordType(StrEnum):
    PADP = "PADP"  # PAD payment applied to a (rolled-up) CFS invoice
    PADR = "PADR"  # PAD reversal (bank returned) -> NSF
    PAYR = "PAYR"  # payment reversal -> NSF
    BOLP = "BOLP"  # online banking payment applied
    EFTP = "EFTP"  # EFT / wire payment applied
    ONAC = "ONAC"  # on-account receipt
    CMAP = "CMAP"  # credit memo applied
    DRWP = "DRWP"  # drawdown (BCOL balance) applied
    ADJS = "ADJS"  # adjustment (logged only)
    EFTR = "EFTR"  # EFT reversal (handled by the EFT job)
    ONAP = "ONAP"  # declared in sbc-pay, no handler: an error row there

    @classmethod
    def pad_types(cls) -> frozenset[RecordType]:
        return frozenset({cls.PADP, cls.PADR, cls.PAYR})

    @classmethod
    def nsf_types(cls) -> frozenset[RecordType]:
        return frozenset({cls.PADR, cls.PAYR})


class TargetStatus(StrEnum):
    FULLY_PAID = "Fully PAID"
    NOT_PAID = "Not PAID"
    ON_ACCOUNT = "On Account"
    PARTIALLY_PAID = "Partially PAID"

    @classmethod
    def from_text(cls, text: str) -> TargetStatus | None:
        """sbc-pay compares statuses lower-cased."""
        lowered = text.lower()
        return next((s for s in cls if s.value.lower() == lowered), None)


class TargetType(StrEnum):
    INV = "INV"
    DM = "DM"
    CM = "CM"
    RECEIPT = "RECEIPT"


class SourceTransactionType(StrEnum):
    PAD = "BCR-PAD Daily"
    ONLINE_BANKING = "BCR Online Banking Payments"
    CREDIT_MEMO = "CM"
    ADJUSTMENT = "BCR-ADJ"
    EFT_WIRE = "BC REG EFT Wire Cheque"


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # SettlementRow attribute / to_dict key
    test_header: str  # as written by sbc-pay's tests (create_and_upload_settlement_file)
    parser_header: str  # sbc-pay's queue/enums.py Column value
    required: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("record_type", "Record type", "Record type"),
    Column("source_transaction_type", "Source Transaction Type", "Source transaction type"),
    Column("source_transaction_number", "Source Transaction Number", "Source Transaction Number"),
    Column("application_id", "Application Id", "Application Id"),
    Column("application_date", "Application Date", "Application Date"),
    Column("application_amount", "Application amount", "Application amount"),
    Column("customer_account", "Customer Account", "Customer Account"),
    Column("target_transaction_type", "Target transaction type", "Target transaction type"),
    Column("target_transaction_number", "Target transaction Number", "Target transaction Number"),
    Column(
        "target_transaction_original_amount",
        "Target Transaction Original amount",
        "Target Transaction Original amount",
    ),
    Column(
        "target_transaction_outstanding_amount",
        "Target Transaction Outstanding Amount",
        "Target Transaction Outstanding Amount",
    ),
    Column("target_transaction_status", "Target transaction status", "Target transaction status"),
    Column("reversal_reason_code", "Reversal Reason code", "Reversal Reason code", required=False),
    Column("reversal_reason_desc", "Reversal reason description", "Reversal reason desc", required=False),
)
_DESC_ALIASES = ("reversal reason desc", "reversal reason description")
HEADER_STYLES = ("test", "parser")


@dataclass(frozen=True, slots=True)
class SettlementRow:
    """One CSV row. Build rows directly (sandbox, tests) or get them from :func:`parse_settlement_csv`."""

    record_type: str
    source_transaction_type: str
    source_transaction_number: str
    application_id: int | None
    application_date: date
    application_amount: Decimal
    customer_account: str
    target_transaction_type: str
    target_transaction_number: str
    target_transaction_original_amount: Decimal | None
    target_transaction_outstanding_amount: Decimal | None
    target_transaction_status: str
    reversal_reason_code: str | None = None
    reversal_reason_desc: str | None = None
    line_number: int = 0
    #: columns the file had beyond the known ones, as (header, value)
    extra: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def record_type_enum(self) -> RecordType | None:
        try:
            return RecordType(self.record_type)
        except ValueError:
            return None

    @property
    def known(self) -> bool:
        """The record type is one sbc-pay declares (ONAP is known but unhandled there)."""
        return self.record_type_enum is not None

    @property
    def status(self) -> TargetStatus | None:
        return TargetStatus.from_text(self.target_transaction_status)

    @property
    def status_known(self) -> bool:
        return self.status is not None

    @property
    def target_type(self) -> TargetType | None:
        try:
            return TargetType(self.target_transaction_type)
        except ValueError:
            return None

    @property
    def target_type_known(self) -> bool:
        return self.target_type is not None

    @property
    def is_pad(self) -> bool:
        return self.record_type_enum in RecordType.pad_types()

    @property
    def is_nsf_risk(self) -> bool:
        """Replaying this row may run sbc-pay's NSF branch (freeze account, BCR-PAD Stop, NSF invoice)."""
        return self.status is TargetStatus.NOT_PAID or self.record_type_enum in RecordType.nsf_types()

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update(
            known=self.known,
            status_known=self.status_known,
            target_type_known=self.target_type_known,
            is_pad=self.is_pad,
            is_nsf_risk=self.is_nsf_risk,
        )
        return out


@dataclass(frozen=True, slots=True)
class SettlementFile:
    file: str
    header: tuple[str, ...]
    rows: tuple[SettlementRow, ...]
    #: ``test`` / ``parser`` when the header is exactly one of sbc-pay's spellings, else ``other``
    header_style: str = "other"
    blank_lines: tuple[int, ...] = ()

    def __iter__(self) -> Iterator[SettlementRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def unknown_record_types(self) -> list[SettlementRow]:
        return [r for r in self.rows if not r.known]

    def unknown_statuses(self) -> list[SettlementRow]:
        return [r for r in self.rows if not r.status_known]

    def nsf_risk_rows(self) -> list[SettlementRow]:
        return [r for r in self.rows if r.is_nsf_risk]

    def invoice_numbers(self) -> set[str]:
        """CFS invoice numbers (``REG…``) of INV targets."""
        return {r.target_transaction_number for r in self.rows if r.target_type is TargetType.INV}


# --- parsing ------------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(("jan feb mar apr may jun jul aug sep oct nov dec").split(), start=1)}
_DATE = re.compile(r"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{2})\Z")


def parse_application_date(text: str, *, file: str | None = None, line: int | None = None) -> date:
    """``30-Jul-26`` -> 2026-07-30 (``%d-%b-%y``; two-digit years 69-99 are 19xx, as in ``strptime``)."""
    match = _DATE.match(text.strip())
    month = _MONTHS.get(match.group(2).lower()) if match else None
    if match is None or month is None:
        raise ParseError(
            f"expected a date like 30-Jul-26, got {text[:40]!r}",
            file=file,
            line=line,
            field="application_date",
        )
    yy = int(match.group(3))
    try:
        return date(1900 + yy if yy >= 69 else 2000 + yy, month, int(match.group(1)))
    except ValueError:
        raise ParseError(
            f"not a calendar date: {text!r}", file=file, line=line, field="application_date"
        ) from None


def format_application_date(day: date) -> str:
    return f"{day.day:02d}-{('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')[day.month - 1]}-{day.year % 100:02d}"


def parse_settlement_csv(data: str | bytes, *, file: str = "<string>") -> SettlementFile:
    """Parse a CAS settlement CSV. Any malformed line is a ``ParseError`` naming file, line and field.

    Example::

        f = parse_settlement_file("BCR_PAYMENT_APPL_20260730.csv")
        [(r.line_number, r.target_transaction_number) for r in f.nsf_risk_rows()]
    """
    text = decode(data, file=file, encoding="utf-8-sig")
    if text.startswith(BOM):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        blanks: list[int] = []
        header = next(reader, None)
        while header == []:  # leading blank lines
            blanks.append(reader.line_num)
            header = next(reader, None)
        if header is None:
            raise ParseError("empty file: no header row", file=file, line=1, field="header")
        header_line = reader.line_num
        index, style = _map_header(header, file=file, line=header_line)
        rows: list[SettlementRow] = []
        previous = reader.line_num
        for cells in reader:
            start = previous + 1
            previous = reader.line_num
            if not cells:
                blanks.append(start)
                continue
            if len(cells) != len(header):
                raise ParseError(
                    f"row has {len(cells)} columns, the header has {len(header)}",
                    file=file,
                    line=start,
                    field="columns",
                )
            rows.append(_row(cells, header, index, file=file, line=start))
    except csv.Error as err:
        raise ParseError(f"CSV syntax: {err}", file=file, line=reader.line_num or 1, field="csv") from None
    return SettlementFile(
        file=file, header=tuple(header), rows=tuple(rows), header_style=style, blank_lines=tuple(blanks)
    )


def parse_settlement_file(path: str | Path) -> SettlementFile:
    return parse_settlement_csv(read_bytes(path), file=str(path))


def _map_header(header: list[str], *, file: str, line: int) -> tuple[dict[str, int], str]:
    lowered = [h.lower() for h in header]
    seen: dict[str, int] = {}
    for position, name in enumerate(lowered):
        if name in seen:
            raise ParseError(
                f"header {header[position]!r} appears twice (columns {seen[name] + 1} and {position + 1})",
                file=file,
                line=line,
                field="header",
            )
        seen[name] = position
    index: dict[str, int] = {}
    for column in COLUMNS:
        names = _DESC_ALIASES if column.key == "reversal_reason_desc" else (column.parser_header.lower(),)
        found = [seen[n] for n in names if n in seen]
        if len(found) > 1:
            raise ParseError(
                "both 'Reversal reason desc' and 'Reversal reason description' are present",
                file=file,
                line=line,
                field="header",
            )
        if found:
            index[column.key] = found[0]
        elif column.required:
            near = [h for h in header if h.strip().lower() == column.parser_header.lower()]
            hint = f" (found {near[0]!r}: headers must match exactly, blanks included)" if near else ""
            raise ParseError(
                f"missing required column {column.parser_header!r}{hint}",
                file=file,
                line=line,
                field=column.key,
            )
    style = "other"
    for candidate in HEADER_STYLES:
        if tuple(header) == settlement_header(candidate):
            style = candidate
    return index, style


def _row(
    cells: list[str], header: list[str], index: dict[str, int], *, file: str, line: int
) -> SettlementRow:
    def cell(key: str) -> str | None:
        position = index.get(key)
        return None if position is None else cells[position]

    def amount(key: str) -> Decimal | None:
        value = cell(key) or ""
        return parse_plain_amount(value, file=file, line=line, field=key) if value.strip() else None

    applied = cell("application_amount") or ""
    if not applied.strip():
        raise ParseError("amount is empty", file=file, line=line, field="application_amount")

    raw_id = (cell("application_id") or "").strip()
    if raw_id and (not is_digits(raw_id) or len(raw_id) > 18):
        raise ParseError(
            f"expected an integer id (up to 18 digits), got {raw_id[:40]!r}",
            file=file,
            line=line,
            field="application_id",
        )
    used = set(index.values())
    return SettlementRow(
        record_type=cell("record_type") or "",
        source_transaction_type=cell("source_transaction_type") or "",
        source_transaction_number=cell("source_transaction_number") or "",
        application_id=int(raw_id) if raw_id else None,
        application_date=parse_application_date(cell("application_date") or "", file=file, line=line),
        application_amount=parse_plain_amount(applied, file=file, line=line, field="application_amount"),
        customer_account=cell("customer_account") or "",
        target_transaction_type=cell("target_transaction_type") or "",
        target_transaction_number=cell("target_transaction_number") or "",
        target_transaction_original_amount=amount("target_transaction_original_amount"),
        target_transaction_outstanding_amount=amount("target_transaction_outstanding_amount"),
        target_transaction_status=cell("target_transaction_status") or "",
        reversal_reason_code=cell("reversal_reason_code") or None,
        reversal_reason_desc=cell("reversal_reason_desc") or None,
        line_number=line,
        extra=tuple((header[i], cells[i]) for i in range(len(cells)) if i not in used),
    )


# --- writing and filtering ----------------------------------------------------------------------------------


def settlement_header(header_style: str = "test") -> tuple[str, ...]:
    """The 14 header cells: ``test`` = sbc-pay's test spelling, ``parser`` = its ``Column`` values."""
    if header_style == "test":
        return tuple(c.test_header for c in COLUMNS)
    if header_style == "parser":
        return tuple(c.parser_header for c in COLUMNS)
    raise ValueError(f"header_style is one of {HEADER_STYLES}, got {header_style!r}")


def write_settlement_csv(
    rows: Iterable[SettlementRow], header_style: str = "test", line_end: str = "\r\n"
) -> str:
    """CSV text as CAS/sbc-pay tests write it: every cell quoted, CRLF line ends (``line_end``: the sandbox's
    bucket files use LF)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator=line_end)
    writer.writerow(settlement_header(header_style))
    for r in rows:
        writer.writerow(
            [
                r.record_type,
                r.source_transaction_type,
                r.source_transaction_number,
                "" if r.application_id is None else str(r.application_id),
                format_application_date(r.application_date),
                plain_decimal(r.application_amount),
                r.customer_account,
                r.target_transaction_type,
                r.target_transaction_number,
                _opt_amount(r.target_transaction_original_amount),
                _opt_amount(r.target_transaction_outstanding_amount),
                r.target_transaction_status,
                r.reversal_reason_code or "",
                r.reversal_reason_desc or "",
            ]
        )
    return out.getvalue()


def _opt_amount(value: Decimal | None) -> str:
    return "" if value is None else plain_decimal(value)


def filter_rows(
    rows: Iterable[SettlementRow],
    *,
    record_types: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    target_numbers: Collection[str] | None = None,
    exclude_nsf_risk: bool = False,
    known_only: bool = False,
    predicate: Callable[[SettlementRow], bool] | None = None,
) -> list[SettlementRow]:
    """Rows matching every given condition (statuses compared lower-cased, like sbc-pay)."""
    wanted_status = {s.lower() for s in statuses} if statuses is not None else None
    out: list[SettlementRow] = []
    for r in rows:
        if record_types is not None and r.record_type not in record_types:
            continue
        if wanted_status is not None and r.target_transaction_status.lower() not in wanted_status:
            continue
        if target_numbers is not None and r.target_transaction_number not in target_numbers:
            continue
        if exclude_nsf_risk and r.is_nsf_risk:
            continue
        if known_only and not r.known:
            continue
        if predicate is not None and not predicate(r):
            continue
        out.append(r)
    return out
