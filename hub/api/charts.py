"""`/admin/api/charts`: the console's charts of the last hour, one point a minute, from what the hub keeps —
the outbox (events written and published), the consumers' once-only records, the dead letters, and the
connector health window (calls, errors and latency from the metrics). No Prometheus needed.

Each minute is the 60 s ending at its point's time (the last ends now), so the newest point is a whole
minute, never the dip of one just begun. The outbox backlog at the end of minute i is read backwards from
now: unsent(t) = unsent now − events written after t + events published after t."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, func, select

from hub.api.http import Call
from hub.api.views import iso
from hub.storage.tables import DeadLetter, OutboxMessage, ProcessedMessage

MINUTES = 60
EPOCH_JULIAN_DAY = 2440587.5          # julianday('1970-01-01'): SQLite's dates as Unix seconds


def _seconds_since(column: Any, since: datetime, dialect: str) -> Any:
    """Seconds from `since` to the column's time, in SQL (SQLite keeps UTC times as text)."""
    if dialect == "sqlite":
        epoch = (func.julianday(column) - EPOCH_JULIAN_DAY) * 86400.0
    else:
        epoch = func.extract("epoch", column)
    return epoch - since.timestamp()


def _per_minute(session: Any, column: Any, since: datetime, *where: Any) -> list[int]:
    """Rows per minute of the hour after `since`, by `column`'s time: one grouped count."""
    dialect = session.get_bind().dialect.name
    offset = _seconds_since(column, since, dialect) / 60
    # SQLite's CAST truncates (non-negative here: floor); PostgreSQL's rounds, so floor first there
    minute = cast(offset if dialect == "sqlite" else func.floor(offset), Integer).label("minute")
    rows = session.execute(select(minute, func.count()).where(column >= since, *where).group_by(minute)).all()
    counts = [0] * MINUTES
    for m, n in rows:
        if m is not None and 0 <= int(m) < MINUTES:
            counts[int(m)] += int(n)
    return counts


def _backlog(unsent_now: int, written: list[int], published: list[int]) -> list[int]:
    """Unsent at the end of each minute, walking back from now."""
    out, unsent = [0] * MINUTES, unsent_now
    for i in reversed(range(MINUTES)):
        out[i] = max(unsent, 0)
        unsent += published[i] - written[i]        # before minute i: what it published was still waiting
    return out


def charts(call: Call) -> dict:
    now = call.deps.now()
    since = now - timedelta(minutes=MINUTES)
    with call.ctx.reader() as uow:
        s = uow.session
        written = _per_minute(s, OutboxMessage.created_at, since)
        published = _per_minute(s, OutboxMessage.sent_at, since)
        consumed = _per_minute(s, ProcessedMessage.processed_at, since)
        parked = _per_minute(s, DeadLetter.first_failed_at, since)
        unsent = s.execute(select(func.count()).select_from(OutboxMessage)
                           .where(OutboxMessage.sent_at.is_(None))).scalar_one()
    minutes = [iso(call, since + timedelta(minutes=i + 1)) for i in range(MINUTES)]
    connectors = call.deps.health.series(call.ctx.config.systems)
    for row in connectors:
        for point in row["points"]:
            point["at"] = iso(call, point["at"])
    return {"minutes": minutes,
            "flow": {"written": written, "published": published, "consumed": consumed, "parked": parked},
            "backlog": {"outbox_unsent": _backlog(int(unsent), written, published)},
            "connectors": connectors,
            "note": "events per minute from the database; connector figures since this process started"}
