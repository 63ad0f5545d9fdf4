"""What the database's columns hold: quantities, on-hand and money in fen are INTEGER columns (32 bits on
PostgreSQL), so a number outside this range is refused as input, never handed to the database (a DataError,
a 500) — and never silently accepted by SQLite, which would store it."""
from __future__ import annotations

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
