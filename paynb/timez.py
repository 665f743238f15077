"""Time helpers. pay-db timestamps are naive UTC; statement periods are Pacific (America/Vancouver)
calendar dates; business days skip weekends and BC statutory holidays (``docs/business-days.md``)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Vancouver")


def utcnow_naive() -> datetime:
    """Now, as pay-db stores it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    """Aware -> naive UTC. A naive value is assumed to be UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def pacific_midnight_utc(day: date) -> datetime:
    """Local 00:00 of a Pacific calendar day, as naive UTC (DST-correct)."""
    return datetime.combine(day, time(0), tzinfo=PACIFIC).astimezone(UTC).replace(tzinfo=None)


def pacific_day_bounds_utc(start: date, end: date | None = None) -> tuple[datetime, datetime]:
    """[local 00:00 of start, local 00:00 of end+1) as naive UTC, to compare with ``created_on``."""
    end = start if end is None else end
    return pacific_midnight_utc(start), pacific_midnight_utc(end + timedelta(days=1))


def pacific_date(value: datetime) -> date:
    """The Pacific calendar date of a naive-UTC (or aware) timestamp."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(PACIFIC).date()


def pacific_today() -> date:
    return datetime.now(PACIFIC).date()


def week_bounds(day: date) -> tuple[date, date]:
    """Sunday..Saturday of the week holding ``day`` (statement weeks)."""
    start = day - timedelta(days=(day.weekday() + 1) % 7)
    return start, start + timedelta(days=6)


def month_bounds(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def is_month_end(day: date) -> bool:
    return (day + timedelta(days=1)).day == 1


def utc_today() -> date:
    """Today's UTC date: the day sbc-pay's EJV jobs date their INBOX names and effective dates by."""
    return datetime.now(UTC).date()


@lru_cache(maxsize=64)
def bc_holidays(year: int) -> dict[date, str]:
    """BC statutory holidays of ``year`` as sbc-pay's ``is_holiday`` counts them (``docs/business-days.md``):
    the ``holidays`` package's Canada/BC calendar (public, government and optional categories, observed
    days) plus Easter Monday, which the union recognises."""
    import holidays
    from holidays.constants import GOVERNMENT, OPTIONAL, PUBLIC

    calendar_ = holidays.country_holidays(
        "CA", subdiv="BC", years=year, observed=True, categories=(GOVERNMENT, OPTIONAL, PUBLIC)
    )
    calendar_._add_easter_monday("Easter Monday")  # what sbc-pay's util.is_holiday adds, the same way
    return {d: str(name) for d, name in calendar_.items() if d.year == year}


def holiday_name(day: date) -> str | None:
    """The BC statutory holiday on ``day``, or None."""
    return bc_holidays(day.year).get(day)


def is_business_day(day: date) -> bool:
    """Monday to Friday and not a BC statutory holiday (sbc-pay ``pay_api.utils.util.is_holiday``)."""
    return day.weekday() < 5 and holiday_name(day) is None


def nearest_business_day(day: date) -> date:
    """``day`` if it is a business day, else the next one (sbc-pay ``get_nearest_business_day``)."""
    return day if is_business_day(day) else next_business_day(day)


def next_business_day(day: date) -> date:
    d = day + timedelta(days=1)
    while not is_business_day(d):
        d += timedelta(days=1)
    return d


def add_business_days(day: date, n: int) -> date:
    d = day
    for _ in range(n):
        d = next_business_day(d)
    return d


def business_days_between(start: date, end: date) -> int:
    """Business days after ``start`` up to and including ``end``."""
    if end <= start:
        return 0
    return sum(1 for i in range(1, (end - start).days + 1) if is_business_day(start + timedelta(days=i)))


#: the longest look-back any "older than N days" option accepts (a century; more overflows datetime)
MAX_DAYS = 36_500
