"""Opening hours as a calendar: periods per weekday, overnight periods, closures and special hours by date.

A day's periods come from the first of: its date's special hours, its date's closure (none), its weekday's
periods, the every-day periods. A period belongs to the day it opens: one whose close is not after its open
runs past midnight (Friday's 22:00-02:00 is open at 01:00 on Saturday, even when Saturday is a closure:
a closure means no period opens that day). A period is open from its open up to, not at, its close; a close
of 24:00 is the end of the day. Times are local (`hub.timezone`); datetimes passed in carry that offset.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Protocol

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 24 * 60
# How far ahead a promise looks for the store's next opening: a store closed longer has no promise.
HORIZON_DAYS = 14


class Period(Protocol):
    @property
    def open(self) -> str: ...
    @property
    def close(self) -> str: ...


class Calendar(Protocol):
    @property
    def daily(self) -> Sequence[Period]: ...
    @property
    def weekly(self) -> Mapping[str, Sequence[Period]]: ...
    @property
    def closed(self) -> Sequence[date]: ...
    @property
    def special(self) -> Mapping[date, Sequence[Period]]: ...


def minutes(hhmm: str) -> int:
    """"HH:MM" as minutes after midnight ("24:00" is 1440)."""
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def span(period: Period) -> tuple[int, int]:
    """(open, close) in minutes after the opening day's midnight; an overnight close is past 1440."""
    start, end = minutes(period.open), minutes(period.close)
    return start, end if end > start else end + DAY


def overlap(periods: Sequence[Period]) -> tuple[Period, Period] | None:
    """Two periods of one day that overlap, if any (config refuses them: which one's close would count?)."""
    ordered = sorted(periods, key=span)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if span(after)[0] < span(before)[1]:
            return before, after
    return None


def periods_on(cal: Calendar, day: date) -> Sequence[Period]:
    """The periods that open on `day`."""
    if day in cal.special:
        return cal.special[day]
    if day in cal.closed:
        return ()
    return cal.weekly.get(WEEKDAYS[day.weekday()], cal.daily)


# A day's intervals per calendar, day and offset, kept: a pickup order asks whether its store is open (and when it
# next opens) on every attempt, which was a twentieth of a plain order rush's gateway CPU. A calendar is config
# (frozen): the entry holds it, so its id is never another's; the table is emptied when full.
_DAYS: dict[tuple[int, date, object], tuple[Calendar, list[tuple[datetime, datetime]]]] = {}
DAYS_KEPT = 4096


def _intervals(cal: Calendar, day: date, at: datetime) -> list[tuple[datetime, datetime]]:
    key = (id(cal), day, at.tzinfo)
    held = _DAYS.get(key)
    if held is not None and held[0] is cal:
        return held[1]
    midnight = datetime.combine(day, time(0), tzinfo=at.tzinfo)
    made = sorted((midnight + timedelta(minutes=a), midnight + timedelta(minutes=b))
                  for a, b in map(span, periods_on(cal, day)))
    if len(_DAYS) >= DAYS_KEPT:
        _DAYS.clear()
    _DAYS[key] = (cal, made)
    return made


def open_intervals(cal: Calendar, at: datetime, days: int = HORIZON_DAYS) -> Iterator[tuple[datetime, datetime]]:
    """The open intervals that end after `at`, in order, for `days` days on (yesterday's overnight first)."""
    for offset in range(-1, days + 1):
        for start, end in _intervals(cal, at.date() + timedelta(days=offset), at):
            if end > at:
                yield start, end


def is_open(cal: Calendar | None, at: datetime) -> bool:
    """Whether the store is open at `at` (no calendar: open around the clock)."""
    if cal is None:
        return True
    return any(start <= at < end for start, end in open_intervals(cal, at, days=0))


def next_open(cal: Calendar | None, at: datetime) -> datetime | None:
    """`at` if open then, else when the store next opens; None if it does not within the horizon."""
    if cal is None:
        return at
    for start, _ in open_intervals(cal, at):
        return max(start, at)
    return None


def after_open_time(cal: Calendar | None, start: datetime, length: timedelta) -> datetime | None:
    """When `length` of the store's open time has passed from `start`: a pickup asked for 30 minutes before
    closing is ready 20 minutes after the next opening, not at night. None if not within the horizon."""
    if cal is None:
        return start + length
    left, counted_to = length, start
    for a, b in open_intervals(cal, start):
        a = max(a, counted_to)       # a night running into the next day's first period: its overlap once
        if b <= a:
            continue
        if a + left <= b:
            return a + left
        left, counted_to = left - (b - a), b
    return None


def closed_days(cal: Calendar | None, first: date, last: date) -> int:
    """How many days from `first` to `last` (both included) no period opens on."""
    if cal is None:
        return 0
    return sum(1 for n in range((last - first).days + 1) if not periods_on(cal, first + timedelta(days=n)))


def deadline_skipping_closed_days(cal: Calendar | None, start: datetime, days: int) -> datetime:
    """`start` plus `days` days, each day the store does not open adding one: the buyer has `days` of the
    store's days to collect, a holiday closure in between not counted against them."""
    end = start + timedelta(days=days)
    counted = start.date()
    for _ in range(366):                 # config refuses a week without a period: this ends long before
        extra = closed_days(cal, counted, end.date())
        if extra == 0:
            break
        counted, end = end.date() + timedelta(days=1), end + timedelta(days=extra)
    return end


def describe(cal: Calendar | None, day: date) -> str:
    """The day's hours for a reason: "open 09:00-14:00, 17:00-02:00", "closed all day" (a weekday without
    periods) or "a closure date, closed all day"."""
    if cal is None:
        return "open around the clock"
    periods = sorted(periods_on(cal, day), key=span)
    if not periods:
        return "a closure date, closed all day" if day in cal.closed and day not in cal.special else "closed all day"
    return "open " + ", ".join(f"{p.open}-{p.close}" for p in periods)
