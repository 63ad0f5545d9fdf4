"""Orders: placing (route + reserve), the guarded state machine with its stock effects,
payment, pickup codes and expiry. Every function works inside the caller's unit of work."""
from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sqlalchemy import select

from hub import events
from hub.config import HubConfig
from hub.domain import discounts, hours, routing
from hub.domain import refunds as refund_rules
from hub.domain.catalogue import check_sellable
from hub.domain.errors import (
    BadInput,
    HubError,
    IllegalTransition,
    InsufficientStock,
    NotFound,
    NotSellable,
    PickupCodeRejected,
    PickupLocked,
    UnknownSku,
)
from hub.domain.limits import INT_MAX, fits_int
from hub.domain.model import (  # PlaceOrder: the request orders.place takes
    Address,
    Buyer,
    Fulfillment,
    FulfillmentType,
    OrderLine,
    OrderSnapshot,
    PlaceOrder,
)
from hub.domain.order_states import COMMITS_STOCK, RETURNS_STOCK, OrderStatus, allowed
from hub.services import inventory, member_holds, money_owed, store_capacity
from hub.storage.tables import OrderLineRow, OrderRow, OrderTransition, SkuRow, utcnow
from hub.storage.uow import UnitOfWork, insert_detached, write_detached

log = logging.getLogger(__name__)
S = OrderStatus


class IdempotencyConflict(HubError):
    code = "idempotency_conflict"


def local_now(cfg: HubConfig, now: datetime | None = None) -> datetime:
    sign = 1 if cfg.hub.timezone[0] == "+" else -1
    hh, mm = cfg.hub.timezone[1:].split(":")
    tz = timezone(sign * timedelta(hours=int(hh), minutes=int(mm)))
    return (now or utcnow()).astimezone(tz)


def reservation_length(cfg: HubConfig, channel: str, fulfillment: FulfillmentType | str) -> timedelta:
    """How long an unpaid order holds its stock: the one place that says so (a channel or fulfilment type
    with its own length changes this function only). Today one length for all, from `hub.reservation_ttl_minutes`."""
    return timedelta(minutes=cfg.hub.reservation_ttl_minutes)


def new_order_id(now: datetime) -> str:
    return f"O{now:%y%m%d}{secrets.token_hex(5).upper()}"


def price_lines(uow: UnitOfWork, lines: Sequence[tuple[str, int]],
                keep: list[SkuRow] | None = None) -> tuple[OrderLine, ...]:
    """(sku, qty) lines at the price list's prices (not the buyer's); NotSellable names the first line
    no channel may order. `keep` gets the SKU rows: while it holds them, an order placed in the same unit of
    work reads none again (the session's identity map holds its rows weakly)."""
    out = []
    for i, (sku, qty) in enumerate(lines):
        row = uow.session.get(SkuRow, sku)
        check_sellable(i, sku, row.active if row else None, row.price_fen if row else None)
        assert row is not None and row.price_fen is not None      # check_sellable refused otherwise
        if keep is not None:
            keep.append(row)
        out.append(OrderLine(sku, qty, row.price_fen))
    return tuple(out)


def _validate(uow: UnitOfWork, cfg: HubConfig, cmd: PlaceOrder) -> dict[str, SkuRow]:
    """Refuse what no order may be; the lines' SKU rows, kept by the caller (the session's identity map holds
    them weakly: dropped, each would be read again)."""
    skus: dict[str, SkuRow] = {}
    if cfg.channel(cmd.channel) is None:
        raise BadInput(f"unknown channel {cmd.channel!r}")
    if not cmd.idempotency_key or len(cmd.idempotency_key) > 128:
        raise BadInput("an Idempotency-Key of 1 to 128 characters is required")
    if not cmd.lines:
        raise BadInput("an order needs at least one line")
    for i, line in enumerate(cmd.lines):
        if line.qty <= 0:
            raise BadInput(f"quantity must be a positive integer (sku {line.sku}: {line.qty})")
        if line.unit_price_fen < 0:
            raise BadInput(f"price cannot be negative (sku {line.sku})")
        row = uow.session.get(SkuRow, line.sku)
        try:
            check_sellable(i, line.sku, row.active if row else None, row.price_fen if row else None,
                           priced_by_sale=cmd.flash_sale_id is not None)
        except NotSellable as exc:
            raise (UnknownSku(str(exc)) if exc.unknown else BadInput(str(exc))) from None
        assert row is not None                    # check_sellable refused otherwise
        skus[line.sku] = row
    if not fits_int(sum(x.qty * x.unit_price_fen for x in cmd.lines)):     # the orders' INTEGER total column
        raise BadInput(f"the order's total is more than {INT_MAX} fen: split it into smaller orders")
    line_amounts(cmd)                         # a discount above the lines' value: BadInput (422)
    f = cmd.fulfillment
    if f.type == FulfillmentType.PICKUP and not f.store_id:
        raise BadInput("a pickup order needs fulfillment.store_id")
    if f.type in (FulfillmentType.DELIVERY, FulfillmentType.EXPRESS) and f.address is None:
        raise BadInput(f"a {f.type} order needs fulfillment.address")
    return skus


def line_amounts(cmd: PlaceOrder) -> list[int]:
    """Each line's amount after its share of the order's discounts (`domain/discounts.py`)."""
    return discounts.amounts_after(cmd.discounts, [x.qty * x.unit_price_fen for x in cmd.lines])


def _channel_safety(cfg: HubConfig, cmd: PlaceOrder) -> int:
    channel = cfg.channel(cmd.channel)
    return channel.safety_stock if channel else 0


def _rider(cfg: HubConfig, cmd: PlaceOrder) -> str | None:
    """"platform" when the channel's own rider delivers this order (its word, else the channel's config)."""
    if cmd.fulfillment.type != FulfillmentType.DELIVERY:
        return None
    channel = cfg.channel(cmd.channel)
    rider = cmd.rider or (channel.rider if channel else "store")
    return "platform" if rider == "platform" else None


def _route(uow: UnitOfWork, cfg: HubConfig, cmd: PlaceOrder, now: datetime) -> routing.RoutingDecision:
    lines = list(cmd.lines)
    stock = inventory.availability(uow.session, cfg, {line.sku for line in lines}, _channel_safety(cfg, cmd),
                                   cfg.channel(cmd.channel))
    f = cmd.fulfillment
    refused = store_capacity.refusals(uow, cfg, now)      # paused or full stores: skipped, with the reason
    if cmd.channel_store and f.type in (FulfillmentType.PICKUP, FulfillmentType.DELIVERY):
        return routing.route_at_store(cfg, f.type, lines, f.store_id, stock, local_now(cfg, now), refused)
    if f.type == FulfillmentType.PICKUP:
        return routing.route_pickup(cfg, lines, f.store_id, stock, refused, local_now(cfg, now))
    if f.type == FulfillmentType.DELIVERY:
        if f.address is None:                 # _validate refused it already
            raise BadInput("a delivery order needs fulfillment.address")
        return routing.route_delivery(cfg, lines, f.address, stock, local_now(cfg, now), refused)
    return routing.route_express(cfg, lines, f.address, stock, refused)


def check_pickup_store(cfg: HubConfig, store_id: str, now: datetime) -> None:
    """Raise what routing raises for a pickup at this store before it looks at stock, as far as config says
    (unknown, no pickup, closed for the calendar's horizon), so the sold-out cache's refusal does not answer
    insufficient_stock where the ledger would answer no_route. A store paused or full lives in the database,
    which the cache's answer does not ask: for such a store it stays insufficient_stock (a 409 either way)."""
    routing.route_pickup(cfg, [], store_id, {}, None, local_now(cfg, now))


class StockSource(Protocol):
    """Where an order's units come from: routing chooses the location, reserving takes the units."""

    def route(self, uow: UnitOfWork, cfg: HubConfig, cmd: PlaceOrder, now: datetime) -> routing.RoutingDecision:
        ...

    def reserve(self, uow: UnitOfWork, cfg: HubConfig, order_id: str, allocations: list[tuple[str, str, int]],
                ttl: timedelta, channel_safety: int, channel: str | None = None, *,
                final: bool = False, detached: bool = False) -> object:
        """`final`: a refusal ends the caller's transaction (no re-route follows). `detached`: the order's rows
        are queued outside the ORM (`storage/uow.py`), to be sent with the reservation's where it can."""


class FreeStock:
    """The ledger's available stock: routed by the rules, reserved by conditional UPDATEs."""

    def route(self, uow: UnitOfWork, cfg: HubConfig, cmd: PlaceOrder, now: datetime) -> routing.RoutingDecision:
        return _route(uow, cfg, cmd, now)

    def reserve(self, uow: UnitOfWork, cfg: HubConfig, order_id: str, allocations: list[tuple[str, str, int]],
                ttl: timedelta, channel_safety: int, channel: str | None = None, *,
                final: bool = False, detached: bool = False) -> object:
        return inventory.reserve(uow, cfg, order_id, allocations, ttl, channel_safety, channel, final=final,
                                 detached=detached)


FREE_STOCK = FreeStock()


def find_by_idempotency(uow: UnitOfWork, channel: str, key: str) -> OrderRow | None:
    stmt = select(OrderRow).where(OrderRow.channel == channel, OrderRow.idempotency_key == key)
    return uow.session.execute(stmt).scalar_one_or_none()


def place(uow: UnitOfWork, cfg: HubConfig, cmd: PlaceOrder, now: datetime | None = None,
          stock: StockSource = FREE_STOCK, detached: bool = False, known_new: bool = False) -> tuple[OrderRow, bool]:
    """Route and reserve (from free stock, or `stock` such as a flash sale's hold), or refuse with nothing
    reserved. Returns (order, created). `detached` (pickup orders only, whose route cannot change) writes the
    order with Core INSERTs and returns it outside the session: for a caller that only answers with it.
    `known_new`: the caller knows no order has this Idempotency-Key, so it is not looked up (the key's
    unique constraint still refuses a duplicate: IntegrityError, on which the caller should look)."""
    now = now or utcnow()
    existing = None if known_new else find_by_idempotency(uow, cmd.channel, cmd.idempotency_key)
    if existing is not None:
        if not cmd.matches(existing.request_hash):
            raise IdempotencyConflict("this Idempotency-Key was used for a different order")
        if cmd.crm_order_no:
            member_holds.adopt_replayed(uow, cmd.crm_order_no)
        return existing, False
    sku_rows = _validate(uow, cfg, cmd)
    if cmd.crm_order_no:          # this attempt's coupon and points, unless a retry took over meanwhile
        member_holds.adopt(uow, cmd.crm_order_no)
    order_id = new_order_id(now)
    f = cmd.fulfillment
    ttl = reservation_length(cfg, cmd.channel, f.type)
    decision = _route_capped(uow, cfg, cmd, now, stock)
    amounts = line_amounts(cmd)
    order = OrderRow(
        id=order_id, channel=cmd.channel, idempotency_key=cmd.idempotency_key, request_hash=cmd.fingerprint(),
        external_id=cmd.external_id, status=S.PENDING_PAYMENT, fulfillment_type=str(f.type),
        address=asdict(f.address) if f.address else None, buyer=asdict(cmd.buyer),
        total_fen=sum(amounts), created_at=now, updated_at=now,
        expires_at=now + ttl, flash_sale_id=cmd.flash_sale_id,
        discounts=[d.to_dict() for d in cmd.discounts] or None, note=cmd.note,
        rider=_rider(cfg, cmd), crm_order_no=cmd.crm_order_no,
    )
    for line, amount in zip(cmd.lines, amounts, strict=True):
        sku_row = sku_rows.get(line.sku)                     # read by _validate
        order.lines.append(OrderLineRow(sku=line.sku, qty=line.qty, unit_price_fen=line.unit_price_fen,
                                        amount_fen=amount, unit_weight_g=sku_row.weight_g if sku_row else None))
    order.transitions.append(OrderTransition(from_status=None, to_status=S.PENDING_PAYMENT, at=now,
                                             source=cmd.channel))
    _follow_route(order, decision)
    if detached:
        if f.type != FulfillmentType.PICKUP:
            raise ValueError("only a pickup order, which is never re-routed, can be written detached")
        for line_row in order.lines:
            line_row.order_id = order_id
        for step in order.transitions:
            step.order_id = order_id
        insert_detached(uow, order, *order.lines, *order.transitions)    # queued: sent with the draw's
    else:
        uow.session.add(order)
    # The order, its lines and its history are written before the stock rows are locked: reserve takes
    # those locks last, so a flash sale's one hot stock row is held for the commit only (issue 11).
    # Stock may move between the routing snapshot and the reservation; re-route a few times.
    for attempt in range(3):
        try:
            # A pickup is never re-routed: its refusal ends the transaction, so no savepoint is needed.
            stock.reserve(uow, cfg, order_id, decision.allocations, ttl, _channel_safety(cfg, cmd), cmd.channel,
                          final=f.type == FulfillmentType.PICKUP, detached=detached)
            break
        except InsufficientStock:
            if attempt == 2 or f.type == FulfillmentType.PICKUP or cmd.channel_store:
                raise                         # the buyer's or the channel's store: no other to try
            decision = _route_capped(uow, cfg, cmd, now, stock)
            _follow_route(order, decision)
    if detached:
        write_detached(uow)               # the order's rows and its reservation: one round trip on PostgreSQL
    return order, True


def _route_capped(uow: UnitOfWork, cfg: HubConfig, cmd: PlaceOrder, now: datetime,
                  stock: StockSource) -> routing.RoutingDecision:
    """Route; a store with a cap on orders is locked and the order routed again, its count now taken under the
    lock (full meanwhile: the next store, or the refusal). Each capped store is locked once."""
    decision = stock.route(uow, cfg, cmd, now)
    locked: set[str] = set()
    while decision.location_id and decision.location_id not in locked and \
            store_capacity.lock_window(uow, cfg, decision.location_id):
        locked.add(decision.location_id)
        decision = stock.route(uow, cfg, cmd, now)
    return decision


def _follow_route(order: OrderRow, decision: routing.RoutingDecision) -> None:
    """The routing decision onto the (not yet reserved) order: where it is fulfilled, line by line."""
    order.fulfillment_type, order.location_id = str(decision.fulfillment), decision.location_id
    order.routing = decision.to_dict()
    order.pickup_code = (f"{secrets.randbelow(10**6):06d}" if decision.fulfillment == FulfillmentType.PICKUP
                         else None)
    by_sku = {sku: loc for sku, loc, _ in decision.allocations}
    for line in order.lines:
        line.location_id = by_sku.get(line.sku)
    order.transitions[0].detail = _routing_summary(decision)


def _routing_summary(decision: routing.RoutingDecision) -> str:
    where = decision.location_id or "several warehouses"
    if decision.requested != decision.fulfillment:
        return f"{decision.requested} not possible; {decision.fulfillment} from {where} ({decision.rule})"
    return f"{decision.fulfillment} from {where} ({decision.rule})"


def get(uow: UnitOfWork, order_id: str, *, lock: bool = False) -> OrderRow:
    """The order; with `lock`, its row locked FOR UPDATE and read afresh. An order the session read before
    (unlocked, or before another transaction's commit) is refreshed with what the lock returns, so the
    caller is judged on the order as it is now, never on a stale copy (a pay racing a cancel, issue 19)."""
    stmt = select(OrderRow).where(OrderRow.id == order_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    order = uow.session.execute(stmt).scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return order


def transition(uow: UnitOfWork, order: OrderRow, target: str, source: str, detail: str | None = None,
               at: datetime | None = None) -> bool:
    """Apply a legal transition with its stock effects; refuse an illegal one.

    Returns False (and changes nothing) when the order is already in `target`, so a
    redelivered message is harmless. A refund moves no stock; a return does, once, and only
    when the goods had left (`goods_out`).
    """
    current = order.status
    if current == target:
        return False
    if not allowed(order.fulfillment_type, current, target) or (
        current == S.CANCELLED and target == S.REFUNDED and order.paid_at is None
    ) or (target in RETURNS_STOCK and not goods_out(order)):
        log.warning("refused transition of order %s from %s to %s (source %s)", order.id, current, target, source)
        raise IllegalTransition(order.id, current, target, order.fulfillment_type)
    now = utcnow()
    at = min(at, now) if at else now     # a reporter's clock ahead of ours: it happened by now at the latest
    if order.transitions and at < order.transitions[-1].at:
        # A reporter's clock (a payment platform's second-resolution time, a courier's) can be
        # behind ours: the history stays in the order things were applied.
        at = order.transitions[-1].at
    if target in COMMITS_STOCK:
        inventory.commit(uow, order.id)
    elif target == S.CANCELLED:
        inventory.release(uow, order.id, detail or "cancelled")
    elif target in RETURNS_STOCK:
        inventory.return_to_stock(uow, order.id, str(target))
    if target == S.PAID and order.paid_at is None:
        order.paid_at = at
    order.status, order.updated_at = target, utcnow()
    order.transitions.append(OrderTransition(from_status=current, to_status=target, at=at, source=source,
                                             detail=detail))
    uow.emit(events.OrderStatusChanged(order.id, current, target, order.fulfillment_type, order.location_id, source))
    return True


# A delivery whose rider never came (or that no courier could take) may be handed to express from its store.
TO_EXPRESS_FROM = (S.ALLOCATED, S.PICKING, S.PICKED, S.DISPATCHED)


def hand_to_express(uow: UnitOfWork, order: OrderRow, source: str, detail: str) -> None:
    """A nearby delivery sent by express from its store instead (the store's escalation policy): its fulfilment
    becomes express and it is allocated again — picked, if its store picked it already — so the express flow
    books the waybill (`order.status_changed` to allocated or picked, express). Not a transition of one
    fulfilment's table: the order changes table. No stock moves (the goods stay reserved at the store until the
    parcel leaves)."""
    if order.fulfillment_type != FulfillmentType.DELIVERY or order.status not in TO_EXPRESS_FROM:
        raise IllegalTransition(order.id, order.status, S.ALLOCATED, FulfillmentType.EXPRESS)
    current, now = order.status, utcnow()
    # A store's parcel is booked once picked (flows/express.py): an order the store picked already is that.
    to = S.PICKED if has_been(order, S.PICKED) else S.ALLOCATED
    at = max(now, order.transitions[-1].at) if order.transitions else now
    order.fulfillment_type, order.status, order.updated_at = FulfillmentType.EXPRESS.value, to, now
    order.transitions.append(OrderTransition(from_status=current, to_status=to, at=at, source=source,
                                             detail=detail))
    uow.emit(events.OrderStatusChanged(order.id, current, to, order.fulfillment_type, order.location_id, source))


def has_been(order: OrderRow, status: str) -> bool:
    """The order entered `status` at some time (its history says so)."""
    return any(t.to_status == status for t in order.transitions)


def goods_out(order: OrderRow) -> bool:
    """The goods left (collected, picked up, shipped) and have not come back (returned)."""
    history = {t.to_status for t in order.transitions}
    return bool(history & COMMITS_STOCK) and not history & RETURNS_STOCK


def mark_paid(uow: UnitOfWork, order: OrderRow, source: str, payment_ref: str, amount_fen: int | None = None,
              at: datetime | None = None, payer_id: str = "") -> bool:
    """Payment confirmed: paid, then allocated (the stock is already reserved where routing chose).
    `payer_id` (the payer's openid) is kept on the buyer: the shipping-info upload must name it.

    Money the order cannot keep is owed back, never refused (refusing it keeps the buyer's money):
    a payment after the order was cancelled, and a second, different payment for a paid order."""
    if at is not None:
        at = min(at, utcnow())      # the platform's clock ahead of ours: paid by now at the latest
    if payer_id and order.buyer.get("openid") != payer_id:
        order.buyer = {**order.buyer, "openid": payer_id}
    if order.payment_ref == payment_ref and order.paid_at is not None:
        return False                                   # the same payment reported again
    if order.paid_at is not None:
        return _owe_second_payment(uow, order, source, payment_ref, amount_fen)
    if order.status == S.CANCELLED:
        # Paid after it expired or was cancelled: the stock is already released, the money goes back.
        order.paid_at, order.payment_ref = at or utcnow(), payment_ref
        paid = amount_fen if amount_fen is not None else order.total_fen
        money_owed.owe(uow, order, payment_ref=payment_ref, paid_fen=paid, cause="paid_late", source=source,
                       reason="paid after the order was cancelled")
        return True
    if amount_fen is not None and amount_fen != order.total_fen:
        raise BadInput(f"paid amount {amount_fen} does not match order total {order.total_fen}")
    transition(uow, order, S.PAID, source, f"payment {payment_ref}", at)
    order.paid_at, order.payment_ref, order.expires_at = at or utcnow(), payment_ref, None
    transition(uow, order, S.ALLOCATED, "hub", f"stock held at {order.location_id or 'warehouses'}", at)
    return True


def _owe_second_payment(uow: UnitOfWork, order: OrderRow, source: str, payment_ref: str,
                        amount_fen: int | None) -> bool:
    """The buyer paid twice (two payment sessions, two devices): the second payment goes back whole."""
    if money_owed.of_payment(uow, order.id, payment_ref):
        return False                                   # already owed back: the same notification again
    log.warning("order %s: second payment %s (first %s); refunding it", order.id, payment_ref, order.payment_ref)
    paid = amount_fen if amount_fen is not None else order.total_fen
    money_owed.owe(uow, order, payment_ref=payment_ref, paid_fen=paid, cause="paid_twice", source=source,
                   reason="duplicate payment for one order")
    return True


# A rider is booked: he may already hold the goods, whatever the courier's last report said.
RIDER_BOOKED = (S.DISPATCHED, S.RIDER_ASSIGNED)


def cancel(uow: UnitOfWork, order: OrderRow, source: str, reason: str, cause: str = "cancelled",
           owe_refund: bool = True) -> bool:
    """Cancel (stock released; a paid order then owes its refund) — or, once a rider is booked,
    ask for it (`cancel_requested`): the stock stays held until the courier answers. A platform
    that cancels and settles its own money passes `owe_refund=False`."""
    if order.status in (S.CANCEL_REQUESTED, S.RETURNING, S.RETURNED):
        # Asked already (the courier's answer decides), or the delivery failed: the goods come back
        # and the refund follows the return without being asked.
        return False
    if order.fulfillment_type == FulfillmentType.DELIVERY and order.status in RIDER_BOOKED:
        return transition(uow, order, S.CANCEL_REQUESTED, source, reason)
    return cancel_now(uow, order, source, reason, cause, owe_refund)


def cancel_paid_back(uow: UnitOfWork, order: OrderRow, source: str, detail: str) -> bool:
    """The buyer's money went back outside the hub's cancel (a refund at the payment platform, the shop's own)
    while a rider is booked: the courier is asked to cancel, owing nothing more; the courier's yes makes the
    order cancelled, then refunded (`courier_outcomes.cancel_accepted`). False if no rider is booked."""
    if order.fulfillment_type != FulfillmentType.DELIVERY or order.status not in (*RIDER_BOOKED, S.CANCEL_REQUESTED):
        return False
    cancel(uow, order, source, f"{detail}: the courier is asked to cancel", owe_refund=False)
    return True


def paid_back(uow: UnitOfWork, order: OrderRow) -> bool:
    """Every fen of the order's payment went back (the platform said so, in one refund or several)."""
    if order.paid_at is None or not order.payment_ref:
        return False
    refunds = [(r.amount_fen, r.status) for r in money_owed.of_payment(uow, order.id, order.payment_ref)]
    return refund_rules.fully_refunded(order.total_fen, refunds)


def cancel_now(uow: UnitOfWork, order: OrderRow, source: str, reason: str, cause: str = "cancelled",
               owe_refund: bool = True) -> bool:
    """Cancelled, stock released, and what a paid order has not had back yet owed back."""
    changed = transition(uow, order, S.CANCELLED, source, reason)
    if changed and owe_refund:
        refund_due(uow, order, reason, cause=cause)
    return changed


def refund_due(uow: UnitOfWork, order: OrderRow, reason: str, amount_fen: int | None = None,
               cause: str = "returned") -> None:
    """The buyer is owed back what is left of the payment (a paid order cancelled, a delivery
    returned, goods handed back): a refund row and `order.refund_due` (services/money_owed.py)."""
    if order.paid_at is None or not order.payment_ref:
        return                                          # never paid: nothing to give back
    held = [(r.amount_fen, r.status) for r in money_owed.of_payment(uow, order.id, order.payment_ref)]
    if refund_rules.remaining(order.total_fen, held) <= 0:
        return                                          # already refunded or on its way
    money_owed.owe(uow, order, payment_ref=order.payment_ref, paid_fen=order.total_fen, cause=cause,
                   source="hub", reason=reason, amount_fen=amount_fen)


def returned_owing(uow: UnitOfWork, order: OrderRow, source: str, reason: str, at: datetime | None = None) -> None:
    """After a return: the money owed back — or, when it all went back already (a money-only refund
    before the goods came back), refunded again at once and nothing owed."""
    if paid_back(uow, order):
        transition(uow, order, S.REFUNDED, source, "the payment was already refunded in full", at)
        return
    refund_due(uow, order, reason)


def check_pickup_code(cfg: HubConfig, order: OrderRow, code: str, now: datetime | None = None) -> None:
    """Verify the buyer's code; count failures and lock the order after too many.

    The caller must commit even when this raises, so the failed attempt is remembered.
    """
    now = now or utcnow()
    if order.pickup_locked_until and order.pickup_locked_until > now:
        raise PickupLocked(f"too many wrong codes; locked until {order.pickup_locked_until.isoformat()}",
                           order.pickup_locked_until)
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a TypeError, not a wrong code).
    if order.pickup_code and hmac.compare_digest(order.pickup_code.encode(), str(code).encode()):
        order.pickup_attempts = 0
        return
    order.pickup_attempts += 1
    if order.pickup_attempts >= cfg.hub.pickup_code_max_attempts:
        order.pickup_locked_until = now + timedelta(minutes=cfg.hub.pickup_code_lock_minutes)
        order.pickup_attempts = 0
        raise PickupLocked(f"wrong pickup code; too many attempts, locked for {cfg.hub.pickup_code_lock_minutes} min",
                           order.pickup_locked_until)
    left = cfg.hub.pickup_code_max_attempts - order.pickup_attempts
    raise PickupCodeRejected(f"wrong pickup code ({left} attempts left)", left)


def due_for_expiry(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[str]:
    stmt = (select(OrderRow.id).where(OrderRow.status == S.PENDING_PAYMENT, OrderRow.expires_at <= now)
            .order_by(OrderRow.expires_at).limit(limit))
    return list(uow.session.execute(stmt).scalars())


def collect_by(cfg: HubConfig, location_id: str | None, paid_at: datetime) -> datetime:
    """When an uncollected pickup is given up: `hub.pickup_uncollected_days` days from payment, each day its
    store does not open (a holiday closure, a closed weekday) adding one, so the buyer keeps their days."""
    loc = cfg.location(location_id or "")
    return hours.deadline_skipping_closed_days(loc.opening_hours if loc else None, local_now(cfg, paid_at),
                                               cfg.hub.pickup_uncollected_days)


def due_uncollected(uow: UnitOfWork, cfg: HubConfig, now: datetime, limit: int = 200) -> list[str]:
    cutoff = now - timedelta(days=cfg.hub.pickup_uncollected_days)      # none is due sooner: read no newer
    stmt = (select(OrderRow.id, OrderRow.location_id, OrderRow.paid_at)
            .where(OrderRow.fulfillment_type == FulfillmentType.PICKUP,
                   OrderRow.status.in_([S.ALLOCATED, S.PICKING, S.PICKED, S.READY_FOR_PICKUP]),
                   OrderRow.paid_at <= cutoff)
            .order_by(OrderRow.paid_at).limit(limit * 4))
    due = [oid for oid, loc, paid in uow.session.execute(stmt) if collect_by(cfg, loc, paid) <= now]
    return due[:limit]


def kept_lines(order: OrderRow) -> tuple[OrderLine, ...]:
    """The lines the buyer gets: as ordered, or as picked once the store picked (a line picked zero is gone)."""
    kept = []
    for x in order.lines:
        qty = x.qty if x.qty_picked is None else x.qty_picked
        if qty > 0:          # a short line keeps its discounted amount less what its missing units refunded
            amount = refund_rules.line_amount_fen(x) - refund_rules.line_refund_fen(x, x.qty - qty)
            kept.append(OrderLine(x.sku, qty, x.unit_price_fen, amount))
    return tuple(kept)


def kept_total_fen(order: OrderRow) -> int:
    """What the kept lines cost: the sale the ERP and the CRM's points see (short lines were refunded)."""
    return sum(x.amount_fen or 0 for x in kept_lines(order))


def basket_weight_g(order: OrderRow) -> int | None:
    """What the kept lines weigh (grams, from the product master's weights when the order was placed); None
    if a kept line's SKU has no weight: a courier is then told its own default, not a guess of ours."""
    total = 0
    for x in order.lines:
        qty = x.qty if x.qty_picked is None else x.qty_picked
        if qty <= 0:
            continue
        if x.unit_weight_g is None:
            return None
        total += qty * x.unit_weight_g
    return total


def snapshot(order: OrderRow) -> OrderSnapshot:
    """The connector-facing view of an order."""
    addr = order.address
    return OrderSnapshot(
        order_id=order.id, channel=order.channel, status=order.status,
        fulfillment=Fulfillment(FulfillmentType(order.fulfillment_type),
                                order.location_id if order.fulfillment_type == "pickup" else None,
                                Address(**addr) if addr else None),
        lines=kept_lines(order),
        buyer=Buyer(**order.buyer), total_fen=kept_total_fen(order), location_id=order.location_id,
        created_at=order.created_at, paid_at=order.paid_at, external_id=order.external_id,
        weight_g=basket_weight_g(order),
    )
