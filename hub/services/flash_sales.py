"""Flash sales (秒杀): arm, place an admitted order, give a unit back, end with gate and ledger compared.

The gate (`flash_gate.AdmissionGate`) answers the rush; the ledger stays the last word. Arming holds
the whole quota in the stock row at once (one conditional UPDATE), so an admitted attempt's order draws
its unit from the sale's hold and writes no shared row: a rush's orders never queue on the one hot
stock row's lock. A till sale that ate the held units meanwhile still refuses the draw (409) and the
attempt's unit goes back to the gate. An order of a sale that is cancelled or expires gives its unit
back to the hold, and to the gate through the `order.status_changed` event (outbox, once). Ending
hands the unsold rest of the hold back to free stock, gives back units the gate still holds for
attempts with no live order (a gateway that died between admission and commit), and the result says
what each side counted.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from hub.bootstrap import HubContext
from hub.config import HubConfig
from hub.domain.errors import BadInput, NotFound, SaleEnded, UnknownLocation, UnknownSku
from hub.domain.flash_sale import SaleTerms
from hub.domain.model import FulfillmentType, PlaceOrder
from hub.domain.routing import CandidateVerdict, RoutingDecision
from hub.events import OrderStatusChanged
from hub.metrics import METRICS
from hub.services import inventory, orders
from hub.storage.tables import (
    FlashSaleRow,
    LocationRow,
    OrderLineRow,
    OrderRow,
    OrderTransition,
    OutboxMessage,
    Reservation,
    SkuRow,
    StockLevel,
    utcnow,
)
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
# Units an order of the sale holds or took, a returned one's too: what the sale's own count (`drawn`) and the
# end's hand-back count (`inventory.drawn_from`), so the gate restored from these and the end's comparison agree.
LIVE_RESERVATIONS = inventory.DRAWN


@dataclass(frozen=True)
class ArmSale:
    sku: str
    location_id: str
    quota: int
    per_buyer_limit: int
    starts_at: datetime
    ends_at: datetime
    min_interval_ms: int = 1000
    price_fen: int | None = None


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def terms(sale: FlashSaleRow) -> SaleTerms:
    return SaleTerms(sale.id, sale.quota, sale.per_buyer_limit, sale.min_interval_ms, epoch_ms(sale.starts_at),
                     epoch_ms(sale.ends_at))


def attempt_key(channel: str, idempotency_key: str) -> str:
    """One attempt = one channel's Idempotency-Key: a retried request is the same attempt."""
    return f"{channel}:{idempotency_key}"


def buyer_key(channel: str, buyer_id: str) -> str:
    """Whose limit and pace an attempt counts against: a buyer of one channel."""
    return f"{channel}:{buyer_id}"


class UnknownSales:
    """Sale ids the ledger has no sale for, remembered a few seconds: the gate answers `unknown` for a made-up
    id, and each such attempt would otherwise cost a database read (`restore_gate`). Bounded: the oldest go
    first. A real sale is never in it for long: its id is new when armed (and `arm` forgets it anyway)."""

    def __init__(self, ttl_s: float = 10.0, most: int = 10_000, clock: Any = time.monotonic) -> None:
        self.ttl_s, self.most, self.clock = ttl_s, most, clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __contains__(self, sale_id: str) -> bool:
        with self._lock:
            until = self._until.get(sale_id)
            if until is not None and until <= self.clock():
                del self._until[sale_id]
                return False
            return until is not None

    def remember(self, sale_id: str) -> None:
        with self._lock:
            self._until.pop(sale_id, None)
            while len(self._until) >= self.most:
                del self._until[next(iter(self._until))]
            self._until[sale_id] = self.clock() + self.ttl_s

    def forget(self, sale_id: str) -> None:
        with self._lock:
            self._until.pop(sale_id, None)


UNKNOWN_SALES = UnknownSales()


def arm(ctx: HubContext, cmd: ArmSale, now: datetime | None = None) -> FlashSaleRow:
    """Record the sale, then open the gate. The location must hold the quota now."""
    now = now or utcnow()
    if cmd.ends_at <= cmd.starts_at or cmd.ends_at <= now:
        raise BadInput("a flash sale must end after it starts, and in the future")
    if cmd.per_buyer_limit > cmd.quota:
        raise BadInput("the per-buyer limit cannot exceed the quota")
    cfg = ctx.config
    with ctx.uow() as uow:
        session = uow.session
        if session.get(SkuRow, cmd.sku) is None:
            raise UnknownSku(f"unknown SKU {cmd.sku!r}")
        location = cfg.location(cmd.location_id)
        if location is None or session.get(LocationRow, cmd.location_id) is None:
            raise UnknownLocation(f"unknown location {cmd.location_id!r}")
        if not location.is_store or not location.pickup:
            raise BadInput(f"{cmd.location_id} is not a pickup store; flash-sale orders are collected there")
        sale = FlashSaleRow(id=f"FS{now:%y%m%d}{secrets.token_hex(4).upper()}", sku=cmd.sku,
                            location_id=cmd.location_id, quota=cmd.quota, per_buyer_limit=cmd.per_buyer_limit,
                            min_interval_ms=cmd.min_interval_ms, price_fen=cmd.price_fen, starts_at=cmd.starts_at,
                            ends_at=cmd.ends_at, status="armed", created_at=now, stock_held=True)
        session.add(sale)
        inventory.hold(uow, cfg, cmd.sku, cmd.location_id, cmd.quota, f"flash_sale:{sale.id}")
        uow.commit()
        session.refresh(sale)
        session.expunge(sale)
    UNKNOWN_SALES.forget(sale.id)
    ctx.gate.arm(terms(sale))
    log.info("flash sale %s armed: %d x %s at %s", sale.id, sale.quota, sale.sku, sale.location_id)
    return sale


def get(uow: UnitOfWork, sale_id: str, *, lock: bool = False) -> FlashSaleRow:
    """The sale; `lock` waits for the orders drawing from its hold (`for_order` holds it shared) and keeps
    later ones out (ending it)."""
    if not lock:
        sale = uow.session.get(FlashSaleRow, sale_id)
    else:
        sale = uow.session.execute(select(FlashSaleRow).where(FlashSaleRow.id == sale_id)
                                   .with_for_update()).scalar_one_or_none()
    if sale is None:
        raise NotFound(f"no flash sale {sale_id!r}")
    return sale


@dataclass(frozen=True)
class SaleForOrder:
    sale: FlashSaleRow
    sku: SkuRow
    backing: tuple[int, int]        # the store's stock row: (on_hand, reserved), read with the sale


# Built once: building it per attempt cost a tenth of an admitted order's CPU.
_FOR_ORDER = (select(FlashSaleRow, SkuRow, StockLevel.on_hand, StockLevel.reserved)
              .join(SkuRow, SkuRow.code == FlashSaleRow.sku)
              .outerjoin(StockLevel, (StockLevel.sku == FlashSaleRow.sku)
                         & (StockLevel.location_id == FlashSaleRow.location_id))
              .where(FlashSaleRow.id == bindparam("sale_id"))
              # KEY SHARE: ending (FOR UPDATE) waits for this order, but other orders' quota UPDATEs do not.
              .with_for_update(read=True, key_share=True, of=FlashSaleRow))


def for_order(uow: UnitOfWork, sale_id: str) -> SaleForOrder:
    """The sale, kept from ending until this transaction is done (an order drawing from its hold), its SKU
    (price, and the order's own check from the identity map) and the stock row its hold is in (the draw's
    check): one statement, as a rush's order's round trips each wait a turn of a busy gateway (issue 11)."""
    row = uow.session.execute(_FOR_ORDER, {"sale_id": sale_id}).one_or_none()
    if row is None:
        raise NotFound(f"no flash sale {sale_id!r}")
    return SaleForOrder(row[0], row[1], (row[2] or 0, row[3] or 0))


def prepare_connection(conn: Connection) -> None:
    """What a rush's admitted orders touch, read once on a new connection (`storage.db.warm_pool`): each
    server process reads the catalogue of a table the first time it meets it, and a pool of fresh ones
    meeting a rush's first orders at once made the rush's slowest answers (issue 11)."""
    conn.execute(_FOR_ORDER, {"sale_id": ""}).all()
    for table in (OrderRow, OrderLineRow, OrderTransition, Reservation, OutboxMessage):
        conn.execute(select(table.__table__).limit(0)).all()


class SaleStock:
    """A running sale's held stock as the source of its orders' units (`orders.StockSource`): the order is
    collected at the sale's store and draws from the hold; the sale row must be read shared (`for_order`),
    and `backing` is its store's stock row read in that statement."""

    def __init__(self, sale: FlashSaleRow, backing: tuple[int, int] | None = None) -> None:
        self.sale, self.backing = sale, backing

    def route(self, uow: UnitOfWork, cfg: HubConfig, cmd: PlaceOrder, now: datetime) -> RoutingDecision:
        s = self.sale
        qty = sum(line.qty for line in cmd.lines if line.sku == s.sku)
        if qty != sum(line.qty for line in cmd.lines):
            raise BadInput(f"flash sale {s.id} sells {s.sku} only")
        return RoutingDecision(FulfillmentType.PICKUP, FulfillmentType.PICKUP, [(s.sku, s.location_id, qty)],
                               s.location_id, [CandidateVerdict(s.location_id, True, "the flash sale's store")],
                               "flash sale")

    def reserve(self, uow: UnitOfWork, cfg: HubConfig, order_id: str, allocations: list[tuple[str, str, int]],
                ttl: timedelta, channel_safety: int, channel: str | None = None, *,
                final: bool = False, detached: bool = False) -> list[Reservation]:
        # The sale's quota is its own allocation, armed by operations out of the store's free stock (the hold
        # is reserved, so every channel's figure shows it gone): a draw counts against no channel's share.
        if self.sale.status != "armed":
            raise SaleEnded(f"flash sale {self.sale.id} has ended")
        return [inventory.draw(uow, cfg, order_id, self.sale.id, sku, location_id, qty, ttl, backing=self.backing)
                for sku, location_id, qty in allocations]


def stock_for(sale: FlashSaleRow, backing: tuple[int, int] | None = None) -> orders.StockSource:
    """Where a sale's order takes its units: the hold, or free stock for a sale armed before holds."""
    return SaleStock(sale, backing) if sale.stock_held else orders.FREE_STOCK


def units_in_ledger(uow: UnitOfWork, sale_id: str) -> int:
    """Units the sale's orders hold (open reservations) or took (committed, returned later) in the ledger."""
    total = uow.session.execute(
        select(func.coalesce(func.sum(Reservation.qty), 0)).join(OrderRow, OrderRow.id == Reservation.order_id)
        .where(OrderRow.flash_sale_id == sale_id, Reservation.status.in_(LIVE_RESERVATIONS))).scalar_one()
    return int(total)


def _live_holders(uow: UnitOfWork, sale_id: str) -> dict[str, tuple[str, int]]:
    """attempt -> (buyer, units) for every order of the sale still holding or having taken its units (a returned
    order's too: its unit is the sale's sold one, and its buyer's limit spent)."""
    rows = uow.session.execute(
        select(OrderRow.channel, OrderRow.idempotency_key, OrderRow.buyer, func.sum(Reservation.qty))
        .join(Reservation, Reservation.order_id == OrderRow.id)
        .where(OrderRow.flash_sale_id == sale_id, Reservation.status.in_(LIVE_RESERVATIONS))
        .group_by(OrderRow.id)).all()
    return {attempt_key(channel, key): (buyer_key(channel, (buyer or {}).get("id", "")), int(qty))
            for channel, key, buyer, qty in rows}


def restore_gate(ctx: HubContext, sale_id: str) -> bool:
    """A gate that lost a sale (an embedded hub restarted, Redis came back empty) learns it again from the
    ledger: its terms, the attempts whose orders hold units, and whether it ended. False: no such sale, or the
    gate knew it (another gateway restored it first). An attempt admitted but not yet committed when the gate
    was lost is not counted: the sale's own count (`flash_sales.drawn`) still refuses a unit too many (409
    sold_out, the unit back). An id with no sale is remembered a few seconds (`UNKNOWN_SALES`)."""
    if sale_id in UNKNOWN_SALES:
        return False
    with ctx.uow() as uow:
        sale = uow.session.get(FlashSaleRow, sale_id)
        if sale is None:
            UNKNOWN_SALES.remember(sale_id)
            return False
        sale_terms, ended = terms(sale), sale.status == "ended"
        held = _live_holders(uow, sale_id)
    restored = ctx.gate.restore(sale_terms, held, ended)
    if restored:
        log.warning("flash sale %s was not in the gate: restored from the ledger (%d unit(s) held by %d attempt(s))",
                    sale_id, sum(q for _, q in held.values()), len(held))
    return restored


def attempt_holds(ctx: HubContext, sale_id: str, channel: str, idempotency_key: str) -> bool:
    """Whether this attempt's order holds (or took) units of this sale in the ledger: what the gate should hold
    for it. Asked only when an admitted attempt placed no new order (a retry, a conflict)."""
    with ctx.uow() as uow:
        found = uow.session.execute(
            select(Reservation.id).join(OrderRow, OrderRow.id == Reservation.order_id)
            .where(OrderRow.channel == channel, OrderRow.idempotency_key == idempotency_key,
                   OrderRow.flash_sale_id == sale_id, Reservation.status.in_(LIVE_RESERVATIONS)).limit(1)).first()
    return found is not None


def reconcile(ctx: HubContext, sale_id: str) -> dict[str, Any]:
    """Gate against ledger: units the gate holds for attempts without a live order go back."""
    with ctx.uow() as uow:
        sale = get(uow, sale_id)
        quota = sale.quota
        live = set(_live_holders(uow, sale_id))
        sold = units_in_ledger(uow, sale_id)
    state = ctx.gate.state(sale_id)
    stranded = 0
    if state is not None:
        for attempt in set(state.held) - live:
            stranded += ctx.gate.give_back(sale_id, attempt)
        state = ctx.gate.state(sale_id)
    taken = state.taken if state is not None else None
    return {"quota": quota, "sold_in_ledger": sold, "held_by_gate": taken,
            "left_in_gate": state.left if state is not None else None, "stranded_given_back": stranded,
            "oversold": max(sold - quota, 0), "agree": taken == sold}


def end(ctx: HubContext, sale_id: str, now: datetime | None = None) -> dict[str, Any]:
    """Close the gate, hand the hold's unsold rest back to free stock, then compare gate and ledger and
    keep the result on the sale."""
    with ctx.uow() as uow:
        get(uow, sale_id)
    if ctx.gate.state(sale_id) is None:       # lost by the gate: the comparison below needs its count
        restore_gate(ctx, sale_id)
    ctx.gate.end(sale_id)
    with ctx.uow() as uow:
        sale = get(uow, sale_id, lock=True)        # waits for orders drawing from the hold right now
        if sale.status != "ended":
            if sale.stock_held:
                rest = sale.quota - inventory.drawn_from(uow.session, sale_id)
                inventory.release_hold(uow, sale.sku, sale.location_id, rest, f"flash_sale:{sale_id}")
            sale.status, sale.ended_at = "ended", now or utcnow()
            uow.commit()
    result = reconcile(ctx, sale_id)
    with ctx.uow() as uow:
        sale = get(uow, sale_id)
        sale.result = result
        uow.commit()
    log.info("flash sale %s ended: %s", sale_id, result)
    return result


def flash_sale_give_back(ctx: HubContext, uow: UnitOfWork, event: OrderStatusChanged) -> None:
    """A cancelled (or expired) order of a flash sale hands its unit back to the gate, once per attempt."""
    order = uow.session.get(OrderRow, event.order_id)
    if order is None or not order.flash_sale_id:
        return
    returned = ctx.gate.give_back(order.flash_sale_id, attempt_key(order.channel, order.idempotency_key))
    if returned:
        METRICS.flash_sale_admissions.labels("released").inc(returned)
        log.info("order %s cancelled: %d unit(s) back to flash sale %s", order.id, returned, order.flash_sale_id)
