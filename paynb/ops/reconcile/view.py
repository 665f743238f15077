"""Reconciliation reports for people: a text table, CSV, XLSX (money stays Decimal) and a chart of the
mismatches by class and age."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from paynb.ops.reconcile.report import ReconcileReport

AGE_BUCKETS = ((0, 7, "0-7 days"), (8, 30, "8-30 days"), (31, 90, "31-90 days"), (91, None, ">90 days"))


def render_text(report: ReconcileReport, *, format_table) -> str:
    window = f"{report.date_from or 'start'}..{report.date_to or report.as_of}"
    state = "complete" if report.complete else "INCOMPLETE (a source could not be read in full)"
    lines = [
        f"reconcile {report.check} via {report.source}, {window}: {len(report.findings)} finding(s) "
        f"in {report.compared} compared; {state}"
    ]
    if report.new is not None:
        lines.append(
            f"since run {report.previous_run or '(none)'}: {len(report.new)} new, "
            f"{len(report.resolved or [])} resolved"
        )
    lines += [*(f"note: {n}" for n in report.notes), ""]
    lines.append(format_table(report.by_class().drop(columns=["meaning"]), title="by class"))
    lines.append("")
    lines.append(format_table(report.to_frame().drop(columns=["command"]), title="findings"))
    if report.amounts is not None:
        lines += ["", format_table(report.amounts, title="partner disbursements per partner, month, status")]
    commands = report.to_frame()[["class", "command"]].drop_duplicates()
    if not commands.empty:
        lines += ["", format_table(commands, title="what to do next")]
    return "\n".join(lines)


def write_csv(report: ReconcileReport, path: str | Path) -> Path:
    """One row per finding; money as exact decimal text."""
    from paynb.files import write_private

    buf = io.StringIO()
    report.to_frame().to_csv(buf, index=False)
    write_private(Path(path), buf.getvalue())
    return Path(path)


def write_xlsx(report: ReconcileReport, path: str | Path) -> Path:
    """Sheets ``by class``, ``findings`` (and ``amounts`` for disbursements); money cells are Decimal
    numbers with two decimals."""
    from paynb.extras import require
    from paynb.files import write_private

    openpyxl = require("openpyxl", "writing --xlsx")
    book = openpyxl.Workbook()
    book.remove(book.active)
    sheets: list[tuple[str, pd.DataFrame]] = [
        ("by class", report.by_class()),
        ("findings", report.to_frame()),
    ]
    if report.amounts is not None:
        sheets.append(("amounts", report.amounts))
    for title, frame in sheets:
        sheet = book.create_sheet(title)
        sheet.append([str(c) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            sheet.append([_cell(v) for v in row])
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, Decimal):
                    cell.number_format = "0.00"
    buf = io.BytesIO()
    book.save(buf)
    write_private(Path(path), buf.getvalue())
    return Path(path)


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Decimal | int | str):
        return value
    return str(value)


def age_table(report: ReconcileReport) -> pd.DataFrame:
    """Findings counted by class (rows) and age bucket (columns)."""
    labels = [label for _, _, label in AGE_BUCKETS]
    rows = {name: dict.fromkeys(labels, 0) for name in report.classes_checked}
    for f in report.findings:
        age = report.age(f) or 0
        label = next(lab for lo, hi, lab in AGE_BUCKETS if age >= lo and (hi is None or age <= hi))
        rows[f.mismatch_class][label] += 1
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=labels)
    return frame[frame.sum(axis=1) > 0]


def chart(report: ReconcileReport, path: str | Path | None = None):  # type: ignore[no-untyped-def]
    """A horizontal stacked bar chart of the findings by class and age; saved as PNG when ``path`` is given."""
    from paynb.extras import require

    plt = require("matplotlib.pyplot", "the reconciliation chart")
    table = age_table(report)
    fig, ax = plt.subplots(figsize=(9, 0.5 * max(len(table), 2) + 1.5))
    if table.empty:
        ax.text(0.5, 0.5, "no mismatches", ha="center", va="center")
        ax.set_axis_off()
    else:
        table.plot.barh(stacked=True, ax=ax)
        ax.set_xlabel("findings")
        ax.invert_yaxis()
    ax.set_title(f"reconcile {report.check}: mismatches by class and age (as of {report.as_of})")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, format="png")
        plt.close(fig)
    return fig
