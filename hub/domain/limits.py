"""What the hub takes from outside, at most: numbers its columns hold, text it can store, times it believes.

Numbers: quantities, on-hand and money in fen are INTEGER columns (32 bits on PostgreSQL), so a number outside
`INT_MIN`..`INT_MAX` is refused as input, never handed to the database (a DataError, a 500) — and never silently
accepted by SQLite, which would store it. Text: a string that is not UTF-8 (a lone surrogate) cannot be stored.

Times, from other systems' clocks: a till, an ERP or a courier with a wrong clock must not freeze the ledger or an
order's history: a count dated tomorrow would make every real sale until then look "older than the last count".
A time more than `MAX_CLOCK_AHEAD` ahead of the hub's clock is refused; a time outside `EARLIEST`..`LATEST` is
nonsense (and `0001-01-01T00:00:00+14:00` cannot even be turned into UTC).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.domain.errors import TimeAhead

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


def fits_int(n: int) -> bool:
    """Whether `n` fits an INTEGER column."""
    return INT_MIN <= n <= INT_MAX


def is_utf8(text: str) -> bool:
    """Whether `text` can be written as UTF-8: a lone surrogate ("\\ud800" in JSON) cannot."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_CLOCK_AHEAD = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def in_range(when: datetime) -> bool:
    """A time-zone-aware time between 1970 and 2999 that converts to UTC."""
    try:
        return EARLIEST <= when.astimezone(UTC) < LATEST
    except (OverflowError, ValueError):
        return False


def is_ahead(when: datetime, now: datetime) -> bool:
    return when > now + MAX_CLOCK_AHEAD


def not_ahead(when: datetime, now: datetime, what: str) -> None:
    """Raise TimeAhead when `when` is more than MAX_CLOCK_AHEAD after `now`."""
    if is_ahead(when, now):
        raise TimeAhead(f"{what} {when.isoformat()} is more than {int(MAX_CLOCK_AHEAD.total_seconds() // 60)} "
                        "minutes ahead of the hub's clock")
