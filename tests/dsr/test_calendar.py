"""The legal clocks, proved with the worked examples of RECIPES.md (DSR-2, DSR-4, BRE-1, BRE-2)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dsr import calendar as cal


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2026, 1, 31), date(2026, 3, 2)),  # Feb 28 is a Saturday -> Monday
        (date(2025, 11, 25), date(2025, 12, 29)),  # Christmas, St Stephen's, weekend (IE)
        (date(2024, 1, 31), date(2024, 2, 29)),  # leap year month end
        (date(2026, 3, 10), date(2026, 4, 10)),  # plain same date next month (a Friday)
    ],
)
def test_gdpr_one_month_DSR_2(received: date, due: date) -> None:
    """DSR-2: GDPR one month per Reg. 1182/71, rolled to the next working day."""
    assert cal.gdpr_due(received, "IE") == due


def test_gdpr_extension_is_two_more_months_and_only_before_first_due_DSR_2() -> None:
    received = date(2026, 1, 31)
    first = cal.gdpr_due(received, "IE")
    assert cal.gdpr_extended_due(received, "IE") == date(2026, 4, 30)
    assert cal.gdpr_extension_allowed(first, date(2026, 3, 2))
    assert not cal.gdpr_extension_allowed(first, date(2026, 3, 3))


def test_ccpa_clocks_DSR_2() -> None:
    """CCPA: confirm in 10 business days (US-CA holidays), answer in 45 (+45) days."""
    received = date(2026, 11, 20)  # Friday; Thanksgiving (Nov 26) and the day after are holidays
    assert cal.ccpa_confirm_due(received) == date(2026, 12, 8)
    assert cal.ccpa_due(received) == date(2027, 1, 4)
    assert cal.ccpa_extended_due(received) == date(2027, 2, 18)


def test_shine_the_light_30_days_DSR_4() -> None:
    assert cal.shine_the_light_due(date(2026, 1, 15)) == date(2026, 2, 14)


def test_breach_authority_72_hours_through_weekend_BRE_2() -> None:
    aware = datetime(2026, 3, 6, 17, 30, tzinfo=UTC)  # Friday
    assert cal.breach_authority_due(aware) == datetime(2026, 3, 9, 17, 30, tzinfo=UTC)


def test_breach_users_one_business_day_BRE_1() -> None:
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    assert cal.breach_users_due(friday, "IE") == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    # 2026-03-16 is a Monday; St Patrick's Day (Tue 17 March) is an Irish holiday.
    monday = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    assert cal.breach_users_due(monday, "IE") == datetime(2026, 3, 18, 9, 0, tzinfo=UTC)


def test_business_days_follow_the_jurisdiction() -> None:
    st_patricks = date(2026, 3, 17)
    assert not cal.is_business_day(st_patricks, "IE")
    assert cal.is_business_day(st_patricks, "DE")
    assert not cal.is_business_day(date(2026, 3, 14), "DE")  # Saturday
