"""A store's capacity to take orders: paused by its staff (busy, closed now; until a time or until they say
otherwise), and a cap of orders per time window (config `locations[].capacity`, Ele.me's order.limited.taking).
Routing skips a store this refuses and says why (`refusals`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from hub.config import HubConfig
from hub.domain.errors import BadInput, UnknownLocation
from hub.domain.order_states import OrderStatus
from hub.storage.tables import OrderRow, StoreStatusRow, utcnow
from hub.storage.uow import UnitOfWork
from hub.storage.upsert import insert_ignore


@dataclass(frozen=True)
class StoreStatus:
    store_id: str
    paused: bool
    paused_until: datetime | None
    reason: str | None
    max_orders: int | None
    window_minutes: int | None
    taken: int

    @property
    def full(self) -> bool:
        return self.max_orders is not None and self.taken >= self.max_orders

    def refusal(self) -> str | None:
        """Why routing skips the store now, or None."""
        if self.paused:
            until = f" until {self.paused_until.isoformat(timespec='minutes')}" if self.paused_until else ""
            return f"paused by the store{until}" + (f" ({self.reason})" if self.reason else "")
        if self.full:
            return f"at capacity ({self.taken} of {self.max_orders} orders in {self.window_minutes} min)"
        return None


def taken(uow: UnitOfWork, store_id: str, since: datetime) -> int:
    """Orders routed to the store since `since`, but for those cancelled (they take no work)."""
    return int(uow.session.execute(
        select(func.count()).select_from(OrderRow).where(
            OrderRow.location_id == store_id, OrderRow.created_at >= since,
            OrderRow.status != OrderStatus.CANCELLED)).scalar_one())


_UNREAD = object()


def status(uow: UnitOfWork, cfg: HubConfig, store_id: str, now: datetime,
           row: StoreStatusRow | None | object = _UNREAD) -> StoreStatus:
    """The store's status now; `row`: its status row when the caller read it (None: it has none)."""
    loc = cfg.location(store_id)
    if loc is None or not loc.is_store:
        raise UnknownLocation(f"unknown store {store_id!r}")
    if row is _UNREAD:
        row = uow.session.get(StoreStatusRow, store_id)
    assert row is None or isinstance(row, StoreStatusRow)
    paused = bool(row and row.paused and (row.paused_until is None or row.paused_until > now))
    cap = loc.capacity
    return StoreStatus(store_id, paused, row.paused_until if paused and row else None,
                       row.reason if paused and row else None,
                       cap.max_orders if cap else None, cap.window_minutes if cap else None,
                       taken(uow, store_id, now - timedelta(minutes=cap.window_minutes)) if cap else 0)


def lock_window(uow: UnitOfWork, cfg: HubConfig, store_id: str | None) -> bool:
    """Lock a capped store's status row for the rest of the transaction (True), so orders routed to it are
    counted one after the other: counted without it, a rush of orders at once each saw room and all were taken,
    past the cap. A store without a cap takes no lock (False)."""
    loc = cfg.location(store_id) if store_id else None
    if loc is None or not loc.is_store or loc.capacity is None:
        return False
    insert_ignore(uow.session, StoreStatusRow, {"location_id": loc.id, "paused": False, "updated_at": utcnow()})
    uow.session.execute(select(StoreStatusRow.location_id).where(StoreStatusRow.location_id == loc.id)
                        .with_for_update())
    return True


def refusals(uow: UnitOfWork, cfg: HubConfig, now: datetime) -> dict[str, str]:
    """store id -> why it takes no order now, for every store that refuses."""
    out: dict[str, str] = {}
    ids = [loc.id for loc in cfg.stores]
    rows = {r.location_id: r for r in uow.session.execute(
        select(StoreStatusRow).where(StoreStatusRow.location_id.in_(ids))).scalars()} if ids else {}
    for loc in cfg.stores:                     # every store's row in one read, not one read per store
        reason = status(uow, cfg, loc.id, now, rows.get(loc.id)).refusal()
        if reason:
            out[loc.id] = reason
    return out


def pause(uow: UnitOfWork, cfg: HubConfig, store_id: str, paused: bool, until: datetime | None,
          reason: str | None, now: datetime) -> StoreStatus:
    """Pause (until a time, or until resumed) or resume taking orders. Orders already taken go on."""
    if paused and until is not None and until <= now:
        raise BadInput("until must be in the future")
    # The row made first if missing (two tills pausing a store without one both inserted it: a key conflict)
    insert_ignore(uow.session, StoreStatusRow, {"location_id": store_id, "paused": False, "updated_at": now})
    row = uow.session.get(StoreStatusRow, store_id, with_for_update=True, populate_existing=True)
    assert row is not None
    row.paused, row.paused_until = paused, until if paused else None
    row.reason, row.updated_at = (reason or None) if paused else None, now
    uow.session.flush()
    return status(uow, cfg, store_id, now)
