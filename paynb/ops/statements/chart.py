"""Calendar charts of missing statements: weeks × weekday for DAILY and WEEKLY, years × months for MONTHLY."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from paynb.extras import require
from paynb.ops.statements.gaps import GapReport
from paynb.ops.statements.periods import FREQUENCIES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _sunday(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)


def week_grid(counts: pd.DataFrame, start: date, end: date) -> tuple[np.ndarray, list[date]]:
    """Missing counts per statement day as rows = weeks (Sunday first), columns = Sun..Sat (NaN outside)."""
    first = _sunday(start)
    weeks = [first + timedelta(days=7 * i) for i in range((end - first).days // 7 + 1)]
    grid = np.zeros((len(weeks), 7))
    for w in range(len(weeks)):  # days outside the range are blank, not "nothing missing"
        for d in range(7):
            if not start <= first + timedelta(days=7 * w + d) <= end:
                grid[w, d] = np.nan
    for day, missing in zip(counts["statement_day"], counts["missing"], strict=True):
        if start <= day <= end:
            grid[(day - first).days // 7, (day.weekday() + 1) % 7] += int(missing)
    return grid, weeks


def month_grid(counts: pd.DataFrame, start: date, end: date) -> tuple[np.ndarray, list[int]]:
    """Missing counts as rows = years, columns = Jan..Dec (NaN for month ends outside the range)."""
    years = list(range(start.year, end.year + 1))
    grid = np.zeros((len(years), 12))
    for y, year in enumerate(years):
        for m in range(12):
            month_end = (date(year + (m + 1) // 12, (m + 1) % 12 + 1, 1)) - timedelta(days=1)
            if not start <= month_end <= end:
                grid[y, m] = np.nan
    for day, missing in zip(counts["statement_day"], counts["missing"], strict=True):
        if start <= day <= end:
            grid[day.year - start.year, day.month - 1] += int(missing)
    return grid, years


def _ticks(labels: list[str], limit: int = 26) -> tuple[list[int], list[str]]:
    step = max(1, len(labels) // limit + (1 if len(labels) % limit else 0))
    idx = list(range(0, len(labels), step))
    return idx, [labels[i] for i in idx]


def plot_gap_calendar(report: GapReport, frequencies: tuple[str, ...] | None = None) -> Figure:
    """One heatmap panel per frequency; the colour is the number of accounts missing that period."""
    plt = require("matplotlib.pyplot", "the statement gap calendar")
    MaxNLocator = require("matplotlib.ticker", "the statement gap calendar").MaxNLocator

    freqs = frequencies or ((report.frequency,) if report.frequency else FREQUENCIES)
    by_day = report.missing_by_day()
    fig, axes = plt.subplots(1, len(freqs), figsize=(4.5 * len(freqs), 6), squeeze=False)
    for ax, freq in zip(axes[0], freqs, strict=True):
        counts = by_day[by_day["frequency"] == freq]
        total = int(counts["missing"].sum()) if not counts.empty else 0
        if freq == "MONTHLY":
            grid, years = month_grid(counts, report.from_date, report.to_date)
            ax.set_xticks(range(12), MONTHS, rotation=90)
            ax.set_yticks(range(len(years)), [str(y) for y in years])
        else:
            grid, weeks = week_grid(counts, report.from_date, report.to_date)
            ax.set_xticks(range(7), WEEKDAYS)
            idx, labels = _ticks([f"{w:%Y-%m-%d}" for w in weeks])
            ax.set_yticks(idx, labels)
            ax.set_ylabel("week starting")
        cmap = plt.get_cmap("Reds").with_extremes(bad="#e8e8e8")
        top = max(1, int(np.nanmax(grid))) if np.isfinite(grid).any() else 1
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=0, vmax=top)
        ax.set_title(f"{freq}: {total} missing")
        bar = fig.colorbar(image, ax=ax, shrink=0.6, label="accounts missing")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    fig.suptitle(f"Missing statements, statement days {report.from_date}..{report.to_date}")
    fig.tight_layout()
    plt.close(fig)  # the caller displays it; no second copy from pyplot's state
    return fig
