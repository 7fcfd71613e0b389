"""The deadline calendar: business days per jurisdiction and the legal clocks.

Holidays come from the ``holidays`` package (pinned). Its data changes between releases,
so every due date is computed once when a record opens and stored on the record; it is
never recomputed later.

Clocks:
- GDPR one month (Art. 12(3)), counted per Regulation 1182/71: the same date in the next
  month, or that month's last day when it has no such date; a period ending on a
  Saturday, Sunday or public holiday ends on the next working day. Extension: two more
  months, only while the first due date has not passed.
- CCPA: confirm receipt within 10 business days; answer within 45 calendar days (+45).
- California Shine the Light (Civ. Code 1798.83): 30 days.
- Breach: users within 1 business day of confirmation; the supervisory authority
  within 72 hours of awareness, running through weekends and holidays (GDPR Art. 33).
"""

from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

DEFAULT_JURISDICTION = "IE"


@lru_cache(maxsize=64)
def _holidays(jurisdiction: str, year: int) -> holidays.HolidayBase:
    country, _, subdivision = jurisdiction.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None, years=year)


def is_business_day(day: date, jurisdiction: str = DEFAULT_JURISDICTION) -> bool:
    return day.weekday() < 5 and day not in _holidays(jurisdiction, day.year)


def next_business_day_on_or_after(day: date, jurisdiction: str = DEFAULT_JURISDICTION) -> date:
    while not is_business_day(day, jurisdiction):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, n: int, jurisdiction: str = DEFAULT_JURISDICTION) -> date:
    """The n-th business day after *day* (the day itself does not count)."""
    if n < 0:
        raise ValueError("n must be positive")
    while n:
        day += timedelta(days=1)
        if is_business_day(day, jurisdiction):
            n -= 1
    return day


def add_months(day: date, months: int) -> date:
    """Same date *months* later; the month's last day when that date does not exist."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def gdpr_due(received: date, jurisdiction: str = DEFAULT_JURISDICTION) -> date:
    return next_business_day_on_or_after(add_months(received, 1), jurisdiction)


def gdpr_extended_due(received: date, jurisdiction: str = DEFAULT_JURISDICTION) -> date:
    """The due date after the two-month extension (Art. 12(3)): three months in all."""
    return next_business_day_on_or_after(add_months(received, 3), jurisdiction)


def gdpr_extension_allowed(first_due: date, today: date) -> bool:
    """The subject must be told of an extension within the first month."""
    return today <= first_due


def ccpa_confirm_due(received: date, jurisdiction: str = "US-CA") -> date:
    return add_business_days(received, 10, jurisdiction)


def ccpa_due(received: date) -> date:
    return received + timedelta(days=45)


def ccpa_extended_due(received: date) -> date:
    return received + timedelta(days=90)


def shine_the_light_due(received: date) -> date:
    return received + timedelta(days=30)


def breach_users_due(confirmed_at: datetime, jurisdiction: str = DEFAULT_JURISDICTION) -> datetime:
    """1 business day: the same time of day on the next business day."""
    day = add_business_days(confirmed_at.date(), 1, jurisdiction)
    return datetime.combine(day, confirmed_at.timetz())


def breach_authority_due(aware_at: datetime) -> datetime:
    """72 hours, through weekends and holidays."""
    return aware_at + timedelta(hours=72)
