"""Report tables to files: ``--csv FILE`` (the report's main table) and ``--xlsx FILE`` (every table, one
sheet each).

Money stays exact: a Decimal is written to CSV as its exact decimal string (``1234.50``, never ``1234.5`` or
``1.2345E+3``) and to Excel as a number cell with a two-decimal format, from the Decimal's own digits (no
float rounding on the way). Empty cells (None, NaN, NaT) stay empty. Files are private (0600), like every
file paynb writes with data in it.

Example::

    export_tables({"invoices": frame, "by_method": totals}, csv="stale.csv", xlsx="stale.xlsx")
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from paynb.canonical import to_jsonable
from paynb.errors import InputError
from paynb.extras import require
from paynb.files import FILE_MODE, private_dir

MONEY_FORMAT = "#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
SHEET_NAME_MAX = 31  # Excel's limit


def is_empty(value: Any) -> bool:
    """None, NaN, NaT and pandas' NA: what a table shows as an empty cell."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, float) and value != value:
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict | set | str) else False
    except (TypeError, ValueError):
        return False


def text_cell(value: Any) -> str:
    """One cell as exact text: Decimals in fixed notation, dates ISO, lists joined, empties as ''."""
    if is_empty(value):
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "item") and not isinstance(value, str | bytes | pd.Timestamp):  # numpy scalars
        value = value.item()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(
            text_cell(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)
        )
    if isinstance(value, dict):
        import json

        return json.dumps(to_jsonable(value), sort_keys=True)
    return str(to_jsonable(value))


def csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([text_cell(v) for v in row])
    return buffer.getvalue()


def _excel_cell(value: Any) -> tuple[Any, str | None]:
    """(value, number format) for openpyxl: numbers stay numbers, money gets two decimals."""
    if is_empty(value):
        return None, None
    if isinstance(value, bool):
        return value, None
    if isinstance(value, Decimal):
        return value, MONEY_FORMAT
    if isinstance(value, int):
        return value, None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _excel_cell(value.item())
    if isinstance(value, float):
        return value, None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        # Excel has no time zones: pay-db times are naive UTC, and an aware one is shown in UTC
        if value.tzinfo is not None:
            from datetime import UTC

            value = value.astimezone(UTC).replace(tzinfo=None)
        return value, DATETIME_FORMAT
    if isinstance(value, date):
        return value, DATE_FORMAT
    return text_cell(value), None


def xlsx_bytes(tables: Mapping[str, pd.DataFrame]) -> bytes:
    openpyxl = require("openpyxl", "--xlsx export")
    from openpyxl.cell import WriteOnlyCell

    book = openpyxl.Workbook(write_only=True)
    used: set[str] = set()
    for name, frame in tables.items():
        sheet = book.create_sheet(_sheet_name(name, used))
        sheet.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            cells = []
            for value in row:
                shown, number_format = _excel_cell(value)
                cell = WriteOnlyCell(sheet, value=shown)
                if number_format:
                    cell.number_format = number_format
                cells.append(cell)
            sheet.append(cells)
    if not used:
        book.create_sheet("empty")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet_name(name: str, used: set[str]) -> str:
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:SHEET_NAME_MAX] or "sheet"
    candidate, n = clean, 2
    while candidate.lower() in {u.lower() for u in used}:
        suffix = f"_{n}"
        candidate, n = clean[: SHEET_NAME_MAX - len(suffix)] + suffix, n + 1
    used.add(candidate)
    return candidate


def export_tables(
    tables: Mapping[str, pd.DataFrame],
    *,
    csv: str | os.PathLike[str] | None = None,
    xlsx: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write the first table to ``csv`` and all of them to ``xlsx`` (either may be None). Returns the files."""
    if not tables:
        raise InputError("this report has no table to export", field="--csv/--xlsx")
    written = []
    for target, data in (
        (csv, lambda: csv_text(next(iter(tables.values())))),
        (xlsx, lambda: xlsx_bytes(tables)),
    ):
        if target is None:
            continue
        try:
            written.append(_write(Path(target), data()))
        except OSError as err:
            raise InputError(
                f"cannot write the export ({err.strerror})", file=str(target), hint="pick a writable path"
            ) from None
    return written


def _write(target: Path, data: str | bytes) -> Path:
    """A 0600 file; a missing folder is created 0700, an existing one (the analyst's own) is left as it is."""
    if not target.parent.exists():
        private_dir(target.parent)
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    return target
