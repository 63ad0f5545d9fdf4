"""The stock ledger: deltas, counts, reservations. No overselling, order-independent.

on_hand  = the newest count + every delta that occurred after it (whatever order they arrive in)
available = on_hand - reserved - safety stock (hub/domain/stock.py holds the arithmetic)
A delta is applied once per (source, external id, sku, location); a count only if newer
than the last count held. Reservations are a conditional UPDATE, so the database itself
refuses the one unit too many, however many writers race.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Integer, bindparam, func, select, tuple_, update
from sqlalchemy.orm import Session

from hub import events
from hub.config import ChannelConfig, HubConfig
from hub.domain.errors import BadInput, InsufficientStock, SaleEnded, SaleSoldOut, UnknownLocation, UnknownSku
from hub.domain.limits import fits_int, not_ahead
from hub.domain.model import StockCount, StockDelta
from hub.domain.stock import (
    Allocation,
    StockPosition,
    available,
    can_take,
    channel_figure,
    hold_is_backed,
    may_draw,
    newer_than_count,
    quota_left,
    reserved_after_release,
    within_share,
)
from hub.storage.tables import (
    ChannelReserved,
    FlashSaleRow,
    LocationRow,
    Reservation,
    SkuRow,
    StockLevel,
    StockMovement,
    utcnow,
)
from hub.storage.uow import UnitOfWork, guard_detached, insert_detached, write_detached
from hub.storage.upsert import insert_ignore, rows_affected

# Ledger kinds that move on-hand by their qty, and so are summed after a count.
DELTA_KINDS = ("delta", "commit", "return")


@dataclass(frozen=True)
class LedgerResult:
    applied: bool
    duplicate: bool
    on_hand: int
    reason: str = ""


LocationStock = StockPosition       # the name the services' callers know


def stock_changed(uow: UnitOfWork, sku: str, location_id: str, cause: str) -> None:
    """One event per (SKU, location) per transaction: the consumer reads the figure as it is then."""
    uow.emit(events.StockChanged(sku, location_id, cause), once_per=(events.StockChanged.TYPE, sku, location_id))


def _check_refs(session: Session, sku: str, location_id: str) -> None:
    if session.get(SkuRow, sku) is None:
        raise UnknownSku(f"unknown SKU {sku!r}")
    if session.get(LocationRow, location_id) is None:
        raise UnknownLocation(f"unknown location {location_id!r}")


def _locked_level(session: Session, sku: str, location_id: str) -> StockLevel:
    """The stock row, created if missing, locked for this transaction."""
    insert_ignore(session, StockLevel, {"sku": sku, "location_id": location_id, "on_hand": 0,
                                        "reserved": 0, "updated_at": utcnow()})
    stmt = select(StockLevel).where(StockLevel.sku == sku, StockLevel.location_id == location_id)
    return session.execute(stmt.with_for_update().execution_options(populate_existing=True)).scalar_one()


def _record(session: Session, **values: object) -> bool:
    """Write a ledger row unless (source, external id, sku, location) is already there."""
    return insert_ignore(session, StockMovement, {"recorded_at": utcnow(), **values})


def _apply_change(session: Session, kind: str, sku: str, location_id: str, qty: int, source: str,
                  external_id: str, occurred_at: datetime, note: str | None = None) -> LedgerResult:
    level = _locked_level(session, sku, location_id)
    # A delta older than the last count is already inside that count.
    counts = newer_than_count(occurred_at, level.last_counted_at)
    on_hand_after = level.on_hand + qty if counts else level.on_hand
    if not fits_int(qty) or not fits_int(on_hand_after):      # INTEGER columns: refused, not a DataError
        raise BadInput(f"a change of {qty} takes on-hand of {sku} at {location_id} out of range")
    inserted = _record(session, sku=sku, location_id=location_id, kind=kind, qty=qty, source=source,
                       external_id=external_id, occurred_at=occurred_at, applied=counts,
                       on_hand_after=on_hand_after, note=note)
    if not inserted:
        return LedgerResult(False, True, level.on_hand, "duplicate")
    if counts:
        level.on_hand = on_hand_after
        level.updated_at = utcnow()
    return LedgerResult(counts, False, level.on_hand, "" if counts else "older than the last count")


def apply_delta(uow: UnitOfWork, delta: StockDelta, now: datetime | None = None) -> LedgerResult:
    """Apply a change of on-hand (a POS sale, an ERP goods receipt) once; TimeAhead for a time from the future."""
    if delta.qty == 0:
        raise BadInput("a stock delta of 0 changes nothing")
    not_ahead(delta.occurred_at, now or utcnow(), "occurred_at")
    _check_refs(uow.session, delta.sku, delta.location_id)
    result = _apply_change(uow.session, "delta", delta.sku, delta.location_id, delta.qty, delta.source,
                           delta.external_id, delta.occurred_at, delta.reason)
    if result.applied:
        stock_changed(uow, delta.sku, delta.location_id, f"{delta.source}:{delta.reason}")
    return result


def apply_count(uow: UnitOfWork, count: StockCount, now: datetime | None = None) -> LedgerResult:
    """Apply an absolute on-hand if it is newer than the last count held.

    A count dated ahead of the hub's clock is refused (TimeAhead): held as the last count, it would make
    every real sale until then "older than the last count", and the hub's own stock-outs with it."""
    if count.on_hand < 0:
        raise BadInput(f"a count cannot be negative ({count.sku}: {count.on_hand})")
    if not fits_int(count.on_hand):
        raise BadInput(f"a count of {count.on_hand} is out of range ({count.sku})")
    not_ahead(count.counted_at, now or utcnow(), "counted_at")
    session = uow.session
    _check_refs(session, count.sku, count.location_id)
    level = _locked_level(session, count.sku, count.location_id)
    stale = not newer_than_count(count.counted_at, level.last_counted_at)
    if stale:
        on_hand = level.on_hand
    else:
        later = session.execute(
            select(func.coalesce(func.sum(StockMovement.qty), 0)).where(
                StockMovement.sku == count.sku, StockMovement.location_id == count.location_id,
                StockMovement.kind.in_(DELTA_KINDS), StockMovement.occurred_at > count.counted_at,
            )
        ).scalar_one()
        on_hand = count.on_hand + int(later)
        if not fits_int(on_hand):
            raise BadInput(f"a count of {count.on_hand} with the later changes is out of range ({count.sku})")
    inserted = _record(session, sku=count.sku, location_id=count.location_id, kind="count", qty=count.on_hand,
                       source=count.source, external_id=count.external_id, occurred_at=count.counted_at,
                       applied=not stale, on_hand_after=on_hand)
    if not inserted:
        return LedgerResult(False, True, level.on_hand, "duplicate")
    if stale:
        return LedgerResult(False, False, level.on_hand, "older than the last count")
    changed = on_hand != level.on_hand
    level.on_hand, level.last_counted_at, level.updated_at = on_hand, count.counted_at, utcnow()
    if changed:
        stock_changed(uow, count.sku, count.location_id, f"{count.source}:count")
    return LedgerResult(True, False, on_hand)


# -- reservations ------------------------------------------------------------------------------

def reserve(uow: UnitOfWork, cfg: HubConfig, order_id: str, allocations: Iterable[tuple[str, str, int]],
            ttl: timedelta | None, channel_safety: int = 0, channel: str | None = None, *,
            final: bool = False, detached: bool = False) -> list[Reservation]:
    """Reserve every (sku, location, qty) or nothing; InsufficientStock lists every short line.

    `channel_safety` is what the ordering channel holds back per location on top of the
    location's own safety stock, so a channel never sells what it does not show. A `channel` with an
    allocation also takes the units out of its share, in the same transaction (`_take_share`). `final`: the
    caller's transaction ends with this refusal (a pickup order, never re-routed, is rolled back whole), so no
    savepoint is taken: a hot stock row is locked from its UPDATE to the COMMIT, not also over the
    savepoint's RELEASE — one turn of a busy gateway less per order in a rush (issue 26). `detached` (with
    `final`): the caller queued its order's rows outside the ORM (`storage/uow.py`); a reservation of one
    stock row that counts against no channel's share is queued with them (`_reserve_detached`), the rest of
    them sent first.
    """
    session = uow.session
    allocations = list(allocations)
    if detached and final and len({(sku, loc) for sku, loc, _ in allocations}) == 1:
        sku, location_id, _ = allocations[0]
        ch = cfg.channel(channel) if channel else None
        if ch is None or ch.allocation_for(location_id, sku) is None:
            return [_reserve_detached(uow, cfg, ch, order_id, sku, location_id,
                                      sum(q for *_, q in allocations), ttl, channel_safety)]
    if detached:
        write_detached(uow)                # the order's rows before the ORM's reservation refers to them
    wanted: dict[tuple[str, str], int] = {}
    for sku, location_id, qty in allocations:
        if qty <= 0:
            raise BadInput(f"quantity must be positive ({sku}: {qty})")
        _check_refs(session, sku, location_id)
        wanted[(sku, location_id)] = wanted.get((sku, location_id), 0) + qty
    now = utcnow()
    # The events, the reservations and their ledger rows go in first and the stock rows are locked last:
    # the transaction then holds a hot row's lock (a flash sale's) for its UPDATE, the savepoint's release
    # and the commit only. stock.changed is written before it is certain; should this reservation fail
    # and the order be routed elsewhere, the event only makes channel sync read an unchanged figure.
    for sku, location_id in sorted(wanted):
        stock_changed(uow, sku, location_id, "reservation")
    uow.write_events()
    savepoint = None if final else session.begin_nested()
    rows = []
    ch = cfg.channel(channel) if channel else None
    shares = {pair: share for pair in wanted
              if ch is not None and (share := ch.allocation_for(pair[1], pair[0])) is not None}
    for (sku, location_id), qty in sorted(wanted.items()):
        row = Reservation(order_id=order_id, sku=sku, location_id=location_id, qty=qty, status="open",
                          created_at=now, expires_at=(now + ttl) if ttl else None,
                          channel=channel if (sku, location_id) in shares else None)
        session.add(row)
        rows.append(row)
        _record(session, sku=sku, location_id=location_id, kind="reserve", qty=qty, source="hub",
                external_id=f"order:{order_id}:reserve", occurred_at=now, applied=True, note=None)
    session.flush()
    short: list[dict] = []
    # A fixed lock order keeps two multi-line orders from deadlocking each other.
    for (sku, location_id), qty in sorted(wanted.items()):
        safety = cfg.safety_stock(location_id)
        share = shares.get((sku, location_id))
        if not _take(session, sku, location_id, qty, safety + channel_safety, now) or (
                share is not None and channel is not None
                and not _take_share(session, channel, sku, location_id, qty, safety, channel_safety, share)):
            short.append({"sku": sku, "location_id": location_id, "wanted": qty})
    if short:
        if savepoint is not None:
            savepoint.rollback()
        for line in short:
            line["available"] = figure_for(session, cfg, ch, line["sku"], line["location_id"], channel_safety)
        raise InsufficientStock(short)
    if savepoint is not None:
        savepoint.commit()
    return rows


_G_LEVEL = StockLevel.__table__.c
# A pickup order's units off its store's stock row (`_take`'s rule), sent last with the order's rows (issue 26).
_TAKE_DETACHED = (update(StockLevel.__table__)
                  .where(_G_LEVEL.sku == bindparam("g_sku"), _G_LEVEL.location_id == bindparam("g_location"),
                         can_take(_G_LEVEL.on_hand, _G_LEVEL.reserved, bindparam("g_safety", type_=Integer),
                                  bindparam("g_qty", type_=Integer)))
                  .values(reserved=_G_LEVEL.reserved + bindparam("g_qty", type_=Integer),
                          updated_at=bindparam("g_now")))


def _reserve_detached(uow: UnitOfWork, cfg: HubConfig, ch: ChannelConfig | None, order_id: str, sku: str,
                      location_id: str, qty: int, ttl: timedelta | None, channel_safety: int) -> Reservation:
    """`reserve` of one stock row, queued with the order's rows (`storage/uow.py`): its stock.changed
    event, the reservation and its ledger row, then the stock row's conditional UPDATE as the guard — on
    PostgreSQL one statement with the order's rows, so the hot row is locked from there to the COMMIT only.
    The SKU was checked by the order (`check_sellable`), the store is routing's, from config."""
    if qty <= 0:
        raise BadInput(f"quantity must be positive ({sku}: {qty})")
    if cfg.location(location_id) is None:
        raise UnknownLocation(f"unknown location {location_id!r}")
    session, now = uow.session, utcnow()
    stock_changed(uow, sku, location_id, "reservation")
    uow.queue_events()
    row = Reservation(order_id=order_id, sku=sku, location_id=location_id, qty=qty, status="open",
                      created_at=now, expires_at=(now + ttl) if ttl else None)
    insert_detached(uow, row, StockMovement(
        sku=sku, location_id=location_id, kind="reserve", qty=qty, source="hub",
        external_id=f"order:{order_id}:reserve", occurred_at=now, recorded_at=now, applied=True, note=None))
    safety = cfg.safety_stock(location_id) + channel_safety

    def refused() -> None:
        raise InsufficientStock([{"sku": sku, "location_id": location_id, "wanted": qty,
                                  "available": figure_for(session, cfg, ch, sku, location_id, channel_safety)}])

    guard_detached(uow, _TAKE_DETACHED, {"g_sku": sku, "g_location": location_id, "g_safety": safety,
                                             "g_qty": qty, "g_now": now}, refused)
    return row


def _take(session: Session, sku: str, location_id: str, qty: int, safety: int, now: datetime) -> bool:
    """Reserve `qty` on the stock row if that much is available after `safety`: one conditional UPDATE, so
    the database refuses the one unit too many however many writers race. False when it did not."""
    result = session.execute(
        update(StockLevel)
        .where(StockLevel.sku == sku, StockLevel.location_id == location_id,
               can_take(StockLevel.on_hand, StockLevel.reserved, safety, qty))
        .values(reserved=StockLevel.reserved + qty, updated_at=now)
        .execution_options(synchronize_session=False))
    return rows_affected(result) == 1


_LEVEL = StockLevel.__table__.c
_CHANNEL = ChannelReserved.__table__.c


def _take_share(session: Session, channel: str, sku: str, location_id: str, qty: int, safety: int,
                channel_safety: int, share: Allocation) -> bool:
    """Count `qty` against the channel's allocation if it has that much left: one conditional UPDATE of the
    channel's row, measured against the stock row this transaction has just locked (`_take` runs first), so
    two channels' orders for one SKU and store are serialised by that lock and neither passes its share."""
    insert_ignore(session, ChannelReserved, {"channel": channel, "sku": sku, "location_id": location_id,
                                             "reserved": 0})
    pool = (select(_LEVEL.on_hand - safety).where(_LEVEL.sku == sku, _LEVEL.location_id == location_id)
            .scalar_subquery())
    result = session.execute(
        update(ChannelReserved)
        .where(_CHANNEL.channel == channel, _CHANNEL.sku == sku, _CHANNEL.location_id == location_id,
               within_share(_CHANNEL.reserved, qty, channel_safety, pool, share))
        .values(reserved=_CHANNEL.reserved + qty)
        .execution_options(synchronize_session=False))
    return rows_affected(result) == 1


def _give_back_share(session: Session, res: Reservation, qty: int) -> None:
    """`qty` of a reservation that counted against its channel's allocation is no longer held open. Called
    after the stock row's lock, like `_take_share`, so the locks are always taken in the same order."""
    if res.channel is None or qty <= 0:
        return
    row = session.execute(select(ChannelReserved).filter_by(channel=res.channel, sku=res.sku,
                                                            location_id=res.location_id)
                          .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    if row is not None:
        row.reserved = reserved_after_release(row.reserved, qty)


def figure_for(session: Session, cfg: HubConfig, channel: ChannelConfig | None, sku: str, location_id: str,
               channel_safety: int = 0) -> int:
    """What `channel` may sell of `sku` at `location_id` now (its safety stock and allocation applied); no
    channel: the location's available less `channel_safety`."""
    level = stock_at(session, cfg, sku, location_id)
    if channel is None:
        return level.available_to(channel_safety)
    share = channel.allocation_for(location_id, sku)
    held = 0
    if share is not None:
        held = session.execute(select(ChannelReserved.reserved).filter_by(
            channel=channel.id, sku=sku, location_id=location_id)).scalar_one_or_none() or 0
    return channel_figure(level.on_hand, level.reserved, level.safety_stock, channel.safety_stock, share, held)


def channel_figures(session: Session, cfg: HubConfig, channel: ChannelConfig, sku: str,
                    held: dict[str, tuple[int, int]]) -> dict[str, int] | None:
    """location_id -> what `channel` may sell of `sku` there (`held`: `held_of`'s rows), or None when the
    channel has no allocation (its figure is the location's available less its safety stock)."""
    if channel.allocation is None:
        return None
    own = channel_held(session, channel.id, [(sku, loc.id) for loc in cfg.locations])
    out = {}
    for loc in cfg.locations:
        on_hand, reserved = held.get(loc.id, (0, 0))
        out[loc.id] = channel_figure(on_hand, reserved, loc.safety_stock, channel.safety_stock,
                                     channel.allocation_for(loc.id, sku), own.get((sku, loc.id), 0))
    return out


def channel_held(session: Session, channel: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(sku, location) -> units `channel` holds open against its allocation (0 where no row)."""
    pairs = list(pairs)
    if not pairs:
        return {}
    rows = session.connection().execute(_CHANNEL_HELD, {"channel": channel, "pairs": pairs})
    return {(sku, loc): n for sku, loc, n in rows}


# Built once: channel sync reads it per batch (built per call through the ORM it was 5 % of that CPU).
_CHANNEL_HELD = select(_CHANNEL.sku, _CHANNEL.location_id, _CHANNEL.reserved).where(
    _CHANNEL.channel == bindparam("channel"),
    tuple_(_CHANNEL.sku, _CHANNEL.location_id).in_(bindparam("pairs", expanding=True)))


def _open_reservations(session: Session, order_id: str, status: str = "open") -> list[Reservation]:
    stmt = select(Reservation).where(Reservation.order_id == order_id, Reservation.status == status)
    return list(session.execute(stmt.order_by(Reservation.sku, Reservation.location_id)).scalars())


def hold_length(session: Session, order_id: str) -> timedelta | None:
    """How long the order's open reservations hold its stock (created to `expires_at`, the longest); None when
    none carries an expiry. The unpaid-order sweep reports it: the hold the order got, whatever the policy
    (`orders.reservation_length`) says today."""
    held = [res.expires_at - res.created_at for res in _open_reservations(session, order_id)
            if res.expires_at is not None]
    return max(held, default=None)


def release(uow: UnitOfWork, order_id: str, reason: str) -> int:
    """Give an order's open reservations back to available stock (or to the running flash sale whose
    held stock they came from). Returns units released."""
    session, now, total = uow.session, utcnow(), 0
    for res in _open_reservations(session, order_id):
        if res.flash_sale_id and _back_into_hold(session, res.flash_sale_id, res.qty):
            # Back into the sale's hold: the stock row already counts it as reserved for the sale.
            res.status, res.closed_at = "released", now
            total += res.qty
            continue
        level = _locked_level(session, res.sku, res.location_id)
        level.reserved = reserved_after_release(level.reserved, res.qty)
        _give_back_share(session, res, res.qty)
        res.status, res.closed_at = "released", now
        _record(session, sku=res.sku, location_id=res.location_id, kind="release", qty=res.qty, source="hub",
                external_id=f"order:{order_id}:release", occurred_at=now, applied=True, note=reason[:200])
        stock_changed(uow, res.sku, res.location_id, "release")
        total += res.qty
    return total


_SALES = FlashSaleRow.__table__.c
_G_QTY = bindparam("g_qty", type_=Integer)
# An order's units out of a running sale's quota, whatever the gate said: the ledger's last word (issue 19).
_DRAW_FROM_SALE = (update(FlashSaleRow.__table__)
                   .where(_SALES.id == bindparam("g_sale"), _SALES.status == "armed",
                          may_draw(_SALES.quota, _SALES.drawn, _G_QTY))
                   .values(drawn=_SALES.drawn + _G_QTY))
_BACK_INTO_SALE = (update(FlashSaleRow.__table__)
                   .where(_SALES.id == bindparam("g_sale"), _SALES.status == "armed", _SALES.stock_held.is_(True))
                   .values(drawn=_SALES.drawn - _G_QTY))


def _back_into_hold(session: Session, sale_id: str, qty: int) -> bool:
    """A released unit back into its sale's hold, if the sale still holds its stock (else it is free stock).
    The UPDATE locks the sale's row: ending it (which hands the rest of the hold back) waits for this
    transaction, and this one for an end in progress."""
    result = session.execute(_BACK_INTO_SALE, {"g_sale": sale_id, "g_qty": qty},
                             execution_options={"synchronize_session": False})
    return rows_affected(result) == 1


# -- a flash sale's held stock --------------------------------------------------------------------
# Arming moves the quota from the store's free stock into `reserved` at once, so the sale's orders draw
# from that hold without each taking the hot stock row's lock; ending hands back what no order holds.

def hold(uow: UnitOfWork, cfg: HubConfig, sku: str, location_id: str, qty: int, holder: str) -> None:
    """Reserve `qty` for a holder (a flash sale) in one conditional UPDATE, or refuse with nothing held."""
    session, now = uow.session, utcnow()
    stock_changed(uow, sku, location_id, "flash_sale")
    if not _take(session, sku, location_id, qty, cfg.safety_stock(location_id), now):
        raise InsufficientStock([{"sku": sku, "location_id": location_id, "wanted": qty,
                                  "available": stock_at(session, cfg, sku, location_id).available}])
    _record(session, sku=sku, location_id=location_id, kind="reserve", qty=qty, source="hub",
            external_id=f"{holder}:hold", occurred_at=now, applied=True, note="held for the flash sale")


def release_hold(uow: UnitOfWork, sku: str, location_id: str, qty: int, holder: str) -> None:
    """The rest of a hold back to free stock (what no order drew, or what came back from cancelled ones)."""
    session, now = uow.session, utcnow()
    if qty > 0:
        level = _locked_level(session, sku, location_id)
        level.reserved = reserved_after_release(level.reserved, qty)
        stock_changed(uow, sku, location_id, "flash_sale_end")
    _record(session, sku=sku, location_id=location_id, kind="release", qty=qty, source="hub",
            external_id=f"{holder}:release", occurred_at=now, applied=True, note="the flash sale's unsold rest")


_BACKING = (select(StockLevel.__table__.c.on_hand, StockLevel.__table__.c.reserved)
            .where(StockLevel.__table__.c.sku == bindparam("sku"),
                   StockLevel.__table__.c.location_id == bindparam("location_id")))


def draw(uow: UnitOfWork, cfg: HubConfig, order_id: str, sale_id: str, sku: str, location_id: str, qty: int,
         ttl: timedelta | None, backing: tuple[int, int] | None = None) -> Reservation:
    """An order's reservation out of a running sale's hold: no stock row is written or locked, and the
    reservation is one Core INSERT (returned detached), like its order's rows. Refused when
    the store no longer has what it holds (a till sold the held units): the units are not there to give;
    and refused (SaleSoldOut) by the sale's own count when its quota has not `qty` left, whatever the gate said.
    `backing`: the stock row's (on_hand, reserved) when the caller read it already in this transaction."""
    session, now = uow.session, utcnow()
    if backing is None:
        level = session.connection().execute(_BACKING, {"sku": sku, "location_id": location_id}).one_or_none()
        backing = (level.on_hand, level.reserved) if level is not None else None
    on_hand, reserved = backing or (0, 0)
    safety = cfg.safety_stock(location_id)
    if not hold_is_backed(on_hand, reserved, safety):
        raise InsufficientStock([{"sku": sku, "location_id": location_id, "wanted": qty,
                                  "available": available(on_hand, 0, safety)}])
    row = Reservation(order_id=order_id, sku=sku, location_id=location_id, qty=qty, status="open",
                      created_at=now, expires_at=(now + ttl) if ttl else None, flash_sale_id=sale_id)
    insert_detached(uow, row)
    # The quota's conditional UPDATE goes last (with the order's rows, one statement on PostgreSQL): only an
    # admitted order reaches it, and it holds the sale row's lock from there to the commit only.
    guard_detached(uow, _DRAW_FROM_SALE, {"g_sale": sale_id, "g_qty": qty},
                   lambda: _refuse_draw(session, sale_id, qty))
    return row


def _refuse_draw(session: Session, sale_id: str, qty: int) -> None:
    """Why the sale's quota refused a draw: it ended, or what is left of it is less than `qty`."""
    row = session.execute(select(FlashSaleRow.status, FlashSaleRow.quota, FlashSaleRow.drawn)
                          .where(FlashSaleRow.id == sale_id)).one()
    if row.status != "armed":
        raise SaleEnded(f"flash sale {sale_id} has ended")
    raise SaleSoldOut(f"flash sale {sale_id} has {quota_left(row.quota, row.drawn)} unit(s) left, not {qty}")


# A sale's units its orders drew and did not give back: held (open), taken (committed) or taken and handed back
# later (returned: the goods came back on-hand as free stock, not into the hold, so the unit stays the sale's
# sold one). The sale's `drawn`, the end's hand-back, the gate's restore and the end's comparison all count these.
DRAWN = ("open", "committed", "returned")


def drawn_from(session: Session, sale_id: str) -> int:
    """Units a sale's orders hold or took out of its hold (released ones went back into it)."""
    return int(session.execute(
        select(func.coalesce(func.sum(Reservation.qty), 0))
        .where(Reservation.flash_sale_id == sale_id, Reservation.status.in_(DRAWN))).scalar_one())


def commit(uow: UnitOfWork, order_id: str) -> int:
    """The goods left: turn open reservations into stock-out ledger rows. Returns units."""
    session, now, total = uow.session, utcnow(), 0
    for res in _open_reservations(session, order_id):
        _apply_change(session, "commit", res.sku, res.location_id, -res.qty, "hub",
                      f"order:{order_id}:commit", now, "fulfilled")
        level = _locked_level(session, res.sku, res.location_id)
        level.reserved = reserved_after_release(level.reserved, res.qty)
        _give_back_share(session, res, res.qty)
        res.status, res.closed_at = "committed", now
        stock_changed(uow, res.sku, res.location_id, "fulfilment")
        total += res.qty
    return total


def _take_off(uow: UnitOfWork, res: Reservation, qty: int, cause: str, now: datetime) -> bool:
    """`qty` units off an open reservation, the one rule for a part of it the order no longer holds (a short
    pick, a channel's part refund). A flash sale's order gives them back to the sale's hold while the sale runs
    and still holds its stock (`_back_into_hold`: the sale's `drawn` goes down, the stock row keeps them
    reserved for the sale); otherwise — an ordinary order, or a sale that has ended, whose hold `release_hold`
    already handed back — they leave `reserved` for free stock and the channel's share. The sale's `drawn` is
    then its final count and does not move. True when they went back into the hold."""
    into_hold = bool(res.flash_sale_id) and _back_into_hold(uow.session, res.flash_sale_id or "", qty)
    if not into_hold:
        level = _locked_level(uow.session, res.sku, res.location_id)
        level.reserved = reserved_after_release(level.reserved, qty)
        _give_back_share(uow.session, res, qty)
    res.qty -= qty
    if res.qty == 0:
        res.status, res.closed_at = "released", now
    stock_changed(uow, res.sku, res.location_id, cause)
    return into_hold


def short_pick(uow: UnitOfWork, order_id: str, sku: str, qty_missing: int, note: str) -> int:
    """The store found `qty_missing` units of an order's line not on its shelf: that part of the reservation
    is taken off (`_take_off`: a running flash sale's hold gets them back) and on-hand goes down by as much
    (ledger kind `short_pick`) — the shelf count was wrong, and the next count confirms or corrects it (a count
    newer than this row wins). Once per order and SKU. Returns the units taken off."""
    session, now, left = uow.session, utcnow(), qty_missing
    for res in _open_reservations(session, order_id):
        if res.sku != sku or left <= 0:
            continue
        take = min(left, res.qty)
        result = _apply_change(session, "short_pick", sku, res.location_id, -take, "hub",
                               f"order:{order_id}:short_pick", now, note[:200])
        if result.duplicate:
            return 0
        _take_off(uow, res, take, "short_pick", now)
        left -= take
    return qty_missing - left


def release_part(uow: UnitOfWork, order_id: str, sku: str, qty: int, tag: str, note: str) -> int:
    """`qty` units of an order's line the channel refunded while the store still holds them (not yet handed
    to a rider or the buyer): that part of the reservation is taken off (`_take_off`: back to available stock,
    or to a running flash sale's hold) — the units are on the shelf or the packing table, so on-hand does not
    move. Once per `tag` (the refund). Returns units."""
    session, now, left = uow.session, utcnow(), qty
    for res in _open_reservations(session, order_id):
        if res.sku != sku or left <= 0:
            continue
        take = min(left, res.qty)
        if not _record(session, sku=sku, location_id=res.location_id, kind="release", qty=take, source="hub",
                       external_id=f"order:{order_id}:{tag}", occurred_at=now, applied=True, note=note[:200]):
            return 0                                              # this refund's units went back already
        _take_off(uow, res, take, "refund", now)
        left -= take
    return qty - left


def return_to_stock(uow: UnitOfWork, order_id: str, note: str = "refund") -> int:
    """An order's goods came back (returned, or refunded after they left): committed quantities on-hand
    again, at the location they left from. Once: a second call finds nothing committed."""
    session, now, total = uow.session, utcnow(), 0
    for res in _open_reservations(session, order_id, status="committed"):
        _apply_change(session, "return", res.sku, res.location_id, res.qty, "hub",
                      f"order:{order_id}:return", now, note)
        res.status = "returned"
        stock_changed(uow, res.sku, res.location_id, "return")
        total += res.qty
    return total


# -- reads -------------------------------------------------------------------------------------

def stock_at(session: Session, cfg: HubConfig, sku: str, location_id: str) -> LocationStock:
    level = session.get(StockLevel, (sku, location_id), populate_existing=True)
    on_hand, reserved = (level.on_hand, level.reserved) if level else (0, 0)
    return LocationStock(sku, location_id, on_hand, reserved, cfg.safety_stock(location_id))


_HELD = (select(StockLevel.__table__.c.location_id, StockLevel.__table__.c.on_hand, StockLevel.__table__.c.reserved)
         .where(StockLevel.__table__.c.sku == bindparam("sku")))
_SKU_KNOWN = select(SkuRow.__table__.c.code).where(SkuRow.__table__.c.code == bindparam("sku"))


def held_of(session: Session, sku: str) -> dict[str, tuple[int, int]]:
    """location_id -> (on_hand, reserved) of one SKU where a stock row exists; UnknownSku if no such SKU.

    One Core statement built once (plain tuples, not ORM rows: a thousand stores answer per SKU); the
    product master is asked only when no location holds a row, since a row's foreign key proves the SKU."""
    conn = session.connection()
    rows = {location_id: (on_hand, reserved) for location_id, on_hand, reserved in conn.execute(_HELD, {"sku": sku})}
    if not rows and conn.execute(_SKU_KNOWN, {"sku": sku}).first() is None:
        raise UnknownSku(f"unknown SKU {sku!r}")
    return rows


_SELLABLE = (select(StockLevel.__table__.c.location_id,
                     StockLevel.__table__.c.on_hand - StockLevel.__table__.c.reserved)
             .where(StockLevel.__table__.c.sku == bindparam("sku")))


def sellable_of(conn: Connection, sku: str) -> dict[str, int]:
    """location_id -> on-hand less reserved of one SKU where a stock row exists (what `available` takes
    before safety stocks); UnknownSku if no such SKU.

    The stock query's read: a thousand two-column rows taken as the driver's own tuples (`fetchall` on the
    DBAPI cursor: plain strings and ints need none of the result's per-row processing, which cost more than
    the query) and made a dict in one call. On the unit of work's connection: a query that makes no ORM session."""
    result = conn.execute(_SELLABLE, {"sku": sku})
    try:
        rows = dict(result.cursor.fetchall())
    finally:
        result.close()
    if not rows and conn.execute(_SKU_KNOWN, {"sku": sku}).first() is None:
        raise UnknownSku(f"unknown SKU {sku!r}")
    return rows


def stock_of(session: Session, cfg: HubConfig, sku: str) -> list[LocationStock]:
    """Stock of one SKU at every configured location (zero where nothing is held)."""
    return stock_everywhere(cfg, sku, held_of(session, sku))


def stock_everywhere(cfg: HubConfig, sku: str, rows: dict[str, tuple[int, int]]) -> list[LocationStock]:
    """`held_of`'s rows as the stock at every configured location."""
    out = []
    for loc in cfg.locations:
        on_hand, reserved = rows.get(loc.id, (0, 0))
        out.append(LocationStock(sku, loc.id, on_hand, reserved, loc.safety_stock))
    return out


def availability(session: Session, cfg: HubConfig, skus: Iterable[str],
                 channel_safety: int = 0, channel: ChannelConfig | None = None) -> dict[str, dict[str, int]]:
    """location_id -> sku -> available (to a channel holding back `channel_safety`, within the `channel`'s
    allocation when it has one), for routing."""
    skus = list(skus)
    out: dict[str, dict[str, int]] = {loc.id: {s: 0 for s in skus} for loc in cfg.locations}
    rows = list(session.execute(select(StockLevel).where(StockLevel.sku.in_(skus))).scalars())
    held = channel_held(session, channel.id, [(r.sku, r.location_id) for r in rows]) \
        if channel is not None and channel.allocation is not None else {}
    for row in rows:
        if row.location_id in out:
            share = channel.allocation_for(row.location_id, row.sku) if channel is not None else None
            out[row.location_id][row.sku] = channel_figure(
                row.on_hand, row.reserved, cfg.safety_stock(row.location_id), channel_safety, share,
                held.get((row.sku, row.location_id), 0))
    return out
