"""Store pickup at the counter: a store's own paid pickup orders, made ready, handed over with the code,
and handed back after collection (a store return: the goods on-hand again, the money owed)."""
from __future__ import annotations

from datetime import datetime

from hub.config import HubConfig
from hub.domain.errors import IllegalTransition, NotFound, PickupCodeRejected, PickupLocked
from hub.domain.model import FulfillmentType
from hub.domain.order_states import TO_PICK, OrderStatus, allowed
from hub.services import orders, picking
from hub.services.tracking import complete
from hub.storage.tables import OrderRow
from hub.storage.uow import UnitOfWork

S = OrderStatus


def store_order(uow: UnitOfWork, store_id: str, order_id: str, lock: bool = True) -> OrderRow:
    """This store's paid pickup order; anything else is not found here."""
    try:
        order: OrderRow | None = orders.get(uow, order_id, lock=lock)
    except NotFound:
        order = None
    if (order is None or order.location_id != store_id or order.fulfillment_type != FulfillmentType.PICKUP
            or order.paid_at is None):
        raise NotFound(f"no pickup order {order_id!r} at this store")
    return order


def ready(uow: UnitOfWork, store_id: str, order_id: str, source: str, now: datetime) -> OrderRow:
    """Ready at the counter; an order not picked yet is picked in full first (the POS's one step)."""
    order = store_order(uow, store_id, order_id)
    if order.status in TO_PICK:
        return picking.complete(uow, store_id, order_id, [], None, now)
    orders.transition(uow, order, S.READY_FOR_PICKUP, source, "ready at the counter", now)
    return order


def collect(uow: UnitOfWork, cfg: HubConfig, store_id: str, order_id: str, code: str, source: str,
            now: datetime) -> OrderRow:
    """Hand the order over if the buyer's code is right. A wrong code is committed before the
    error goes up — the attempt must count towards the lock."""
    order = store_order(uow, store_id, order_id)
    if order.status != S.COLLECTED and not allowed(order.fulfillment_type, order.status, S.COLLECTED):
        raise IllegalTransition(order.id, order.status, S.COLLECTED, order.fulfillment_type)
    if order.status == S.READY_FOR_PICKUP:
        try:
            orders.check_pickup_code(cfg, order, code, now)
        except (PickupCodeRejected, PickupLocked):
            uow.commit()
            raise
        orders.transition(uow, order, S.COLLECTED, source, "collected with the pickup code", now)
    complete(uow, order, source, "handed over", now)
    return order


def hand_back(uow: UnitOfWork, store_id: str, order_id: str, reason: str, source: str, now: datetime) -> OrderRow:
    """The buyer brought the goods back and the store confirms: returned, stock back, refund due — or,
    when the order was refunded already (money only, 仅退款), refunded again with nothing more owed.
    A second confirmation changes nothing; an order not yet collected cannot be returned (409)."""
    order = store_order(uow, store_id, order_id)
    if orders.has_been(order, S.RETURNED):
        return order                    # once: the goods are on the shelf already
    if not allowed(order.fulfillment_type, order.status, S.RETURNED) or not orders.goods_out(order):
        raise IllegalTransition(order.id, order.status, S.RETURNED, order.fulfillment_type)
    orders.transition(uow, order, S.RETURNED, source, f"handed back at the store: {reason}", now)
    orders.returned_owing(uow, order, source, f"returned at store {store_id}: {reason}", now)
    return order
