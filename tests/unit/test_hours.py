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


def test_a_night_running_into_the_next_mornings_period_counts_their_overlap_once():
    early = OpeningHours.model_validate({"periods": [{"open": "05:00", "close": "09:00"},
                                                     {"open": "22:00", "close": "06:00"}]})
    # From 23:00 the store is open without a break until 09:00 (the night to 06:00, the morning from 05:00).
    assert hours.after_open_time(early, at(FRI, 23), timedelta(hours=9)) == at(SAT, 8)
    assert hours.after_open_time(early, at(FRI, 23), timedelta(hours=10)) == at(SAT, 9)
    assert hours.after_open_time(early, at(FRI, 23), timedelta(hours=11)) == at(SAT, 23)


def test_24_00_closes_at_midnight():
    all_day = OpeningHours.model_validate({"periods": [{"open": "00:00", "close": "24:00"}], "closed": [SAT]})
    assert hours.is_open(all_day, at(FRI, 0)) and hours.is_open(all_day, at(FRI, 23, 59))
    assert not hours.is_open(all_day, at(SAT, 0)) and hours.is_open(all_day, at(SUN, 0))


# -- property: the calendar agrees with a minute-by-minute reference ----------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

START = date(2026, 11, 23)                    # a Monday; the reference covers three weeks from here
DAYS = 21


@st.composite
def day_periods(draw):
    """Up to three non-overlapping periods of one day, the last possibly past midnight."""
    cuts = sorted(draw(st.sets(st.integers(0, 47), min_size=0, max_size=6)))
    cuts = cuts[: len(cuts) // 2 * 2]
    periods = [(cuts[i] * 30, cuts[i + 1] * 30) for i in range(0, len(cuts), 2)]
    if periods and draw(st.booleans()):           # the last one runs overnight, closing before its open
        a, _ = periods[-1]
        periods[-1] = (a, draw(st.integers(0, min(a, 600) // 30)) * 30)
    return [{"open": f"{a // 60:02d}:{a % 60:02d}", "close": f"{b // 60:02d}:{b % 60:02d}" if b < 1440 else "24:00"}
            for a, b in periods if a != b]


@st.composite
def calendars(draw):
    daily = draw(day_periods())
    weekly = {d: draw(day_periods()) for d in draw(st.sets(st.sampled_from(hours.WEEKDAYS), max_size=3))}
    if not any(weekly.get(d, daily) for d in hours.WEEKDAYS):
        daily = [{"open": "09:00", "close": "18:00"}]
        weekly = {d: p for d, p in weekly.items() if p}
    closed = sorted(draw(st.sets(st.integers(0, DAYS - 1), max_size=4)))
    return {"periods": daily, "weekly": weekly, "closed": [(START + timedelta(days=n)).isoformat() for n in closed]}


def reference(raw: dict) -> bytearray:
    """Open minutes from START's midnight, marked from the raw calendar by the README's rules."""
    minute = bytearray(DAYS * 1440 + 2 * 1440)
    closed = set(raw["closed"])
    for n in range(DAYS):
        day = START + timedelta(days=n)
        if day.isoformat() in closed:
            continue
        for p in raw["weekly"].get(hours.WEEKDAYS[day.weekday()], raw["periods"]):
            a = int(p["open"][:2]) * 60 + int(p["open"][3:])
            b = int(p["close"][:2]) * 60 + int(p["close"][3:])
            if b <= a:
                b += 1440
            for m in range(n * 1440 + a, n * 1440 + b):
                minute[m] = 1
    return minute


# Generation is timed by a health check: on a shared, busy machine it is slow without being wrong.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=calendars(), offset=st.integers(1440, (DAYS - 16) * 1440), length=st.sampled_from([30, 60, 95]))
def test_the_calendar_matches_a_minute_reference(raw, offset, length):
    cal = OpeningHours.model_validate(raw)
    ref = reference(raw)
    origin = at(START, 0)
    t = origin + timedelta(minutes=offset)
    assert hours.is_open(cal, t) is bool(ref[offset])
    opens = hours.next_open(cal, t)
    first = next((m for m in range(offset, offset + 15 * 1440) if ref[m]), None)
    if first is None or first > offset + hours.HORIZON_DAYS * 1440:
        assert opens is None or opens - t <= timedelta(days=hours.HORIZON_DAYS + 1)
    else:
        assert opens == origin + timedelta(minutes=first)
        ready = hours.after_open_time(cal, t, timedelta(minutes=length))
        seen, m = 0, offset
        while seen < length and m < len(ref):
            seen += ref[m]
            m += 1
        if seen == length and m - offset <= 13 * 1440:        # well within the horizon
            assert ready == origin + timedelta(minutes=m)


def test_a_days_hours_kept_for_speed_belong_to_their_own_calendar():
    from datetime import date, datetime, timedelta, timezone

    from hub.config import OpeningHours
    from hub.domain import hours

    tz = timezone(timedelta(hours=8))
    at = datetime(2026, 12, 7, 8, 30, tzinfo=tz)
    early = OpeningHours(open="08:00", close="20:00")
    late = early.model_copy(update={"open": "09:00"})            # another calendar: its own hours, not the first's
    assert hours.is_open(early, at) and not hours.is_open(late, at)
    assert hours.next_open(late, at) == at.replace(hour=9, minute=0)
    assert hours.is_open(early, at) and not hours.is_open(late, at)            # asked again: the same answers
    assert hours.periods_on(late, date(2026, 12, 7))
