"""A channel that takes its own orders (an instant-retail platform) is told how the hub's order goes:
accepted when the hub allocates it (`confirm_order`, Meituan's `order/confirm`), picked when the store
has picked it (`mark_picked`, `order/preparationMealComplete`). Only channels whose connector offers the
step are told; the mini-program shop, whose orders the hub takes itself, is not. Calls out with no
transaction open; the platform answers a repeated step ok, so a redelivered event only repeats a call.
"""
from __future__ import annotations

import logging

from hub.bootstrap import HubContext
from hub.domain.order_states import OrderStatus as S
from hub.events import OrderStatusChanged, ShipmentChanged
from hub.ports import ChannelRiders
from hub.services import orders
from hub.storage.tables import Shipment

log = logging.getLogger(__name__)

# The states that mean "the store has picked it", as far as this tree has them (a pickup that is ready).
PICKED = frozenset({S.READY_FOR_PICKUP} | {s for s in S if s.value == "picked"})
TOLD = frozenset({S.ALLOCATED} | PICKED)


def channel_order_progress(ctx: HubContext, event: OrderStatusChanged) -> None:
    with ctx.reader() as uow:
        order = orders.get(uow, event.order_id)
        channel = ctx.config.channel(order.channel)
        external_id = order.external_id
    if channel is None or not channel.publish_to or not external_id:
        return                                   # an order the hub took itself: nothing to tell
    connector = ctx.connectors.channel(channel.publish_to)
    step = "confirm_order" if event.to_status == S.ALLOCATED else "mark_picked" if event.to_status in PICKED else None
    tell = getattr(connector, step, None) if step else None
    if tell is None:
        return
    tell(external_id)
    log.info("order %s: %s told %s (%s)", event.order_id, channel.publish_to, step, external_id)


def rider_to_channel(ctx: HubContext, event: ShipmentChanged) -> None:
    """The store's own courier delivers a channel's order: the channel is told the rider, his status and
    position (Meituan's `ecommerce/order/logistics/sync`), as the event carries them. A report applied after
    it sent its own event, so a late delivery of this one is skipped: the channel is never told an older
    state over a newer one. No transaction open during the call; the platform takes a repeat as the same."""
    with ctx.reader() as uow:
        order = orders.get(uow, event.order_id)
        channel = ctx.config.channel(order.channel)
        external_id = order.external_id
        shipment = uow.session.get(Shipment, event.shipment_id)
        current = shipment is not None and shipment.active and shipment.status == event.status
        carrier_ref = shipment.shipment_ref if shipment is not None else None
    if channel is None or not channel.publish_to or not external_id:
        return
    connector = ctx.connectors.channel(channel.publish_to)
    if not isinstance(connector, ChannelRiders):
        return                                   # a channel that takes no rider reports
    if not current:
        log.info("order %s: rider %s not synced to %s, the delivery has moved on", event.order_id, event.status,
                 channel.publish_to)
        return
    connector.sync_rider(external_id, event.status, event.rider_name, event.rider_phone, event.lat, event.lng,
                         carrier_ref)
    log.info("order %s: %s told the rider's %s", event.order_id, channel.publish_to, event.status)
