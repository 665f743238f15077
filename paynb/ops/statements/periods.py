"""Statement periods (docs/statements.md#which-periods): which statements the job makes for a statement day.

``GENERATE_STATEMENTS <date>`` treats ``<date>`` as the statement day (the job's "previous day"):

* DAILY always, for that day;
* WEEKLY when the day is a Saturday, Sunday..Saturday;
* otherwise a WEEKLY *gap* statement, Sunday of the week..the day, for settings that end that day
  (none when the day is a Sunday: a one-day period is skipped);
* MONTHLY when the day is a month's last day, the whole calendar month.

Every period ends on the statement day, so the periods of different days never share a key
(account, frequency, from, to); a range of days is the union of its days.
Invoice windows are ``[Pacific 00:00 of from, Pacific 00:00 of to+1)`` as naive UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from paynb.enums import StatementFrequency
from paynb.errors import InputError
from paynb.timez import is_month_end, month_bounds, pacific_day_bounds_utc, pacific_today, week_bounds

DAILY = "DAILY"
WEEKLY = "WEEKLY"
GAP = "GAP"  # a WEEKLY statement cut short because the setting ended mid-week
MONTHLY = "MONTHLY"
KINDS = (DAILY, WEEKLY, GAP, MONTHLY)
FREQUENCIES = tuple(f.value for f in StatementFrequency)
KIND_FREQUENCY = {DAILY: DAILY, WEEKLY: WEEKLY, GAP: WEEKLY, MONTHLY: MONTHLY}

# ranges longer than this are refused: a typo in a year should not plan a decade of statements
MAX_RANGE_DAYS = 3 * 366


@dataclass(frozen=True, order=True)
class Period:
    """One statement period the job produces on ``statement_day``."""

    statement_day: date
    kind: str
    from_date: date
    to_date: date

    @property
    def frequency(self) -> str:
        return KIND_FREQUENCY[self.kind]

    def bounds_utc(self) -> tuple[datetime, datetime]:
        """The invoice window as naive UTC: [Pacific midnight of from, Pacific midnight of to+1)."""
        return pacific_day_bounds_utc(self.from_date, self.to_date)


def is_saturday(day: date) -> bool:
    return day.weekday() == 5


def periods_for_day(day: date) -> list[Period]:
    """The periods ``GENERATE_STATEMENTS <day>`` works on, in the job's order."""
    periods = [Period(day, DAILY, day, day)]
    week_start, _ = week_bounds(day)
    if is_saturday(day):
        periods.append(Period(day, WEEKLY, week_start, day))
    elif week_start != day:
        periods.append(Period(day, GAP, week_start, day))
    if is_month_end(day):
        periods.append(Period(day, MONTHLY, month_bounds(day)[0], day))
    return periods


def days_between(from_date: date, to_date: date) -> Iterator[date]:
    day = from_date
    while day <= to_date:
        yield day
        day += timedelta(days=1)


def periods_for_range(from_date: date, to_date: date) -> list[Period]:
    check_range(from_date, to_date)
    return [p for day in days_between(from_date, to_date) for p in periods_for_day(day)]


def parse_day(value: date | str | None, field: str) -> date | None:
    """A date from a parameter or option; '' and None mean 'not given'."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"not a date: {value!r} (expected YYYY-MM-DD)", field=field) from None


def require_day(value: date | str | None, field: str) -> date:
    day = parse_day(value, field)
    if day is None:
        raise InputError("a date is required (YYYY-MM-DD)", field=field)
    return day


def check_range(from_date: date, to_date: date, *, max_days: int | None = MAX_RANGE_DAYS) -> None:
    if from_date > to_date:
        raise InputError(f"from {from_date} is after to {to_date}", field="from_date")
    if max_days is not None and (to_date - from_date).days > max_days:
        raise InputError(f"range {from_date}..{to_date} is longer than {max_days} days", field="to_date")


def parse_frequency(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    freq = str(value).strip().upper()
    if freq not in FREQUENCIES:
        raise InputError(f"unknown frequency {value!r} (one of {', '.join(FREQUENCIES)})", field="frequency")
    return freq


def parse_account(value: str | int | None) -> str | None:
    """auth_account_id is a string column; accept ints from papermill."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text or len(text) > 50:
        raise InputError(f"not an auth account id: {value!r}", field="account")
    return text


def default_to_date() -> date:
    """Yesterday in Pacific time: the last statement day the nightly job has handled."""
    return pacific_today() - timedelta(days=1)
