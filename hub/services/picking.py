"""The store's pick, for every fulfilment type: started (allocated -> picking), done (-> picked) with what was
on the shelf. A line picked short (缺货) gives back the rest of its reservation, takes the missing units off the
store's on-hand (the shelf count was wrong), and owes the buyer the missing lines' money; a line picked zero of
several is gone from the sale; nothing picked cancels the order and refunds it. A pickup order is ready at the
counter once picked. All in the caller's unit of work, under the order's lock: a pick racing a cancel, one wins.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select

from hub.config import HubConfig
from hub.domain import promise
from hub.domain import refunds as refund_rules
from hub.domain.errors import BadInput, HubError, IllegalTransition, NotFound
from hub.domain.model import FulfillmentType, OrderSnapshot
from hub.domain.order_states import TO_PICK, OrderStatus
from hub.services import inventory, orders
from hub.storage.tables import ChannelRefundRow, OrderRow, OrderTransition, SkuRow, utcnow
from hub.storage.uow import UnitOfWork

S = OrderStatus
# A booked rider may come before the pick (policy at_payment / after_payment): the store still records it.
BOOKED_BEFORE_PICK = (S.DISPATCHED, S.RIDER_ASSIGNED)


class PickConflict(HubError):
    """The order was picked already, with other quantities: a pick is recorded once."""
    code = "already_picked"


class OtherStoresOrder(HubError):
    """The order is another store's: a store key picks its own store's orders only."""
    code = "forbidden"


def at_store(cfg: HubConfig, order: OrderRow) -> bool:
    """A store of config.yaml fulfils the order (picks it, hands it over), not a warehouse."""
    loc = cfg.location(order.location_id or "")
    return loc is not None and loc.kind == "store"


def promised_at(cfg: HubConfig, order: OrderRow) -> datetime | None:
    """The order's promised time (`domain/promise.py`): the store's list, its POS and the order view read it here."""
    loc = cfg.location(order.location_id or "")
    paid = orders.local_now(cfg, order.paid_at) if order.paid_at is not None else None
    return promise.promised_at(order.fulfillment_type, paid, at_store(cfg, order), loc.opening_hours if loc else None)


def for_store(uow: UnitOfWork, cfg: HubConfig, order: OrderRow) -> OrderSnapshot:
    """The order as its store is given it (its POS): the snapshot with the promised time, the buyer's note and
    the product master's shelf hint per SKU, where it has one."""
    codes = [x.sku for x in order.lines]
    bins = {code: shelf for code, shelf in uow.session.execute(
        select(SkuRow.code, SkuRow.bin).where(SkuRow.code.in_(codes), SkuRow.bin.is_not(None)))}
    return replace(orders.snapshot(order), promised_at=promised_at(cfg, order), note=order.note, bins=bins)


@dataclass(frozen=True)
class Picked:
    sku: str
    qty_picked: int


def store_order(uow: UnitOfWork, store_id: str, order_id: str) -> OrderRow:
    """This store's paid order, locked; another store's order or an unpaid one is not found here."""
    try:
        order = orders.get(uow, order_id, lock=True)
    except NotFound:
        raise NotFound(f"no order {order_id!r} at this store") from None
    if order.location_id != store_id:
        raise OtherStoresOrder(f"order {order_id!r} is not this store's")
    if order.paid_at is None:
        raise NotFound(f"no order {order_id!r} at this store")
    return order


def picker(store_id: str, staff: str | None) -> str:
    return f"{store_id}/{staff}" if staff else store_id


def start(uow: UnitOfWork, store_id: str, order_id: str, staff: str | None, now: datetime) -> OrderRow:
    """allocated -> picking; again (or already on from picking) is the same answer."""
    order = store_order(uow, store_id, order_id)
    if order.status == S.ALLOCATED:
        orders.transition(uow, order, S.PICKING, f"store:{store_id}", f"picking started by {picker(store_id, staff)}",
                          now)
    elif order.status != S.PICKING and not (orders.has_been(order, S.PICKING) or order.picked_at):
        if order.status not in BOOKED_BEFORE_PICK:
            raise IllegalTransition(order.id, order.status, S.PICKING, order.fulfillment_type)
    return order


def _check(order: OrderRow, picked: list[Picked]) -> dict[str, int]:
    """Every named SKU is a line of the order, named once, 0..ordered; lines not named are picked in full."""
    ordered = {x.sku: x.qty for x in order.lines}
    got: dict[str, int] = {}
    for i, p in enumerate(picked):
        if p.sku not in ordered:
            raise BadInput(f"lines[{i}].sku: {p.sku} is not a line of order {order.id}")
        if p.sku in got:
            raise BadInput(f"lines[{i}].sku: {p.sku} is named twice")
        if not 0 <= p.qty_picked <= ordered[p.sku]:
            raise BadInput(f"lines[{i}].qty_picked: {p.qty_picked} is not between 0 and the {ordered[p.sku]} ordered")
        got[p.sku] = p.qty_picked
    return {sku: got.get(sku, qty) for sku, qty in ordered.items()}


def _refunded_since_pick(uow: UnitOfWork, order: OrderRow) -> dict[str, int]:
    """Units the channel's agreed partial refunds took off the lines after the pick (`_take_off` lowers
    `qty_picked` too), per SKU; refunds after completion leave the lines alone and are not counted."""
    since: dict[str, int] = {}
    for (lines,) in uow.session.execute(select(ChannelRefundRow.lines).where(
            ChannelRefundRow.order_id == order.id, ChannelRefundRow.agreed.is_(True),
            ChannelRefundRow.after_sale.is_(False), ChannelRefundRow.decided_at >= order.picked_at)):
        for sku, qty in lines or ():
            since[sku] = since.get(sku, 0) + int(qty)
    return since


def _is_the_recorded_pick(uow: UnitOfWork, order: OrderRow, picked: list[Picked]) -> bool:
    """The pick as the store sent it, before refunds since lowered the lines: a retry is the same answer,
    not judged against what is ordered now."""
    since = _refunded_since_pick(uow, order)
    if not since:
        return False
    named = {p.sku: p.qty_picked for p in picked}
    if len(named) != len(picked) or not named.keys() <= {x.sku for x in order.lines}:
        return False
    # Lines not named were picked in full: in full of what was ordered when the pick was sent.
    return all(named.get(x.sku, x.qty + since.get(x.sku, 0)) == (x.qty_picked or 0) + since.get(x.sku, 0)
               for x in order.lines)


def complete(uow: UnitOfWork, store_id: str, order_id: str, picked: list[Picked],
             staff: str | None, now: datetime) -> OrderRow:
    """Record the pick. The same pick again is the same answer; another pick of a picked order is 409."""
    order = store_order(uow, store_id, order_id)
    if order.picked_at is not None and _is_the_recorded_pick(uow, order, picked):
        return order
    qty = _check(order, picked)
    if order.picked_at is not None:
        if all(x.qty_picked == qty[x.sku] for x in order.lines):
            return order
        raise PickConflict(f"order {order.id} was picked already by {order.picked_by}")
    if order.status not in (*TO_PICK, *BOOKED_BEFORE_PICK):
        raise IllegalTransition(order.id, order.status, S.PICKED, order.fulfillment_type)
    source, who = f"store:{store_id}", picker(store_id, staff)
    if order.status == S.ALLOCATED:
        orders.transition(uow, order, S.PICKING, source, f"picking started by {who}", now)
    short = [(x, x.qty - qty[x.sku]) for x in order.lines if qty[x.sku] < x.qty]
    what = "; ".join(f"{x.sku} short {missing} of {x.qty}" for x, missing in short)
    for line in order.lines:
        line.qty_picked = qty[line.sku]
    order.picked_at, order.picked_by = now, who
    for line, missing in short:
        inventory.short_pick(uow, order.id, line.sku, missing, f"short pick of order {order.id} by {who}")
    if all(x.qty_picked == 0 for x in order.lines):
        orders.cancel_now(uow, order, source, f"nothing picked ({what}): cancelled and refunded", cause="short_pick")
        return order
    detail = f"picked by {who}" + (f"; {what}" if short else "")
    if order.status in BOOKED_BEFORE_PICK:     # the rider was booked first: the pick is history, not a state
        order.transitions.append(OrderTransition(from_status=order.status, to_status=S.PICKED,
                                                 at=max(now, order.transitions[-1].at), source=source,
                                                 detail=detail))
    else:
        orders.transition(uow, order, S.PICKED, source, detail, now)
    if short:
        owed = sum(refund_rules.line_refund_fen(x, missing) for x, missing in short)
        orders.refund_due(uow, order, f"short pick: {what}", amount_fen=owed, cause="short_pick")
    if order.fulfillment_type == FulfillmentType.PICKUP:
        orders.transition(uow, order, S.READY_FOR_PICKUP, source, "picked: ready at the counter", now)
    order.updated_at = utcnow()
    return order
