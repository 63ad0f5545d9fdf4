"""Orders a sales channel takes itself (the mini-program shop's own checkout), kept in step with it.

The shop pushes only "this order changed"; the hub acts on the order as the shop holds it now,
so pushes arriving twice or out of order cannot move the hub's order backwards.
"""
from __future__ import annotations

from datetime import datetime

from hub.config import HubConfig
from hub.domain.errors import BadInput
from hub.domain.model import PlaceOrder
from hub.domain.order_states import OrderStatus
from hub.ports import AfterSale
from hub.services import channel_after_sales, orders
from hub.services.payments import refunded
from hub.storage.uow import UnitOfWork

S = OrderStatus
PAID_IN_SHOP = {"paid", "shipped", "completed"}


def sync(uow: UnitOfWork, cfg: HubConfig, system: str, shop_order: PlaceOrder, now: datetime,
         after_sale: AfterSale | None = None) -> bool:
    """Place the shop's order in the hub (once), then follow its payment, cancellation or refund — and the buyer's
    after-sales request the push was about (before the order's own status: a refund it completed is the
    shop's refund of the order). True when this changed the hub's order (placed it, or moved it): a pull counts
    those as the pushes' misses."""
    if after_sale is not None and after_sale.external_order_id != shop_order.external_id:
        raise BadInput(f"after-sale {after_sale.after_sale_id} is of order {after_sale.external_order_id}, "
                       f"not {shop_order.external_id}")
    key = shop_order.idempotency_key
    order = orders.find_by_idempotency(uow, shop_order.channel, key)
    if order is None:
        if shop_order.status in ("cancelled", "refunded"):
            return False                # never reached the hub
        order, _ = orders.place(uow, cfg, shop_order, now=now)
        before = None
    else:
        before = order.status
    if after_sale is not None:
        channel_after_sales.apply(uow, system, order, after_sale, now)
    if shop_order.status in PAID_IN_SHOP and order.paid_at is None and order.status in (S.PENDING_PAYMENT,
                                                                                         S.CANCELLED):
        # The shop's total may include freight or discounts: its word on the amount stands. Paid after
        # the hub expired the order: mark_paid owes the payment back (the stock is already released).
        orders.mark_paid(uow, order, system, key, None, now)
    elif shop_order.status == "cancelled" and order.status not in (S.CANCELLED, S.REFUNDED):
        # The shop cancelled it and settles its own money: no second refund from the hub.
        orders.cancel(uow, order, system, "cancelled in the shop", owe_refund=False)
    elif shop_order.status == "refunded":
        refunded(uow, order, system, "refunded in the shop")
    return before is None or order.status != before
