"""Printing reports: a readable table for people, ``--json`` for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TextIO

import pandas as pd
from tabulate import tabulate

from paynb.canonical import json_default, to_jsonable


class Report(Protocol):
    def to_frame(self) -> pd.DataFrame: ...

    def to_dict(self) -> dict[str, Any]: ...


def dumps(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(value), indent=indent, default=json_default, sort_keys=False)


def print_json(value: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(dumps(value) + "\n")


def print_json_lines(rows: Iterable[Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for row in rows:
        out.write(json.dumps(to_jsonable(row), default=json_default) + "\n")


def format_table(df: pd.DataFrame, *, max_rows: int = 200, title: str | None = None) -> str:
    if df.empty:
        body = "(no rows)"
    else:
        shown = df.head(max_rows)
        body = tabulate(
            shown.map(_cell), headers="keys", tablefmt="simple", showindex=False, disable_numparse=True
        )
        if len(df) > max_rows:
            body += f"\n… {len(df) - max_rows} more rows (use --json for all)"
    return f"{title}\n{body}" if title else body


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return to_jsonable(v) if not isinstance(v, str | int) else v


def print_table(df: pd.DataFrame, *, title: str | None = None, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(format_table(df, title=title) + "\n")


def rows_frame(rows: Sequence[Any]) -> pd.DataFrame:
    """DataFrame from dataclasses or dicts, keeping Decimal objects as they are."""
    records = [to_jsonable_keep_decimal(r) for r in rows]
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def to_jsonable_keep_decimal(row: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    return dict(row)
