"""Opening hours as a calendar (hub/domain/hours.py) on config's own model."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hub.config import OpeningHours
from hub.domain import hours

SH = timezone(timedelta(hours=8))
# 2026-11-27 is a Friday.
FRI, SAT, SUN = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)

BAR = OpeningHours.model_validate({
    "periods": [{"open": "11:00", "close": "14:00"}, {"open": "17:00", "close": "22:00"}],
    "weekly": {"fri": [{"open": "11:00", "close": "14:00"}, {"open": "17:00", "close": "02:00"}],
               "sun": []},
    "closed": ["2026-12-25"],
    "special": {"2026-12-31": [{"open": "18:00", "close": "03:00"}]},
})


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SH)


def test_several_periods_a_day_with_a_break_between():
    thu = FRI - timedelta(days=1)
    assert [hours.is_open(BAR, at(thu, h)) for h in (10, 11, 13, 14, 16, 17, 21, 22)] == \
        [False, True, True, False, False, True, True, False]


def test_an_overnight_period_belongs_to_the_day_it_opens():
    assert hours.is_open(BAR, at(FRI, 23)) and hours.is_open(BAR, at(SAT, 1, 59))
    assert not hours.is_open(BAR, at(SAT, 2))                 # its close is closed
    assert not hours.is_open(BAR, at(SUN, 12))                # Sunday: closed all day
    assert not hours.is_open(BAR, at(SAT, 23))                # Saturday's own hours end at 22:00


def test_a_closure_and_special_hours_by_date():
    xmas = date(2026, 12, 25)                                 # a Friday, closed
    assert not hours.is_open(BAR, at(xmas, 12)) and not hours.is_open(BAR, at(xmas, 23))
    assert hours.is_open(BAR, at(xmas + timedelta(days=1), 12))
    nye = date(2026, 12, 31)                                  # a Thursday, special hours only
    assert not hours.is_open(BAR, at(nye, 12))
    assert hours.is_open(BAR, at(nye, 23)) and hours.is_open(BAR, at(nye + timedelta(days=1), 2, 59))
    assert hours.describe(BAR, xmas) == "a closure date, closed all day"
    assert hours.describe(BAR, FRI) == "open 11:00-14:00, 17:00-02:00"


def test_the_old_single_pair_means_every_day():
    old = OpeningHours.model_validate({"open": "22:00", "close": "06:00"})
    assert [p.model_dump() for p in old.daily] == [{"open": "22:00", "close": "06:00"}]
    for day in (FRI, SAT, SUN):
        assert hours.is_open(old, at(day, 23)) and not hours.is_open(old, at(day, 12))


def test_next_opening_and_open_time_across_a_break_a_night_and_a_closed_day():
    assert hours.next_open(BAR, at(FRI, 12)) == at(FRI, 12)
    assert hours.next_open(BAR, at(FRI, 15)) == at(FRI, 17)
    assert hours.next_open(BAR, at(SAT, 23)) == at(SUN + timedelta(days=1), 11)     # Sunday is closed
    half_hour = timedelta(minutes=30)
    assert hours.after_open_time(BAR, at(FRI, 12), half_hour) == at(FRI, 12, 30)
    assert hours.after_open_time(BAR, at(FRI, 13, 50), half_hour) == at(FRI, 17, 20)   # 10 min, then 20
    assert hours.after_open_time(BAR, at(SAT, 1, 45), half_hour) == at(SAT, 11, 15)    # the night's last 15
    assert hours.after_open_time(None, at(SUN, 3), half_hour) == at(SUN, 3, 30)        # no calendar


def test_a_store_closed_for_longer_than_the_horizon_has_no_next_opening():
    shut = OpeningHours.model_validate({"periods": [{"open": "09:00", "close": "18:00"}],
                                        "closed": [FRI + timedelta(days=n) for n in range(30)]})
    assert hours.next_open(shut, at(FRI, 10)) is None
    assert hours.after_open_time(shut, at(FRI, 10), timedelta(minutes=30)) is None


def test_the_collection_deadline_skips_days_the_store_does_not_open():
    thu = FRI - timedelta(days=1)
    # Thursday + 3 days is Sunday, closed: Monday.
    assert hours.deadline_skipping_closed_days(BAR, at(thu, 12), 3) == at(SUN + timedelta(days=1), 12)
    # Over Christmas (Friday, closed) and a Sunday: two days more.
    assert hours.deadline_skipping_closed_days(BAR, at(date(2026, 12, 24), 12), 3) == at(date(2026, 12, 29), 12)
    assert hours.deadline_skipping_closed_days(None, at(thu, 12), 3) == at(SUN, 12)


def test_24_00_closes_at_midnight():
    all_day = OpeningHours.model_validate({"periods": [{"open": "00:00", "close": "24:00"}], "closed": [SAT]})
    assert hours.is_open(all_day, at(FRI, 0)) and hours.is_open(all_day, at(FRI, 23, 59))
    assert not hours.is_open(all_day, at(SAT, 0)) and hours.is_open(all_day, at(SUN, 0))
