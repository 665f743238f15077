"""Business days skip weekends and BC statutory holidays (the ``holidays`` package, as sbc-pay's
``is_holiday``); EJV health ages and redate's default date use them."""

from __future__ import annotations

from datetime import date

import pytest

from paynb.ops.ejv.redate import default_redate_date
from paynb.timez import (
    add_business_days,
    bc_holidays,
    business_days_between,
    holiday_name,
    is_business_day,
    nearest_business_day,
)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 2, 16), "Family Day"),
        (date(2026, 4, 3), "Good Friday"),
        (date(2026, 4, 6), "Easter Monday"),  # added as sbc-pay adds it
        (date(2026, 8, 3), "British Columbia Day"),
        (date(2026, 9, 30), "National Day for Truth and Reconciliation"),
        (date(2025, 9, 30), "National Day for Truth and Reconciliation"),
        (date(2026, 11, 11), "Remembrance Day"),
        (date(2026, 12, 28), "Boxing Day (observed)"),  # Boxing Day is a Saturday in 2026
    ],
)
def test_bc_statutory_holidays_are_not_business_days(day: date, name: str) -> None:
    assert day.weekday() < 5
    assert holiday_name(day) == name
    assert not is_business_day(day)


def test_ordinary_days() -> None:
    assert is_business_day(date(2026, 8, 4))  # the Tuesday after BC Day
    assert not is_business_day(date(2026, 8, 1))  # a Saturday
    assert holiday_name(date(2026, 8, 4)) is None
    # no hand-written list: the calendar comes from the package, so every year has its own dates
    assert date(2027, 8, 2) in bc_holidays(2027) and date(2027, 2, 15) in bc_holidays(2027)


def test_counting_and_moving_past_holidays() -> None:
    # Friday 2026-07-31 -> Wednesday 2026-08-05 crosses the weekend and BC Day: Tuesday and Wednesday count
    assert business_days_between(date(2026, 7, 31), date(2026, 8, 5)) == 2
    assert nearest_business_day(date(2026, 8, 1)) == date(2026, 8, 4)
    assert add_business_days(date(2026, 9, 29), 1) == date(2026, 10, 1)  # over Truth and Reconciliation Day
    assert nearest_business_day(date(2026, 12, 24)) == date(2026, 12, 24)
    assert nearest_business_day(date(2026, 12, 25)) == date(
        2026, 12, 29
    )  # Christmas, weekend, Boxing Day obs.


def test_redate_default_date_skips_holidays() -> None:
    assert default_redate_date(date(2026, 8, 3)) == date(2026, 8, 4)  # BC Day
    assert default_redate_date(date(2026, 2, 14)) == date(2026, 2, 17)  # Saturday, Sunday, Family Day
    assert default_redate_date(date(2026, 9, 30)) == date(2026, 10, 1)
    assert default_redate_date(date(2026, 9, 29)) == date(2026, 9, 29)


def test_ejv_health_ages_skip_holidays() -> None:
    from datetime import datetime

    from paynb.ops.ejv.health import _age

    # an INBOX written Friday 2026-07-31 20:01 Pacific (03:01 UTC Saturday, naive UTC in pay-db):
    # on Wednesday 2026-08-05 it is 2 business days old (BC Day on Monday), not 3
    assert _age(datetime(2026, 8, 1, 3, 1), date(2026, 8, 5)) == 2
    assert _age(datetime(2026, 8, 1, 3, 1), date(2026, 8, 6)) == 3
