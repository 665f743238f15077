"""Text helpers shared by the file-format parsers: decoding, line splitting, small field checks.

Line numbers are 1-based and count physical lines as an editor shows them (``\\r\\n``, ``\\n`` or ``\\r``).
``str.splitlines`` is not used on purpose: it also splits on GS (chr 29), the INBOX field separator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from paynb.errors import ParseError

_BREAK = re.compile(r"\r\n|\n|\r")

# characters that ``str.splitlines`` treats as line ends besides \r and \n
OTHER_LINE_BREAKS = "\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_OTHER_BREAK = re.compile(f"[{re.escape(OTHER_LINE_BREAKS)}]")

BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    text: str
    ending: str


def split_lines(text: str) -> list[Line]:
    """Physical lines with their endings; a final line without an ending is kept, no empty tail."""
    lines: list[Line] = []
    pos = 0
    number = 0
    for match in _BREAK.finditer(text):
        number += 1
        lines.append(Line(number, text[pos : match.start()], match.group()))
        pos = match.end()
    if pos < len(text):
        lines.append(Line(number + 1, text[pos:], ""))
    return lines


def find_other_line_break(text: str) -> tuple[int, str] | None:
    """(1-based line, character) of the first splitlines-only line break in ``text``, if any."""
    match = _OTHER_BREAK.search(text)
    if match is None:
        return None
    return len(_BREAK.findall(text, 0, match.start())) + 1, match.group()


def decode(data: bytes | str, *, file: str, encoding: str = "utf-8-sig") -> str:
    """Bytes -> text; a decoding error names the line that holds the bad byte."""
    if isinstance(data, str):
        return data
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ParseError(
            f"not valid {encoding} text (byte 0x{data[err.start]:02x} at offset {err.start})",
            file=file,
            line=line,
            field="encoding",
        ) from None


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ParseError(f"cannot read file: {err.strerror}", file=str(path)) from None


def is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts e.g. superscripts, ``int`` accepts spaces and _)."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_yyyymmdd(text: str, *, file: str, line: int, field: str) -> date:
    if len(text) != 8 or not is_digits(text):
        raise ParseError(f"expected a date YYYYMMDD, got {text!r}", file=file, line=line, field=field)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ParseError(f"not a calendar date: {text!r}", file=file, line=line, field=field) from None


_FIXED_AMOUNT = re.compile(r"-?[0-9]+\.[0-9]{2}\Z")


def parse_fixed_amount(text: str, *, file: str, line: int, field: str) -> Decimal:
    """A CGI amount: ``f"{amount:.2f}".zfill(15)`` (zero-padded, 2 decimals, optional leading minus)."""
    if not _FIXED_AMOUNT.match(text):
        raise ParseError(
            f"expected a zero-padded amount like 000000000100.00, got {text!r}",
            file=file,
            line=line,
            field=field,
        )
    return Decimal(text)


_CSV_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


def parse_plain_amount(text: str, *, file: str, line: int, field: str) -> Decimal:
    """A CSV amount such as ``300.0``, ``0`` or ``-25.50`` (surrounding blanks allowed, no thousands sep)."""
    value = text.strip()
    if not _CSV_AMOUNT.match(value):
        raise ParseError(
            f"expected an amount like 300.00, got {text[:40]!r}", file=file, line=line, field=field
        )
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        raise ParseError(f"bad amount {text!r}", file=file, line=line, field=field) from None


def format_fixed_amount(amount: Decimal) -> str:
    """The CGI amount field: 2 decimals, zero-filled to 15 characters."""
    return format(Decimal(amount).quantize(Decimal("0.01")), "f").zfill(15)


def plain_decimal(value: Decimal) -> str:
    """Decimal without exponent notation (``Decimal('1E+2')`` -> ``100``)."""
    return format(value, "f")
