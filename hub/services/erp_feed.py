"""The ERP's cursor feed of completed orders: added once, paged by seq, gone after ack.

Paging by a sequence is only safe if no row with a lower seq can become visible after a
higher one was read. On PostgreSQL a reader takes SHARE on the table, which waits for
every transaction still inserting (each holds ROW EXCLUSIVE) — so every seq handed out
before the read is committed or gone, and later inserts get higher ones. SQLite
serialises writers and readers already (BEGIN IMMEDIATE)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, text, update

from hub.storage.tables import ErpFeedEntry, OrderRow, utcnow
from hub.storage.uow import UnitOfWork
from hub.storage.upsert import insert_ignore

MAX_PAGE = 500


def add_to_feed(uow: UnitOfWork, order_id: str, at: datetime | None = None) -> bool:
    """Put a completed order in the feed (once). Returns True if it was added now."""
    return insert_ignore(uow.session, ErpFeedEntry, {"order_id": order_id, "added_at": at or utcnow()})


def in_feed(uow: UnitOfWork, order_id: str) -> bool:
    """The order is completed and in the ERP's feed: the ERP holds (or will pull) it as a sale."""
    return uow.session.execute(select(ErpFeedEntry.seq).where(ErpFeedEntry.order_id == order_id)).first() is not None


def page(uow: UnitOfWork, after: int = 0, limit: int = 50) -> tuple[list[tuple[ErpFeedEntry, OrderRow]], int | None]:
    """Unacked entries with seq > after, oldest first; `next` is None when nothing follows."""
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE erp_feed IN SHARE MODE"))
    limit = max(1, min(limit, MAX_PAGE))
    stmt = (select(ErpFeedEntry, OrderRow).join(OrderRow, OrderRow.id == ErpFeedEntry.order_id)
            .where(ErpFeedEntry.seq > after, ErpFeedEntry.acked_at.is_(None))
            .order_by(ErpFeedEntry.seq).limit(limit + 1))
    rows = [(entry, order) for entry, order in session.execute(stmt).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][0].seq if more else None)


def ack(uow: UnitOfWork, order_ids: Iterable[str], at: datetime | None = None) -> tuple[list[str], list[str]]:
    """Mark entries taken. Returns (acked now or before, unknown ids); acking twice is harmless."""
    wanted = list(dict.fromkeys(order_ids))
    known = set(uow.session.execute(
        select(ErpFeedEntry.order_id).where(ErpFeedEntry.order_id.in_(wanted))).scalars())
    unknown = [o for o in wanted if o not in known]
    if known:
        uow.session.execute(update(ErpFeedEntry).where(ErpFeedEntry.order_id.in_(known),
                                                       ErpFeedEntry.acked_at.is_(None))
                            .values(acked_at=at or utcnow()).execution_options(synchronize_session=False))
    return [o for o in wanted if o in known], unknown
