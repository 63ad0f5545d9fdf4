"""Flow 1's last hop: tell each sales channel what it may sell per (SKU, location).

Bursts coalesce by construction: the consumer publishes the figure as it is *now* and skips
when the channel was already told that figure — so ten quick sales at a till produce few
pushes, and the last one carries the right number.

No transaction is open while the shop is called. After each push the figure is read again
under a lock on what the channel was told: if it moved meanwhile (a sale, or another replica's
push of an older figure landing after ours), the newer figure is pushed too. The last push to
land is therefore always followed by a check against the ledger.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.consumers import batch_consumer, consumer
from hub.services import inventory
from hub.storage.tables import ChannelStockPublished, utcnow
from hub.storage.uow import UnitOfWork
from hub.storage.upsert import insert_ignore

log = logging.getLogger(__name__)
MAX_ROUNDS = 5      # pushes per event while the figure keeps moving; later events push the rest


def channel_available(location_available: int, channel_safety_stock: int) -> int:
    return max(location_available - channel_safety_stock, 0)


def figure_now(uow: UnitOfWork, ctx: HubContext, safety: int, sku: str, store_id: str) -> int:
    return channel_available(inventory.stock_at(uow.session, ctx.config, sku, store_id).available, safety)


def told_row(uow: UnitOfWork, channel: str, sku: str, store_id: str) -> ChannelStockPublished:
    """What `channel` was last told for (sku, store), locked for this transaction."""
    key = {"channel": channel, "sku": sku, "location_id": store_id}
    insert_ignore(uow.session, ChannelStockPublished, {**key, "available": -1, "published_at": utcnow()})
    return uow.session.execute(select(ChannelStockPublished).filter_by(**key).with_for_update()
                               .execution_options(populate_existing=True)).scalar_one()


def publish_figure(ctx: HubContext, shop: Any, channel: str, safety: int, sku: str, store_id: str, *,
                   shown: int | None = None) -> int | None:
    """Bring the channel's figure for (sku, store) to the hub's. Returns the last figure pushed, None if
    none was needed. `shown` is what the channel shows, when known (else what it was last told)."""
    pushed = None
    with ctx.reader() as uow:
        figure = figure_now(uow, ctx, safety, sku, store_id)
        if shown is None:
            shown = uow.session.execute(select(ChannelStockPublished.available).filter_by(
                channel=channel, sku=sku, location_id=store_id)).scalar_one_or_none()
    for _ in range(MAX_ROUNDS):
        if shown == figure:
            return pushed
        shop.update_store_stock(sku, store_id, figure)          # absolute: repeating it is harmless
        pushed, shown = figure, figure
        with ctx.uow() as uow:
            row = told_row(uow, channel, sku, store_id)
            row.available, row.published_at = figure, utcnow()
            figure = figure_now(uow, ctx, safety, sku, store_id)
            uow.commit()
    log.info("%s %s@%s still moving after %d pushes; later events push the rest", channel, sku, store_id,
             MAX_ROUNDS)
    return pushed


@consumer("channel_sync.publish_stock", calls_out=True)
def publish_stock(ctx: HubContext, data: dict[str, Any]) -> None:
    _publish(ctx, data["sku"], data["location_id"])


@batch_consumer("channel_sync.publish_stock")
def publish_stock_many(ctx: HubContext, events: list[dict[str, Any]]) -> None:
    """Many stock events, one push per (SKU, location): each push carries the figure as it is now."""
    for sku, location_id in sorted({(d["sku"], d["location_id"]) for d in events}):
        _publish(ctx, sku, location_id)


def _publish(ctx: HubContext, sku: str, location_id: str) -> None:
    location = ctx.config.location(location_id)
    if location is None or location.kind != "store":
        return                              # the shop shows per-store stock; warehouses ship express
    for channel in ctx.config.channels:
        if channel.publish_to:
            publish_figure(ctx, ctx.connectors.channel(channel.publish_to), channel.id, channel.safety_stock, sku,
                           location_id)
