"""Who handles what: every consumer of every event, in one table.

A row says the consumer's one name (its function's name, its once-only records' and dead letters'
key, its metrics label), the event it takes, the function, its filter (fulfilment types, target
states: an event outside it is skipped without a database write), whether it calls out (then it
opens its own short transactions around the call), and the worker that runs it. The workers
(`workers/fulfilment.py`, ...), the broker's queues and the subscriptions are generated from it.

This module is the top of the core: it imports the flows, nothing imports it but the workers,
the operators' replay and the tests.
"""
from __future__ import annotations

from .consumers import Consumer, by_name
from .domain.order_states import OrderStatus as S
from .events import (
    ChannelAfterSaleAnswerDue,
    ChannelRefundAgreed,
    MemberHoldsReleaseDue,
    OrderRefundDue,
    OrderRefunded,
    OrderStatusChanged,
    ShipmentChanged,
    ShipmentRebookNeeded,
    StockChanged,
)
from .flows import (
    channel_after_sales,
    channel_delivery,
    channel_orders,
    channel_stock,
    completed,
    delivery,
    escalation,
    express,
    members,
    refunds,
    shipping_info,
    store_pos,
)
from .services import flash_sales

STOCK_TO_SHOP = Consumer("stock_to_shop", StockChanged, channel_stock.stock_to_shop, "channel_sync",
                         calls_out=True, batch=channel_stock.stock_to_shop_batch)
# Every store's order, pickup, delivery and a store's parcel alike (a warehouse's parcel is skipped inside).
STORE_ORDER_TO_POS = Consumer("store_order_to_pos", OrderStatusChanged, store_pos.store_order_to_pos, "fulfilment",
                              calls_out=True, to=store_pos.TOLD)
DELIVERY_TO_COURIER = Consumer("delivery_to_courier", OrderStatusChanged, delivery.delivery_to_courier,
                               "fulfilment", calls_out=True, fulfillment=frozenset({"delivery"}),
                               to=frozenset({S.ALLOCATED, S.PICKED, S.CANCEL_REQUESTED, S.CANCELLED}))
EXPRESS_WAYBILL = Consumer("express_waybill", OrderStatusChanged, express.express_waybill, "fulfilment",
                           calls_out=True, fulfillment=frozenset({"express"}),
                           to=frozenset({S.ALLOCATED, S.PICKED}))     # a store's parcel: once picked
SHIPPING_INFO_UPLOAD = Consumer("shipping_info_upload", OrderStatusChanged, shipping_info.shipping_info_upload,
                                "fulfilment", calls_out=True, to=frozenset(shipping_info.LOGISTICS))
REBOOK_COURIER = Consumer("rebook_courier", ShipmentRebookNeeded, delivery.rebook_courier, "fulfilment",
                          calls_out=True)
ASK_FOR_REFUND = Consumer("ask_for_refund", OrderRefundDue, refunds.ask_for_refund, "fulfilment", calls_out=True)
ERP_SALES_ORDER = Consumer("erp_sales_order", OrderStatusChanged, completed.erp_sales_order, "erp_sync",
                           calls_out=True, to=frozenset({S.COMPLETED}))
ERP_RETURN_ORDER = Consumer("erp_return_order", OrderStatusChanged, completed.erp_return_order, "erp_sync",
                            calls_out=True, to=frozenset({S.RETURNED, S.REFUNDED}))
CRM_POINTS = Consumer("crm_points", OrderStatusChanged, completed.crm_points, "erp_sync", calls_out=True,
                      to=frozenset({S.COMPLETED}))
CHANNEL_ORDER_PROGRESS = Consumer("channel_order_progress", OrderStatusChanged,
                                  channel_orders.channel_order_progress, "fulfilment", calls_out=True,
                                  to=channel_orders.TOLD)
CHANNEL_DELIVERY_SEND = Consumer("channel_delivery_send", OrderStatusChanged, channel_delivery.channel_delivery_send,
                                 "fulfilment", calls_out=True, to=frozenset(channel_delivery.KINDS))
CHANNEL_AFTER_SALE_ANSWER = Consumer("channel_after_sale_answer", ChannelAfterSaleAnswerDue,
                                     channel_after_sales.channel_after_sale_answer, "fulfilment", calls_out=True)
RIDER_TO_CHANNEL = Consumer("rider_to_channel", ShipmentChanged, channel_orders.rider_to_channel, "fulfilment",
                            calls_out=True)
ERP_REFUND_LINES = Consumer("erp_refund_lines", ChannelRefundAgreed, completed.erp_refund_lines, "erp_sync",
                            calls_out=True)
FLASH_SALE_GIVE_BACK = Consumer("flash_sale_give_back", OrderStatusChanged, flash_sales.flash_sale_give_back,
                                "scheduler", to=frozenset({S.CANCELLED}))
CRM_REDEEM = Consumer("crm_redeem", OrderStatusChanged, members.crm_redeem, "erp_sync", calls_out=True,
                      to=frozenset({S.PAID}))
CRM_GIVE_BACK = Consumer("crm_give_back", OrderStatusChanged, members.crm_give_back, "erp_sync", calls_out=True,
                         to=frozenset({S.CANCELLED}))
# On the money back, not on its asking: every path a refund is done by emits `order.refunded` once.
CRM_REFUND_POINTS = Consumer("crm_refund_points", OrderRefunded, members.crm_refund_points, "erp_sync",
                             calls_out=True)
CRM_RELEASE_HOLDS = Consumer("crm_release_holds", MemberHoldsReleaseDue, members.crm_release_holds, "erp_sync",
                             calls_out=True)

TABLE: tuple[Consumer, ...] = (STOCK_TO_SHOP, STORE_ORDER_TO_POS, DELIVERY_TO_COURIER, EXPRESS_WAYBILL,
                               SHIPPING_INFO_UPLOAD, REBOOK_COURIER, ASK_FOR_REFUND, ERP_SALES_ORDER, ERP_RETURN_ORDER,
                               CRM_POINTS, FLASH_SALE_GIVE_BACK, CRM_REDEEM, CRM_GIVE_BACK, CRM_REFUND_POINTS,
                               CRM_RELEASE_HOLDS, CHANNEL_ORDER_PROGRESS, CHANNEL_DELIVERY_SEND,
                               CHANNEL_AFTER_SALE_ANSWER, RIDER_TO_CHANNEL, ERP_REFUND_LINES)

# Replay only: dead letters the hub parks itself, not from an event's queue (no queue, no subscription). The
# escalation timer's operator step (flows/escalation.py) is one; its replay re-dispatches the delivery.
DELIVERY_OPERATOR_STEP = Consumer(escalation.OPERATOR_STEP, ShipmentRebookNeeded, escalation.operator_rebook,
                                  "scheduler", calls_out=True)
REPLAY_ONLY: tuple[Consumer, ...] = (DELIVERY_OPERATOR_STEP,)

# The names before this table (issue 20), kept so that what a deployed hub already holds still works:
# dead letters parked under the old name replay through the consumer (`BY_NAME`), and the broker's
# queues keep their names — nameko names a queue after the service method, and the method keeps the
# old name where it had another (`workers/subscribe.py`), so messages waiting in them are consumed.
OLD_TARGETS: dict[str, str] = {
    "channel_sync.publish_stock": STOCK_TO_SHOP.name, "fulfilment.pickup_pos": STORE_ORDER_TO_POS.name,
    "fulfilment.local_delivery": DELIVERY_TO_COURIER.name, "fulfilment.express": EXPRESS_WAYBILL.name,
    "fulfilment.shipping_info": SHIPPING_INFO_UPLOAD.name, "fulfilment.rebook_courier": REBOOK_COURIER.name,
    "fulfilment.refund_due": ASK_FOR_REFUND.name, "erp_sync.sales_order": ERP_SALES_ORDER.name,
    "erp_sync.return_order": ERP_RETURN_ORDER.name, "erp_sync.crm_points": CRM_POINTS.name,
    "scheduler.flash_sale_give_back": FLASH_SALE_GIVE_BACK.name,
    "pickup_to_pos": STORE_ORDER_TO_POS.name,        # issue 21: every store order reaches the POS, not pickups only
}
OLD_QUEUE_METHODS: dict[str, str] = {
    STOCK_TO_SHOP.name: "on_stock_changed", STORE_ORDER_TO_POS.name: "pickup_at_pos",
    DELIVERY_TO_COURIER.name: "local_delivery", SHIPPING_INFO_UPLOAD.name: "shipping_info",
    ASK_FOR_REFUND.name: "refund_due", ERP_SALES_ORDER.name: "sales_order", ERP_RETURN_ORDER.name: "return_order",
}

# name (or an old name) -> consumer: what `consumers.replay` looks a dead letter's target up in.
BY_NAME: dict[str, Consumer] = by_name(TABLE + REPLAY_ONLY, OLD_TARGETS)


def consumers_of(event_type: str) -> tuple[Consumer, ...]:
    """The consumers of one event type, in the table's order."""
    return tuple(c for c in TABLE if c.event.TYPE == event_type)


def of_service(service: str) -> tuple[Consumer, ...]:
    """The consumers worker `service` runs."""
    return tuple(c for c in TABLE if c.service == service)
