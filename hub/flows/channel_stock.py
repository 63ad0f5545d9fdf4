"""Flow 1's last hop: tell each sales channel what it may sell per (SKU, location).

Bursts coalesce by construction: the consumer publishes the figure as it is *now*, under a
lock on what the channel was last told, and skips when that is already the figure — so ten
quick sales at a till produce few pushes, and the last one carries the right number.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.consumers import consumer
from hub.services import inventory
from hub.storage.tables import ChannelStockPublished, utcnow
from hub.storage.uow import UnitOfWork
from hub.storage.upsert import insert_ignore


def channel_available(location_available: int, channel_safety_stock: int) -> int:
    return max(location_available - channel_safety_stock, 0)


@consumer("channel_sync.publish_stock")
def publish_stock(ctx: HubContext, uow: UnitOfWork, data: dict[str, Any]) -> None:
    sku, location_id = data["sku"], data["location_id"]
    location = ctx.config.location(location_id)
    if location is None or location.kind != "store":
        return                              # the shop shows per-store stock; warehouses ship express
    for channel in ctx.config.channels:
        if not channel.publish_to:
            continue
        insert_ignore(uow.session, ChannelStockPublished, {"channel": channel.id, "sku": sku,
                                                           "location_id": location_id, "available": -1,
                                                           "published_at": utcnow()})
        published = uow.session.execute(
            select(ChannelStockPublished).where(ChannelStockPublished.channel == channel.id,
                                                ChannelStockPublished.sku == sku,
                                                ChannelStockPublished.location_id == location_id)
            .with_for_update().execution_options(populate_existing=True)).scalar_one()
        level = inventory.stock_at(uow.session, ctx.config, sku, location_id)
        figure = channel_available(level.available, channel.safety_stock)
        if published.available == figure:
            continue
        ctx.connectors[channel.publish_to].update_store_stock(sku, location_id, figure)
        published.available, published.published_at = figure, utcnow()
