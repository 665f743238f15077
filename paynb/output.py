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


#: terminal width a table must fit unless ``--wide`` (``set_wide``) asks for every column at full width
TABLE_WIDTH = 120
MIN_WRAP = 12  # a wrapped column is never narrower than this
_SEP = 2  # tabulate's "simple" format puts two spaces between columns
_PAD = 2  # and makes each column its header's width + 2
_wide = False


def set_wide(value: bool) -> None:
    """``--wide``: print every column unwrapped (the CLI resets it at each invocation)."""
    global _wide
    _wide = bool(value)


def is_wide() -> bool:
    return _wide


def format_table(
    df: pd.DataFrame,
    *,
    max_rows: int = 200,
    title: str | None = None,
    width: int | None = None,
    wide: bool | None = None,
) -> str:
    """A plain-text table. Unless wide, it fits ``width`` (120) columns: long text wraps, and when even
    that is not enough the right-most columns are left out and named (``--wide`` or the exports show them).
    Empty values (None, NaN, NaT) print as empty cells."""
    if df.empty:
        body = "(no rows)"
    else:
        shown = df.head(max_rows)
        cells = [[_cell(v) for v in row] for row in shown.itertuples(index=False, name=None)]
        headers = [str(c) for c in shown.columns]
        hidden: list[str] = []
        limits: list[int | None] = [None] * len(headers)
        if not (_wide if wide is None else wide):
            headers, cells, limits, hidden = _fit(headers, cells, width or TABLE_WIDTH)
        body = tabulate(
            cells,
            headers=headers,
            tablefmt="simple",
            disable_numparse=True,
            maxcolwidths=limits if any(limits) else None,
        )
        if hidden:
            body += (
                f"\n(not shown: {', '.join(hidden)}; use --wide, --json, --csv or --xlsx for every column)"
            )
        if len(df) > max_rows:
            body += f"\n… {len(df) - max_rows} more rows (use --json, --csv or --xlsx for all)"
    return f"{title}\n{body}" if title else body


def _fit(
    headers: list[str], cells: list[list[str]], width: int
) -> tuple[list[str], list[list[str]], list[int | None], list[str]]:
    """Wrap the widest columns down to MIN_WRAP, then drop columns from the right until the table fits."""
    # tabulate pads every header by 2 (its MIN_PADDING), so a column is at least its header + 2 wide
    natural = [
        max([len(h) + _PAD] + [max((len(p) for p in row[i].splitlines()), default=0) for row in cells])
        for i, h in enumerate(headers)
    ]
    keep = list(range(len(headers)))

    def floor(i: int) -> int:
        return max(min(natural[i], MIN_WRAP), max((len(w) for w in headers[i].split()), default=1) + _PAD)

    while len(keep) > 1 and sum(floor(i) for i in keep) + _SEP * (len(keep) - 1) > width:
        keep.pop()
    limits = {i: natural[i] for i in keep}
    budget = width - _SEP * (len(keep) - 1)
    while sum(limits.values()) > budget:
        widest = max(limits, key=lambda i: limits[i] - floor(i))
        if limits[widest] <= floor(widest):
            break
        limits[widest] = max(floor(widest), limits[widest] - (sum(limits.values()) - budget))
    hidden = [headers[i] for i in range(len(headers)) if i not in keep]
    return (
        [headers[i] for i in keep],
        [[row[i] for i in keep] for row in cells],
        [limits[i] if limits[i] < natural[i] else None for i in keep],
        hidden,
    )


def _cell(v: Any) -> str:
    from paynb.exports import text_cell

    text = text_cell(v)
    # a text column that pandas read as strings may still hold the words of a missing value
    return "" if text in ("nan", "NaN", "None", "NaT", "<NA>") else text


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
